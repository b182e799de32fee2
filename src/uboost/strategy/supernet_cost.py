"""Expected hardware cost of an NNI differentiable supernet, as one tensor expression.

:func:`build_supernet_cost` traces the supernet once (one forward pass with hooks) and reads
the structure NNI actually trains -- per-edge cell alphas (with their extra "none" entry),
``LayerChoice`` alphas, width/kernel choices of mixed operations and ``Repeat`` depths. Every
costed layer (``Conv2d``/``Linear``) becomes one or more *rows*:

* a row is one concrete layer shape, active with probability ``prod_d p[index[row, d]]``,
  where the indices point into a flat vector of all choice probabilities (softmax of each
  alpha, plus ``P(depth >= i)`` for repeats and a constant 1 for padding). Rows of the same
  label with different values are impossible and dropped; repeated equal ones are merged.
* ``cost_mode="expected"``: rows enumerate *all* choices of the layer (channels included)
  and their cycles are precomputed with the exact cost model, so the cost is the **exact
  expectation** of the cycle-exact cost over the independent categorical choices.
* ``cost_mode="smooth"``: rows enumerate only the non-channel choices (kernel, stride...);
  channels enter as **expected channel counts** through the smooth ceiling at ``temperature``,
  the U-Boost paper's relaxation.

Energy (when the cost model prices it, ``CostModel.energy_pj``) is one more row constant in
``expected`` mode -- dynamic energy per action and leakage power x the row's time are both fixed
by a layer shape at one operating point -- so its expectation is exact too; in ``smooth`` mode it
is priced at the expected channel counts like the cycles.

Each training step then costs a gather, a product and a sum (no Python loop over layers, no
host sync): :class:`SupernetCost` is an ``nn.Module`` whose tables are buffers.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from uboost.exceptions import ConfigError
from uboost.hardware import CostModel, LayerTable
from uboost.strategy._supernet_rows import _Choices, _Row, _rows
from uboost.strategy.host_mirror import as_vector

logger = logging.getLogger(__name__)

COST_MODES = ("expected", "smooth")


@dataclass(frozen=True)
class HardwareCost:
    """Expected cost of the current architecture distribution (0-d tensors)."""

    cycles: torch.Tensor
    macs: torch.Tensor
    latency_ms: torch.Tensor
    utilization: torch.Tensor
    energy_uj: torch.Tensor | None = None  # None: the cost model prices no energy


class SupernetCost(nn.Module):
    """Differentiable expected cost of a supernet; call it to get a :class:`HardwareCost`."""

    def __init__(self, cost_model: CostModel, rows: list[_Row], choices: _Choices, mode: str, temperature: float | None):
        super().__init__()
        if mode not in COST_MODES:
            raise ConfigError(f"unknown cost mode {mode!r}; expected one of: {', '.join(COST_MODES)}")
        if mode == "smooth" and (temperature is None or not temperature > 0):
            raise ConfigError(f"smooth cost mode needs a positive temperature, got {temperature!r}")
        self.cost_model = cost_model
        self.prices_energy = callable(getattr(cost_model, "energy_pj", None))
        self.mode = mode
        self.temperature = temperature
        self.shapes = [r.shape for r in rows]
        self._alphas = choices.alphas  # not registered: they belong to the supernet
        offsets, self._groups, n_flat = choices.layout()
        self._layout = (offsets, self._groups, n_flat)  # read by the projection's integer program
        self._derived_members = [(a, list(m)) for a, m in choices.derived]
        self._cell_inputs: list = []  # cell nodes priced as exportable cells (see select_cell_inputs)

        def flat(spec) -> int:
            if spec[0] == "alpha":
                return offsets[spec[1]] + spec[2]
            return n_flat + spec[1]

        derived = torch.zeros(len(choices.derived), n_flat, dtype=torch.float64)
        for j, (alpha_idx, members) in enumerate(choices.derived):
            for k in members:
                derived[j, offsets[alpha_idx] + k] = 1.0
        self.register_buffer("derived", derived, persistent=False)

        def index_matrix(lists: list[list[int]]) -> torch.Tensor:
            width = max([len(l) for l in lists] + [1])
            return torch.tensor([l + [0] * (width - len(l)) for l in lists], dtype=torch.long).reshape(len(lists), width)

        self.register_buffer("gate_index", index_matrix([[flat(s) for _, s in r.choices] for r in rows]), persistent=False)
        from uboost.hardware.precision import check_bits

        check_bits(cost_model.spec, {b for s in self.shapes for b in (s.weight_bits, s.act_bits)})
        table = LayerTable.from_shapes(self.shapes)
        self.table = table
        if mode == "expected":
            with torch.no_grad():
                self.register_buffer("row_cycles", cost_model.cycles(table), persistent=False)
                self.register_buffer("row_macs", cost_model.macs(table), persistent=False)
                if self.prices_energy:
                    self.register_buffer("row_energy_pj", cost_model.energy_pj(table), persistent=False)
                self.register_buffer("row_work", cost_model.effective_macs(table), persistent=False)  # utilization
        else:
            self._register_soft("in", [r.soft_in for r in rows], table.in_channels, flat)
            self._register_soft("out", [r.soft_out for r in rows], table.out_channels, flat)
        for name, value in (("table_" + f, getattr(table, f)) for f in table.__dataclass_fields__ if f != "names"):
            self.register_buffer(name, value, persistent=False)

    def _register_soft(self, which: str, options, fixed: torch.Tensor, flat) -> None:
        width_a = max([len(o) for o in options if o] + [1])
        width_d = max([len(c) for o in options if o for _, c in o] + [1])
        values = torch.zeros(len(options), width_a, dtype=torch.float64)
        index = torch.zeros(len(options), width_a, width_d, dtype=torch.long)
        for r, opts in enumerate(options):
            if not opts:
                values[r, 0] = fixed[r]
                continue
            for a, (value, combo) in enumerate(opts):
                values[r, a] = value
                for d, (_, spec) in enumerate(combo):
                    index[r, a, d] = flat(spec)
        self.register_buffer(f"soft_{which}_values", values, persistent=False)
        self.register_buffer(f"soft_{which}_index", index, persistent=False)

    def _table(self) -> LayerTable:
        return LayerTable(**{f: getattr(self, "table_" + f) for f in LayerTable.__dataclass_fields__ if f != "names"})

    @property
    def alphas(self) -> list[torch.Tensor]:
        """The architecture parameters this cost reads, in the order of the flat vector's layout."""
        return list(self._alphas)

    def select_cell_inputs(self, nodes) -> None:
        """Price cell edges as NNI exports cells: each node keeps exactly ``n_chosen`` inputs
        (:mod:`uboost.strategy.cell_inputs`); ``nodes`` from
        :func:`~uboost.strategy.architecture.choice_groups`. One-hot ``distributions`` are
        priced as given (they already are one concrete network)."""
        from uboost.strategy.cell_inputs import EdgeSlot, NodeInputs

        offsets = self._layout[0]
        where = {id(a): i for i, a in enumerate(self._alphas)}
        self._cell_inputs = [
            NodeInputs(node.n_chosen, tuple(
                EdgeSlot(e.alpha, offsets[where[id(e.alpha)]] if id(e.alpha) in where else None,
                         has_none=e.values[-1] is None) for e in node.edges))
            for node in nodes]

    def probabilities(self, uniform: bool = False, distributions: Mapping[int, torch.Tensor] | None = None,
                      tau: float = 1.0, detach: Collection[int] = ()) -> torch.Tensor:
        """The flat probability vector: [1, softmax(alpha / tau) of every alpha..., derived sums...].

        ``distributions`` maps ``id(alpha)`` to a probability vector that replaces
        ``softmax(alpha / tau)`` (one-hot vectors price one concrete path exactly); the alphas
        whose ids are in ``detach`` enter as constants (no gradient).
        """
        ref = self.gate_index
        parts = [torch.ones(1, dtype=torch.float64, device=ref.device)]
        for group in self._groups:
            replaced, rows = [], None
            if distributions:
                replaced = [j for j, i in enumerate(group) if id(self._alphas[i]) in distributions]
                if replaced:  # one stack and one conversion per group (~10^3 alphas with bits, several times a step)
                    rows = torch.stack([as_vector(distributions[id(self._alphas[group[j]])]) for j in replaced])
                    rows = rows.to(device=ref.device, dtype=torch.float64)
                    if len(replaced) == len(group):  # every alpha replaced: the same values, no softmax to compute
                        parts.append(rows.reshape(-1))
                        continue
            stacked = torch.stack([self._alphas[i].detach() if detach and id(self._alphas[i]) in detach else self._alphas[i]
                                   for i in group]).to(device=ref.device, dtype=torch.float64)
            if uniform:
                stacked = torch.zeros_like(stacked)
            probs = torch.softmax(stacked / tau if tau != 1.0 else stacked, dim=-1)
            if replaced:
                probs = probs.index_put((self._positions(replaced, ref.device),), rows)
            parts.append(probs.reshape(-1))
        flat = torch.cat(parts)
        if self._cell_inputs and not distributions:
            from uboost.strategy.cell_inputs import edge_probabilities

            edges = edge_probabilities(self._cell_inputs, tau, uniform, flat.dtype, flat.device)
            if edges is not None:
                flat = flat.index_put((edges[0],), edges[1])
        if self.derived.shape[0]:
            flat = torch.cat([flat, self.derived @ flat])
        return flat

    def host_gates(self, distributions: Mapping[int, torch.Tensor]) -> torch.Tensor:
        """Every row's gate for ``distributions`` that replace *every* alpha (one-hot pricing), on
        the host from host copies of the index tables: what :meth:`probabilities` gives then, exactly
        (products and sums of 0s and 1s), without touching the device (the commit phase's worker
        thread prices its projections with it, :mod:`uboost.strategy.background`)."""
        cache = self.host_tables()
        parts = [torch.ones(1, dtype=torch.float64)]
        for group in self._groups:
            parts.append(torch.stack([distributions[id(self._alphas[i])].double().reshape(-1) for i in group]).reshape(-1))
        flat = torch.cat(parts)
        if cache["derived"].shape[0]:
            flat = torch.cat([flat, cache["derived"] @ flat])
        return flat[cache["gate_index"]].prod(-1)

    def host_tables(self) -> dict[str, torch.Tensor]:
        """Host copies of the index tables :meth:`host_gates` reads (made once, on the calling thread)."""
        cache = self.__dict__.setdefault("_host_tables", {})
        if not cache:
            cache.update(gate_index=self.gate_index.cpu(), derived=self.derived.cpu())
        return cache

    def _positions(self, replaced: list[int], device) -> torch.Tensor:
        """``torch.tensor(replaced)`` on ``device``, made once per pattern (not copied every step)."""
        cache = self.__dict__.setdefault("_position_cache", {})
        key = (tuple(replaced), str(device))
        if key not in cache:
            cache[key] = torch.tensor(replaced).to(device)
        return cache[key]

    def forward(self, uniform: bool = False, *, distributions: Mapping[int, torch.Tensor] | None = None,
                tau: float = 1.0, detach: Collection[int] = (), exact: bool = False) -> HardwareCost:
        """Expected cost under ``softmax(alpha / tau)`` (or under uniform choices with ``uniform=True``);
        ``distributions`` overrides some alphas' probabilities, ``detach`` holds some constant
        (see :meth:`probabilities`). ``exact``: in smooth mode, the ceilings exact rather than smooth
        (the cycle-exact price of a one-hot network: the derived one)."""
        p = self.probabilities(uniform, distributions, tau, detach)
        gate = p[self.gate_index].prod(-1)
        energy = None
        if self.mode == "expected":
            cycles, macs, work = self.row_cycles, self.row_macs, self.row_work
            energy = self.row_energy_pj if self.prices_energy else None
        else:
            cin = (self.soft_in_values * p[self.soft_in_index].prod(-1)).sum(-1)
            cout = (self.soft_out_values * p[self.soft_out_index].prod(-1)).sum(-1)
            table = self._table()
            temperature = None if exact else self.temperature
            cycles = self.cost_model.cycles(table, in_channels=cin, out_channels=cout, temperature=temperature)
            macs = self.cost_model.macs(table, in_channels=cin, out_channels=cout)
            if self.prices_energy:
                energy = self.cost_model.energy_pj(table, in_channels=cin, out_channels=cout, temperature=temperature)
            work = self.cost_model.effective_macs(table, in_channels=cin, out_channels=cout)
        total_cycles = (gate * cycles).sum()
        total_macs = (gate * macs).sum()
        return HardwareCost(
            cycles=total_cycles,
            macs=total_macs,
            latency_ms=self.cost_model.latency_ms(total_cycles),
            utilization=(gate * work).sum() / (self.cost_model.spec.pes * total_cycles).clamp_min(1e-12),  # effective MACs
            energy_uj=None if energy is None else (gate * energy).sum() * 1e-6,
        )


def build_supernet_cost(
    supernet: nn.Module,
    cost_model: CostModel,
    example: torch.Tensor,
    *,
    mode: str = "expected",
    temperature: float | None = None,
) -> SupernetCost:
    """Trace a (DARTS-mutated) supernet on ``example`` (a batch of 1) and build its cost expression."""
    if mode not in COST_MODES:
        raise ConfigError(f"unknown cost mode {mode!r}; expected one of: {', '.join(COST_MODES)}")
    choices = _Choices()
    rows = _rows(supernet, example, choices, mode)
    if not rows:
        raise ConfigError("the model has no Conv2d or Linear layer to cost")
    logger.debug("supernet cost: %d rows over %d choice parameters (%s)", len(rows), len(choices.alphas), mode)
    return SupernetCost(cost_model, rows, choices, mode, temperature).to(example.device)


def set_architecture(supernet: nn.Module, arch: dict, *, logit: float = 30.0) -> None:
    """Pin every alpha of a DARTS-mutated supernet to the one-hot distribution of ``arch``
    (an exported dict); cell edges not chosen by ``arch`` are pinned to "none".

    Useful to price one concrete architecture with the supernet's cost expression (without
    touching the alphas, pass ``distributions=one_hot(...)`` to :class:`SupernetCost` instead).
    """
    from uboost.strategy.architecture import arch_to_indices, choice_groups

    choices, nodes = choice_groups(supernet)
    indices = arch_to_indices(choices, nodes, arch)
    with torch.no_grad():
        for choice in choices:
            choice.alpha.fill_(-logit)
            choice.alpha[indices[id(choice.alpha)]] = logit

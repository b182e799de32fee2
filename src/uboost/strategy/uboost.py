"""``UBoost``: hardware-aware, utilization-boosted differentiable search as an NNI strategy."""

from __future__ import annotations

import logging
from typing import Any

import nni.nas.strategy  # noqa: F401  first: importing the one-shot module alone breaks nni.nas.strategy.GumbelDARTS
import torch
from nni.nas.oneshot.pytorch.strategy import DARTS
from torch import nn
from torch.utils.data import DataLoader, random_split

from uboost.exceptions import ConfigError
from uboost.hardware import CostModel, resolve
from uboost.strategy import single_path
from uboost.strategy.loss import HardwareLoss, _non_negative
from uboost.strategy.single_path import SAMPLING_MODES, PathSampler

logger = logging.getLogger(__name__)


_NNI_KEYWORDS = frozenset({"penalty", "mutation_hooks", "model_space", "engine"})  # passed on to NNI's DARTS strategy


def _auto_point(operating_point: str | None) -> bool:
    if operating_point not in (None, "auto"):
        raise ConfigError(f"operating_point must be 'auto' or None (the spec's own clock), got {operating_point!r}")
    return operating_point == "auto"



def weight_share(n: int, data_split: float) -> int:
    """How many of ``n`` training samples train the weights (the rest the architecture); refused where either
    part would be empty."""
    n_weights = int(round(n * data_split))
    if not 0 < n_weights < n:
        raise ConfigError(f"data_split={data_split} leaves no data for weights or architecture ({n} sample"
                          f"{'' if n == 1 else 's'}): train on more images (--max-samples) or split them otherwise")
    return n_weights

class UBoost(DARTS):
    """U-Boost NAS for NNI 3: DARTS-style one-shot search whose architecture loss adds the
    latency and utilization of an accelerator.

    A drop-in for ``NasExperiment(space, evaluator, UBoost(...))`` with any NNI model space
    (cells, ``LayerChoice``, width/kernel choices, ``Repeat``).

    Parameters
    ----------
    cost_model
        A :class:`~uboost.hardware.CostModel` or a registry name (``"systolic"``), built with
        ``hardware`` keyword arguments (``rows``, ``cols``, ``dataflow``...).
    latency_weight, utilization_weight
        ``lambda`` and ``beta`` of ``task + lambda * latency / latency_ref + beta * (1 - utilization)``.
    utilization_scale
        ``"fixed"`` (that formula) or ``"lambda"``: ``task + lambda * (latency / latency_ref + beta * (1 -
        utilization))``, so ``lambda = 0`` is the task alone; with ``target_latency_ms`` the utilization
        term is ``beta * (1 - utilization)`` either way.
    target_latency_ms
        Optional latency budget for the *derived* network: ``lambda`` is replaced by a Lagrange
        multiplier updated by dual ascent (see :mod:`uboost.strategy.loss`) and the final
        architecture is projected onto the budget exactly (:mod:`uboost.strategy.projection`).
    energy_weight
        ``gamma``: weight of ``energy / energy_ref`` (the uniform supernet's expected energy), as
        ``lambda`` weighs latency; needs a cost model that prices energy. 0: no energy term.
    target_energy_uj
        Optional energy budget (µJ per inference) for the derived network, with its own
        multiplier replacing the ``gamma`` term; with ``target_latency_ms`` both budgets hold at
        once (the projection takes both rows).
    operating_point
        ``"auto"``: the budgets hold at the operating point (of the spec's table) chosen together
        with the network -- the commit phase and the export take the most preferred (network,
        point) pair within every budget; ``None``: at the spec's own clock and voltage.
    budget_lr
        Dual-ascent step of the budget multipliers per step.
    budget_floor
        With a target, the budget is the window ``[budget_floor * target, target]``: the search
        is pulled up when its derived network falls under the window, and the export is the
        most preferred network in it (0: a plain upper bound).
    budget_commit
        With a target, the last ``budget_commit`` of the architecture steps pull the alphas
        towards the budget-exact projection of the current ones (re-solved every step), so the
        search's own argmax network ends inside the window (see :mod:`uboost.strategy.loss`;
        0: the multiplier alone).
    entropy_weight
        Weight of the mean entropy of the choice distributions in the architecture loss (makes
        the distribution commit, so its expected cost approaches the derived network's).
    cost_mode
        ``"expected"``: exact expectation of the cycle-exact cost; ``"smooth"``: expected
        channel counts through the smooth ceiling at ``temperature`` (the paper's method).
    temperature
        Smooth-ceiling temperature ``T`` (tiles^-1), used in smooth mode.
    arch_lr
        Adam learning rate of the architecture parameters.
    data_split
        Fraction of the training data for the weights; the rest trains the architecture
        (disjoint). ``None`` uses the evaluator's train/val loaders as NNI's DARTS does.
    gumbel_temperature
        ``(start, end)`` of the Gumbel-softmax temperature, annealed linearly **per step**;
        ``None`` uses the plain softmax of DARTS.
    sharpen
        Price ``softmax(alpha / tau)`` at the current Gumbel temperature ``tau`` in the hardware
        term (the relaxation the mixture's forward pass uses) instead of ``softmax(alpha)``: the
        distribution sharpens as ``tau`` anneals, so the search commits and its expected cost
        ends at the exported network's. No effect without ``gumbel_temperature``.
    seed
        Seeds the data split (and the path sampler's Gumbel noise).
    sampling
        ``"mixture"``: every candidate of every choice runs each step, weighted (DARTS);
        ``"single-path"``: one candidate per choice is drawn per step from the hard
        Gumbel-softmax and only it runs (GDAS, straight-through; see
        :mod:`uboost.strategy.single_path`). The hardware term is the expected cost in both.
    bits, weight_bits, act_bits, pin_bits
        Precision search (:mod:`uboost.strategy.precision`): ``bits=(2, 4, 8)`` adds one choice
        per ``Conv2d``/``Linear`` setting its weight and activation bits together (Auto-NBA);
        ``weight_bits`` / ``act_bits`` add independent choices (EdMIPS). ``pin_bits`` maps
        layer-name patterns to a fixed width. The layers are fake-quantized (:mod:`uboost.quant`)
        and every (layer, bits) candidate is priced on the cost model's PEs.
    score_weight
        Single-path sampling: weight of the score-function (REINFORCE) estimate of the task's gradient,
        ``(L - b) * grad log p(path)``, added to the straight-through one (:mod:`uboost.strategy.score_function`):
        it reaches the choices whose output feeds a batch norm, which the straight-through weight does not.
        0: straight-through only.
    score_on
        ``"all"``: every sampled choice gets the score function; ``"blind"``: only the choices whose
        straight-through task gradient is measured to vanish in the first architecture steps
        (:class:`~uboost.strategy.score_function.BlindChoices`), the others keep straight-through alone.
    bits_noise_weight
        Weight of the loss each candidate width's quantization noise adds, estimated to second
        order (:mod:`uboost.strategy.bits_noise`), in the architecture loss; 0: not priced.
    utilization_on_bits
        Whether the utilization term's gradient reaches the bits choices; ``None`` (default): only on
        ``fixed`` PEs. On precision-aware PEs (``bitfusion``, ``bit-serial``) a narrower width speeds a
        layer up at a lower utilization (more MACs per PE per cycle, rows left empty), so the term pulls
        the bits up against the latency term; blind, the bits are left to latency and energy
        (:func:`~uboost.strategy.precision.blind_utilization`). On fixed PEs a width changes only the
        stalls, and utilization and latency agree.
    """

    def __init__(
        self,
        *,
        cost_model: str | CostModel = "systolic",
        hardware: dict[str, Any] | None = None,
        latency_weight: float = 1.0,
        utilization_weight: float = 1.0,
        utilization_scale: str = "fixed",
        target_latency_ms: float | None = None,
        energy_weight: float = 0.0,
        target_energy_uj: float | None = None,
        operating_point: str | None = None,
        budget_lr: float = 0.5,
        budget_floor: float = 0.9,
        budget_commit: float = 0.2,
        entropy_weight: float = 0.0,
        cost_mode: str = "expected",
        temperature: float = 10.0,
        arch_lr: float = 0.1,
        data_split: float | None = 0.8,
        gumbel_temperature: tuple[float, float] | None = (1.0, 0.1),
        sharpen: bool = True,
        warmup_epochs: int = 0,
        gradient_clip_val: float | None = None,
        log_prob_every_n_step: int = 10,
        seed: int = 0,
        sampling: str = "mixture",
        bits: tuple[int, ...] | None = None,
        weight_bits: tuple[int, ...] | None = None,
        act_bits: tuple[int, ...] | None = None,
        pin_bits: dict[str, int] | None = None,
        bits_noise_weight: float = 0.0,
        utilization_on_bits: bool | None = None,
        score_weight: float = 0.0,
        score_on: str = "all",
        **kwargs: Any,
    ):
        _check_numbers(arch_lr=arch_lr, warmup_epochs=warmup_epochs, seed=seed, log_prob_every_n_step=log_prob_every_n_step,
                       gradient_clip_val=gradient_clip_val, data_split=data_split)
        if not isinstance(sharpen, bool):  # bool("no") is True
            raise ConfigError(f"sharpen must be True or False, got {sharpen!r}")
        if utilization_on_bits is not None and not isinstance(utilization_on_bits, bool):  # ("no" read as True)
            raise ConfigError(f"utilization_on_bits must be True, False or None (the PE mode's default), got {utilization_on_bits!r}")
        unknown = sorted(set(kwargs) - _NNI_KEYWORDS)
        if unknown:  # NNI's raw TypeError otherwise
            raise ConfigError(f"UBoost got an unknown keyword argument {unknown[0]!r}")
        super().__init__(
            arc_learning_rate=arch_lr,
            gradient_clip_val=gradient_clip_val,
            log_prob_every_n_step=log_prob_every_n_step,
            warmup_epochs=warmup_epochs,
            **kwargs,
        )
        self.cost_model = _cost_model(cost_model, hardware)
        if data_split is not None and not 0.0 < data_split < 1.0:
            raise ConfigError(f"data_split must be between 0 and 1 (exclusive), got {data_split!r}")
        if gumbel_temperature is not None:
            from uboost.search_config import check_gumbel_tau

            gumbel_temperature = check_gumbel_tau(gumbel_temperature, "gumbel_temperature")
        self.hardware_loss = HardwareLoss(
            self.cost_model,
            latency_weight=latency_weight,
            utilization_weight=utilization_weight,
            utilization_scale=utilization_scale,
            target_latency_ms=target_latency_ms,
            energy_weight=energy_weight,
            target_energy_uj=target_energy_uj,
            auto_point=_auto_point(operating_point),
            budget_lr=budget_lr,
            budget_floor=budget_floor,
            budget_commit=budget_commit,
            entropy_weight=entropy_weight,
            cost_mode=cost_mode,
            temperature=temperature,
            utilization_on_bits=utilization_on_bits,
        )
        self.data_split = data_split
        self.gumbel_temperature = gumbel_temperature
        self.sharpen = bool(sharpen)
        self.seed = seed
        # the data loaders' shuffling generators: checkpointed with the search (strategy/rng.py)
        self._loader_generators = {"train": torch.Generator().manual_seed(seed + 1),
                                   "val": torch.Generator().manual_seed(seed + 2)}
        self._loaders: dict = {}  # the loaders it builds (data_split), resumed inside an epoch (uboost.resumable_loader)
        if sampling not in SAMPLING_MODES:
            raise ConfigError(f"unknown sampling {sampling!r}; expected one of: {', '.join(SAMPLING_MODES)}")
        self.sampling = sampling
        self._sampler: PathSampler | None = None
        self.bits_space = None  # precision search (strategy/precision.py)
        self.exported_precision = None  # {frozen layer: (weight_bits, act_bits)} of the last export of a bits search
        self.exported_operating_point = None  # operating_point="auto": {"index", "freq_hz", "voltage_v"} of the last export
        self.exported_projection = None  # (NNI's argmax with its bits, its projection, facts) of the last export
        if bits is not None or weight_bits is not None or act_bits is not None:
            from uboost.strategy.precision import BitsSpace

            self.bits_space = BitsSpace(bits=bits, weight_bits=weight_bits, act_bits=act_bits, pin=pin_bits or {})
            from uboost.hardware.precision import check_bits as check_pe_bits

            check_pe_bits(self.cost_model.spec, self.bits_space.all_bits)  # e.g. bitfusion above 8 bits: now, not mid-fit
        elif pin_bits:
            raise ConfigError("pin_bits needs a precision search (bits, weight_bits or act_bits)")
        self.bits_noise_weight = _non_negative("bits_noise_weight", bits_noise_weight)  # (the loss weights' one rule)
        if self.bits_noise_weight > 0 and self.bits_space is None:  # as SearchConfig: a weight with nothing to weigh
            raise ConfigError("bits_noise_weight prices the bits' quantization noise: it needs a precision search "
                              "(bits, weight_bits or act_bits)")
        self.score_weight = _non_negative("score_weight", score_weight)
        if self.score_weight > 0 and self.sampling != "single-path":  # the mixture's gradient reaches every candidate
            raise ConfigError("score_weight estimates single-path sampling's task gradient: it needs "
                              "sampling='single-path'")
        from uboost.strategy.score_function import SCOPES

        if score_on not in SCOPES:
            raise ConfigError(f"score_on must be one of {', '.join(SCOPES)}, got {score_on!r}")
        if score_on != "all" and not self.score_weight:
            raise ConfigError(f"score_on={score_on!r} picks the choices the score function reaches: it needs a score_weight above 0")
        self.score_on = score_on

    def configure_softmax(self) -> nn.Module:
        if self.gumbel_temperature is None:
            return nn.Softmax(dim=-1)
        from nni.nas.oneshot.pytorch.supermodule.differentiable import GumbelSoftmax

        return GumbelSoftmax()

    def default_mutation_hooks(self):
        if self.sampling == "single-path":
            return single_path.mutation_hooks()
        from nni.nas.oneshot.pytorch.supermodule.operation import MixedOperation

        from uboost.strategy.sliced_ops import MIXTURES  # layer norm and attention widths: the candidates' mixture

        def swap(hook):
            operation = getattr(hook, "__self__", None)
            return MIXTURES[operation].mutate if isinstance(operation, type) and issubclass(operation, MixedOperation) \
                and operation in MIXTURES else hook

        return [swap(hook) for hook in super().default_mutation_hooks()]

    def mutate_model(self, model):
        if self.bits_space is not None:  # quantizers go on every Conv2d/Linear: on a copy, not on the user's own layers
            import copy

            model = copy.deepcopy(model)
        if self.sampling == "single-path":  # one sampler per supernet, shared by its supermodules
            tau = self.gumbel_temperature[0] if self.gumbel_temperature is not None else 1.0
            self._sampler = PathSampler(seed=self.seed, tau=tau)
        model = super().mutate_model(model)
        if self.bits_space is not None:  # a precision choice on every Conv2d/Linear of the supernet
            from uboost.strategy.precision import attach_bits

            factory = (lambda: self._sampler) if self.sampling == "single-path" else self.configure_softmax
            attach_bits(model, self.bits_space, factory)
        return model

    def run_hook(self, hook, name, module, memo):
        if self.sampling != "single-path":
            return super().run_hook(hook, name, module, memo)
        if not memo.get("_validated"):
            memo.update(self._arch_parameters)
            memo["_validated"] = True
        return hook(module, name, memo, single_path.hook_kwargs(self._sampler))

    def list_models(self, sort: bool = True, limit: int | None = 1):
        """NNI's export of the search (``export_top_models``, :func:`run_experiment`): its argmax network
        projected onto the budgets exactly, as the CLI's run directory (``target_latency_ms`` /
        ``target_energy_uj``: within them; ``operating_point="auto"``: the best (network, point) pair);
        with bits, the chosen width of every frozen layer in :attr:`exported_precision`."""
        if not self.hardware_loss.attached:  # nothing trained in this process: NNI's own
            yield from super().list_models(sort=sort, limit=limit)
            return
        from uboost.strategy.final_export import exported_model

        self.oneshot_module.set_model(self.supernet)
        yield exported_model(self, self.oneshot_module.export())

    def configure_oneshot_module(self, training_module):
        from uboost.strategy.lightning import UBoostLightningModule

        return UBoostLightningModule(
            training_module,
            hardware_loss=self.hardware_loss,
            gumbel_temperature=self.gumbel_temperature,
            sharpen=self.sharpen,
            arc_learning_rate=self.arc_learning_rate,
            gradient_clip_val=self.gradient_clip_val,
            log_prob_every_n_step=self.log_prob_every_n_step,
            warmup_epochs=self.warmup_epochs,
            bits_noise_weight=self.bits_noise_weight,
            score_weight=self.score_weight,
            score_on=self.score_on,
            generators=self._loader_generators,
            loaders=self._loaders,
        )

    def train_dataloader(self, train_dataloader_fn, val_dataloader_fn):
        if self.data_split is None:
            return super().train_dataloader(train_dataloader_fn, val_dataloader_fn)
        loader = train_dataloader_fn()
        if not isinstance(loader, DataLoader):
            raise ConfigError("data_split needs the evaluator's train_dataloaders to be one torch DataLoader")
        from torch.utils.data import RandomSampler, SequentialSampler

        if loader.batch_size is None or not isinstance(loader.sampler, (RandomSampler, SequentialSampler)):
            what = "a batch_sampler" if loader.batch_size is None else f"its own sampler ({type(loader.sampler).__name__})"
            raise ConfigError(f"data_split splits the training data into shuffled weight and architecture halves, which would "
                              f"replace the train loader's {what}: give a batch_size instead, or UBoost(data_split=None) "
                              "with the architecture's data as the evaluator's val_dataloaders")
        n = len(loader.dataset)
        n_weights = weight_share(n, self.data_split)
        generator = torch.Generator().manual_seed(self.seed)
        weights_part, arch_part = random_split(loader.dataset, [n_weights, n - n_weights], generator=generator)

        def clone(dataset, part):
            from uboost.distributed.collectives import ShardSampler
            from uboost.resumable_loader import ResumableLoader

            generator = self._loader_generators[part]  # one process: as shuffle=True; DDP: sharded (ShardSampler)
            self._loaders[part] = ResumableLoader(
                dataset,
                batch_size=loader.batch_size,
                sampler=ShardSampler(dataset, seed=self.seed + (1 if part == "train" else 2), generator=generator),
                num_workers=loader.num_workers,
                collate_fn=loader.collate_fn,
                pin_memory=loader.pin_memory,
                drop_last=loader.drop_last,
                generator=generator,
                worker_init_fn=loader.worker_init_fn,
                **({"persistent_workers": loader.persistent_workers, "prefetch_factor": loader.prefetch_factor}
                   if loader.num_workers > 0 else {}),
            )
            return self._loaders[part]

        return {"train": clone(weights_part, "train"), "val": clone(arch_part, "val")}

    def val_dataloader(self, train_dataloader_fn, val_dataloader_fn):
        if self.data_split is None:
            return None
        return val_dataloader_fn()

    @property
    def latency_ref_ms(self) -> float | None:
        return self.hardware_loss.latency_ref_ms

    @property
    def energy_ref_uj(self) -> float | None:
        return self.hardware_loss.energy_ref_uj


def _check_numbers(*, arch_lr, warmup_epochs, seed, log_prob_every_n_step, gradient_clip_val=None, data_split=None) -> None:
    """What a search would only find out mid-fit (Adam's learning rate, a logging interval of 0, a gradient clip
    of "x") or as a raw TypeError (the seed, a data split of "0.5"), or never (a negative clip flips the gradients)."""
    import math

    from uboost.search_config import check_seed  # the one seed rule (every generator takes it)

    if isinstance(log_prob_every_n_step, bool) or not isinstance(log_prob_every_n_step, int) or log_prob_every_n_step < 1:
        raise ConfigError(f"log_prob_every_n_step must be a whole number >= 1, got {log_prob_every_n_step!r}")

    if isinstance(arch_lr, bool) or not isinstance(arch_lr, (int, float)) or not math.isfinite(arch_lr) or arch_lr <= 0:
        raise ConfigError(f"arch_lr must be a positive finite number, got {arch_lr!r}")
    if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or warmup_epochs < 0:
        raise ConfigError(f"warmup_epochs must be a whole number >= 0, got {warmup_epochs!r}")
    check_seed(seed)
    number = lambda v: not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)  # noqa: E731
    if gradient_clip_val is not None and not (number(gradient_clip_val) and gradient_clip_val > 0):
        raise ConfigError(f"gradient_clip_val must be a positive finite number (or None: no clipping), got {gradient_clip_val!r}")
    if data_split is not None and not number(data_split):
        raise ConfigError(f"data_split must be between 0 and 1 (exclusive), got {data_split!r}")


def _cost_model(cost_model, hardware):
    """The strategy's cost model: a name or an instance, on ``hardware`` (a dict of HardwareSpec fields, a
    :class:`~uboost.hardware.HardwareSpec`, or None: the model's default array)."""
    from collections.abc import Mapping

    from uboost.hardware import HardwareSpec

    if isinstance(hardware, HardwareSpec):
        return resolve(cost_model, spec=hardware)
    if hardware is not None and not isinstance(hardware, Mapping):
        raise ConfigError(f"hardware must be a dict of HardwareSpec fields or a HardwareSpec, got {type(hardware).__name__}"
                          + (f" {hardware!r}: e.g. hardware=dict(rows=16, cols=16)" if isinstance(hardware, str) else ""))
    return resolve(cost_model, **(hardware or {}))

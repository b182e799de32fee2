"""Per-layer lookup tables: price layers from measured or simulated cycle counts.

A table is a CSV with (at least) the columns ``in_channels, out_channels, groups, kernel_h,
kernel_w, out_h, out_w, cycles`` -- the format of ``tests/hardware/data/scalesim_golden.csv``,
so SCALE-Sim output or measurements on real hardware can be used directly. Optional columns
``batch``, ``rows``, ``cols`` and ``dataflow`` restrict the rows to the model's spec, and
``sram_kb`` and ``dram_bw_words`` (as ``uboost hw tabulate --sram-kb/--dram-bw-words`` writes them)
to a spec with those memory limits: such cycles include the stalls of that memory system, and
apply to no other (empty: cycles of unbounded memory, any spec, priced as compute only). An
optional ``per_sample`` column (``True``/``False``, empty or absent: false) marks rows of layers whose
second operand differs per sample (an attention's ``Q K^T`` and attention x ``V``,
:attr:`~uboost.hardware.layers.LayerShape.per_sample`): at a batch above 1 they cost another number
than a layer of the same shape that shares its weights, so they form keys of their own there.

**Words moved.** A table holds cycles only. The words each layer moves (SRAM and DRAM reads and
writes, which energy prices) are modelled: for a table made for the spec's memory system
(``prices_memory``) by ``systolic-mem`` (:class:`~uboost.hardware.systolic_mem.MemorySystolicArray`),
re-fetches included, so its energy equals ``systolic-mem``'s at equal cycles; for a compute-only
table by the unbounded-memory counts (every word read from DRAM once).

**Interpolation.** Rows are grouped by layer *key*: depthwise or not, groups (or, for depthwise
layers, the channel multiplier ``out/in``), kernel, output size (and, at a batch above 1,
``per_sample``). Within a key the channels must form a full grid (every listed ``in_channels``
with every listed ``out_channels``); a layer's cycles are interpolated **bilinearly in
(in_channels, out_channels)** between the surrounding grid points (depthwise layers: **linearly
in in_channels**, their outputs follow)
(exact at grid points; monotone data stays monotone). A layer whose key is not in the table or
whose channels lie outside the key's grid raises :class:`HardwareError`. Soft (expected)
channels in a search are clamped to the grid instead, since they are averages of valid choices.
"""

from __future__ import annotations

import csv
import math
import os
import weakref
from collections import defaultdict
from collections.abc import Iterable, Sequence

import torch

from uboost.exceptions import DataError, HardwareError
from uboost.hardware.base import CostModel
from uboost.hardware.layers import LayerShape, LayerTable, with_channels
from uboost.hardware.registry import register
from uboost.hardware.spec import HardwareSpec
from uboost.hardware.systolic_mem import MemorySystolicArray

# depthwise, groups|multiplier, kernel_h, kernel_w, out_h, out_w, per_sample (always false at batch 1, where it costs the same)
Key = tuple[bool, int, int, int, int, int, bool]
REQUIRED = ("in_channels", "out_channels", "groups", "kernel_h", "kernel_w", "out_h", "out_w", "cycles")


def _key(depthwise: bool, groups_or_multiplier: int, kh: int, kw: int, oh: int, ow: int, per_sample: bool = False) -> Key:
    return (bool(depthwise), int(groups_or_multiplier), int(kh), int(kw), int(oh), int(ow), bool(per_sample))


def _per_sample_of_row(row: dict) -> bool:
    value = row.get("per_sample")
    if isinstance(value, bool):
        return value
    text = "" if value is None else str(value).strip().lower()
    if text in ("", "false", "0"):
        return False
    if text in ("true", "1"):
        return True
    raise DataError(f"lookup table: bad per_sample in row {dict(row)} (True, False or empty)")


def grid_gaps(shapes: Sequence[LayerShape], batch_size: int = 1) -> list[LayerShape]:
    """The layer shapes a table of ``shapes`` lacks to be a full channel grid per key: layers that share
    a key (e.g. two ``Linear`` layers, whose outputs are 1x1) pool their channel counts, so each needs
    the other's. Each gap is its key's first layer at the missing ``(in_channels, out_channels)``.
    ``batch_size``: the batch the table is for (above 1, ``per_sample`` layers key apart)."""
    by_key: dict[Key, list[LayerShape]] = defaultdict(list)
    for shape in shapes:
        if not shape.depthwise:  # depthwise keys have one channel axis: never a gap
            by_key[_key(False, shape.groups, shape.kernel_h, shape.kernel_w, shape.out_h, shape.out_w,
                        shape.per_sample and batch_size > 1)].append(shape)
    gaps = []
    for members in by_key.values():
        have = {(m.in_channels, m.out_channels) for m in members}
        cins, couts = sorted({c for c, _ in have}), sorted({f for _, f in have})
        first = members[0]
        gaps += [with_channels(first, c, f, name=f"{first.name}@{c}x{f}")
                 for c in cins for f in couts if (c, f) not in have and c % first.groups == 0 and f % first.groups == 0]
    return gaps


def _memory_of(spec: HardwareSpec) -> tuple | None:
    """What a table row's ``(sram_kb, dram_bw_words)`` must equal to price ``spec``: None for unbounded memory;
    ``(kB, words per cycle)`` with one size for every buffer (``hw tabulate --sram-kb``); with sizes per buffer,
    those sizes and the bandwidth, which no tabulated row holds."""
    if not spec.memory_bound:
        return None
    sizes = set(spec.buffer_kb)
    kb = float(sizes.pop()) if len(sizes) == 1 else tuple(spec.buffer_kb)
    return kb, float(spec.dram_words_per_cycle)


def _memory_of_row(row: dict) -> tuple[float, float] | None:
    kb, bw = row.get("sram_kb"), row.get("dram_bw_words")
    if kb in ("", None) and bw in ("", None):
        return None
    try:
        return float(kb), float(bw)
    except (TypeError, ValueError):
        raise DataError(f"lookup table: bad memory columns in row {dict(row)} (sram_kb and dram_bw_words: numbers, "
                        "or both empty)") from None


class _Grid:
    def __init__(self, points: dict[tuple[int, int], float], key: Key):
        self.cin = sorted({c for c, _ in points})
        self.cout = sorted({f for _, f in points})
        missing = [(c, f) for c in self.cin for f in self.cout if (c, f) not in points]
        if missing:
            raise DataError(f"lookup table: layer key {key} is not a full channel grid (missing e.g. {missing[0]})")
        self.values = [[points[(c, f)] for f in self.cout] for c in self.cin]


@register("lookup", description="per-layer cycle table from a CSV (SCALE-Sim or measured), bilinear in channels")
class LookupTable(CostModel):
    """Cycles looked up per layer from a table; see the module docstring for the format."""

    name = "lookup"
    pe_modes = ("fixed",)  # measured cycles have no bits axis

    def __init__(self, spec: HardwareSpec | None = None, *, table: str | os.PathLike | Iterable[dict] | None = None, **spec_fields):
        super().__init__(spec, **spec_fields)
        if table is None:
            raise HardwareError("the lookup cost model needs a table of cycles: --table cycles.csv (in Python: create('lookup', table='cycles.csv'))")
        self._rows = self._read(table) if isinstance(table, (str, os.PathLike)) else list(table)
        self._respec()

    def identity(self) -> dict[str, str]:
        """The table's rows, hashed: a table edited between two runs is another model."""
        import hashlib
        import json

        return {"table_sha256": hashlib.sha256(json.dumps(self._rows, sort_keys=True, default=str).encode()).hexdigest()}

    def _respec(self) -> None:
        # the rows that apply depend on the spec's memory system, in words per cycle: with a DRAM bandwidth in GB/s
        # another clock selects others (or none)
        self.grids = self._grids(self._rows)
        # cycles with this memory system's stalls move its words too (re-fetches): counted by the model that prices them
        self._words_model = MemorySystolicArray(self.spec) if self.prices_memory else None
        self._prepared: "weakref.WeakKeyDictionary[object, tuple]" = weakref.WeakKeyDictionary()

    # -- table construction -------------------------------------------------------------------
    @staticmethod
    def _read(path: str | os.PathLike) -> list[dict]:
        try:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
        except OSError as exc:
            raise DataError(f"cannot read lookup table {os.fspath(path)!r}: {exc.strerror or exc}") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"lookup table {os.fspath(path)!r} is not a UTF-8 CSV file ({exc})") from None
        if not rows:
            raise DataError(f"lookup table {os.fspath(path)!r} has no rows")
        absent = [c for c in REQUIRED if c not in rows[0]]
        if absent:
            raise DataError(f"lookup table {os.fspath(path)!r} lacks columns: {', '.join(absent)}")
        return rows

    def _grids(self, rows: list[dict]) -> dict[Key, _Grid]:
        spec = self.spec
        wanted = {"batch": spec.batch_size, "rows": spec.rows, "cols": spec.cols, "dataflow": spec.dataflow}
        points: dict[Key, dict[tuple[int, int], float]] = defaultdict(dict)
        # how specific the row that set each point is: a row made for this memory system (or naming this array,
        # dataflow or batch) wins over one made for any, whatever their order in the file
        rank: dict[tuple, tuple[int, int]] = {}  # point -> (made for this memory system, columns naming this array)
        memory = _memory_of(spec)
        for row in rows:
            if any(col in row and row[col] not in ("", None) and str(row[col]) != str(val) for col, val in wanted.items()):
                continue
            limits = _memory_of_row(row)
            if limits is not None and limits != memory:  # cycles with the stalls of another memory system
                continue
            named = sum(col in row and row[col] not in ("", None) for col in wanted)
            try:
                cin, cout, groups = int(row["in_channels"]), int(row["out_channels"]), int(row["groups"])
                depthwise = groups > 1 and groups == cin
                key = _key(depthwise, cout // cin if depthwise else groups, row["kernel_h"], row["kernel_w"], row["out_h"], row["out_w"],
                           _per_sample_of_row(row) and spec.batch_size > 1)
                cycles = float(row["cycles"])
            except (KeyError, ValueError) as exc:
                raise DataError(f"lookup table: bad row {dict(row)}: {exc}") from None
            if not (math.isfinite(cycles) and cycles >= 0):
                raise DataError(f"lookup table: bad row {dict(row)}: cycles must be a finite number >= 0, got {row['cycles']!r}")
            point, specific = (key, (cin, 0 if depthwise else cout)), (int(limits is not None), named)
            if point in rank and rank[point] > specific:
                continue
            rank[point] = specific
            points[key][point[1]] = cycles
        # memory priced where every point came from a row made for this memory system
        self.prices_memory = bool(rank) and memory is not None and all(for_memory for for_memory, _ in rank.values())
        if not points:
            limits = {_memory_of_row(row) for row in rows} - {None}
            hint = ("; its rows are for " + ", ".join(f"{kb:g} kB SRAM and {bw:g} words/cycle" for kb, bw in sorted(limits))
                    + f", not {spec.memory_text}") if limits else ""
            raise DataError(f"lookup table has no rows for {spec.array} {spec.dataflow} batch {spec.batch_size}{hint}")
        return {key: _Grid(pts, key) for key, pts in points.items()}

    @classmethod
    def from_model(
        cls, model: CostModel, layers: Sequence[LayerShape], channels: Sequence[int]
    ) -> "LookupTable":
        """Tabulate ``model`` for the keys of ``layers`` over a grid of channel counts."""
        rows = []
        for s in layers:
            if s.depthwise:
                pairs = [(c, c * (s.out_channels // s.in_channels), c) for c in channels]
            else:
                pairs = [(ci, co, s.groups) for ci in channels for co in channels if ci % s.groups == 0 and co % s.groups == 0]
            shapes = [with_channels(s, ci, co, groups=g) for ci, co, g in pairs]
            if not shapes:
                continue
            table = LayerTable.from_shapes(shapes)
            with torch.no_grad():
                cycles = model.cycles(table).tolist()
            rows += [{**sh.to_dict(), "cycles": c} for sh, c in zip(shapes, cycles)]
        return cls(model.spec, table=rows)

    @classmethod
    def example(cls, spec: HardwareSpec, layers: Sequence[LayerShape] = ()) -> "LookupTable":
        from uboost.hardware.systolic import SystolicArray

        own = {c for s in layers for c in (s.in_channels, s.out_channels)}
        return cls.from_model(SystolicArray(spec), layers, channels=sorted(own | {2**i for i in range(11)}))

    # -- evaluation ---------------------------------------------------------------------------
    def _prepare(self, layers: LayerTable) -> tuple[torch.Tensor, ...]:
        cached = self._prepared.get(layers)
        if cached is not None:
            return cached
        keys = []
        batched = self.spec.batch_size > 1  # per_sample layers cost another number than shared ones only there
        for i in range(len(layers)):
            depthwise = bool(layers.depthwise[i])
            group_key = int(layers.out_channels[i] // layers.in_channels[i]) if depthwise else int(layers.groups[i])
            key = _key(
                depthwise, group_key, int(layers.kernel_h[i]), int(layers.kernel_w[i]), int(layers.out_h[i]), int(layers.out_w[i]),
                batched and bool(layers.per_sample[i]),
            )
            if key not in self.grids:
                name = layers.names[i] if layers.names else f"#{i}"
                raise HardwareError(f"layer {name} (key depthwise/groups/kernel/out = {key}) is not in the lookup table")
            keys.append(self.grids[key])
        a = max(len(g.cin) for g in keys)
        b = max(len(g.cout) for g in keys)
        dev = layers.in_channels.device
        inf = float("inf")
        cin_axis = torch.tensor([g.cin + [inf] * (a - len(g.cin)) for g in keys], dtype=torch.float64, device=dev)
        cout_axis = torch.tensor([g.cout + [inf] * (b - len(g.cout)) for g in keys], dtype=torch.float64, device=dev)
        values = torch.tensor(
            [[row + [row[-1]] * (b - len(row)) for row in g.values] + [g.values[-1] + [g.values[-1][-1]] * (b - len(g.cout))] * (a - len(g.cin)) for g in keys],
            dtype=torch.float64,
            device=dev,
        )
        n_in = torch.tensor([len(g.cin) for g in keys], device=dev)
        n_out = torch.tensor([len(g.cout) for g in keys], device=dev)
        prepared = (cin_axis, cout_axis, values, n_in, n_out)
        self._prepared[layers] = prepared
        return prepared

    @staticmethod
    def _bracket(axis: torch.Tensor, count: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lo_val = axis[:, 0]
        hi_val = axis.gather(1, (count - 1).unsqueeze(1)).squeeze(1)
        x = torch.minimum(torch.maximum(x, lo_val), hi_val)
        hi = torch.searchsorted(axis, x.detach().unsqueeze(1)).squeeze(1)
        hi = torch.minimum(torch.clamp(hi, min=1), (count - 1).clamp(min=0))
        lo = (hi - 1).clamp(min=0)
        a0 = axis.gather(1, lo.unsqueeze(1)).squeeze(1)
        a1 = axis.gather(1, hi.unsqueeze(1)).squeeze(1)
        span = a1 - a0
        t = torch.where(span > 0, (x - a0) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(x))
        return lo, hi, t

    def cycles(self, layers: LayerTable, *, in_channels=None, out_channels=None, temperature=None) -> torch.Tensor:
        cin_axis, cout_axis, values, n_in, n_out = self._prepare(layers)
        exact = in_channels is None and out_channels is None
        cin = layers.in_channels if in_channels is None else in_channels
        cout = layers.out_channels if out_channels is None else out_channels
        cout = torch.where(layers.depthwise, torch.zeros_like(cout), cout)  # depthwise: 1-D in in_channels
        if exact:
            lo_in = cin_axis[:, 0]
            hi_in = cin_axis.gather(1, (n_in - 1).unsqueeze(1)).squeeze(1)
            lo_out = cout_axis[:, 0]
            hi_out = cout_axis.gather(1, (n_out - 1).unsqueeze(1)).squeeze(1)
            outside = (cin < lo_in) | (cin > hi_in) | (cout < lo_out) | (cout > hi_out)
            if bool(outside.any()):
                i = int(outside.nonzero()[0])
                name = layers.names[i] if layers.names else f"#{i}"
                raise HardwareError(
                    f"layer {name}: channels {int(cin[i])}->{int(cout[i])} outside the lookup table "
                    f"({int(lo_in[i])}..{int(hi_in[i])} -> {int(lo_out[i])}..{int(hi_out[i])})"
                )
        i0, i1, ti = self._bracket(cin_axis, n_in, cin)
        j0, j1, tj = self._bracket(cout_axis, n_out, cout)
        rows = torch.arange(len(layers), device=values.device)
        v00 = values[rows, i0, j0]
        v01 = values[rows, i0, j1]
        v10 = values[rows, i1, j0]
        v11 = values[rows, i1, j1]
        return (1 - ti) * ((1 - tj) * v00 + tj * v01) + ti * ((1 - tj) * v10 + tj * v11)

    def accesses(self, layers: LayerTable, *, in_channels=None, out_channels=None, temperature=None) -> dict[str, torch.Tensor]:
        """Words moved per layer (module docstring: modelled, not looked up)."""
        if self._words_model is None:
            return super().accesses(layers, in_channels=in_channels, out_channels=out_channels, temperature=temperature)
        return self._words_model.accesses(layers, in_channels=in_channels, out_channels=out_channels, temperature=temperature)

"""``scalesim``: layers priced by SCALE-Sim 3.0 itself (optional extra ``uboost[scalesim]``).

Each *unique* layer shape of a table is simulated once (CALC mode for an unbounded spec, USER
mode with the spec's SRAM and DRAM bandwidth when :attr:`HardwareSpec.memory_bound`, scaled to the
layer's bits: :func:`~uboost.hardware.scalesim_runner.user_memory`), in worker
processes of SCALE-Sim's own environment, and cached on disk (see
:mod:`uboost.hardware.scalesim_runner`). A table's cycles are simulated the first time it is seen
and kept for the model's lifetime, so a search in ``expected`` cost mode -- where every supernet
row is a concrete layer shape -- optimizes SCALE-Sim's own numbers exactly, with no simulation
inside the training step.

Soft (expected) channel counts, as ``smooth`` cost mode passes them, cannot be simulated; they are
priced by the closed form of the same memory system (``systolic-mem``; ``systolic`` in CALC mode)
scaled, per layer, by SCALE-Sim over the closed form at the layer's own channels: exact at the
table's shapes, smooth and monotone between them.

Words moved (and so energy): in USER mode (finite buffers) they are SCALE-Sim's own access counts
(``DETAILED_ACCESS_REPORT.csv``), DRAM re-fetches included, the same way per layer (soft channels:
``systolic-mem``'s counts scaled to SCALE-Sim's). In CALC mode SCALE-Sim's counts are the
unbounded-memory ones, which :func:`uboost.hardware.access.access_counts` equals
(``tests/hardware/test_access_golden.py``), so those are used without simulating anything more.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Sequence
from typing import Any

import torch

from uboost.exceptions import ConfigError
from uboost.hardware.access import ACCESS_KEYS
from uboost.hardware.base import CostModel
from uboost.hardware.layers import LayerShape, LayerTable
from uboost.hardware.registry import register
from uboost.hardware.scalesim_runner import (
    Progress, ResultCache, RunStats, layer_job, simulate, simulate_words, whole_bandwidth,
)
from uboost.hardware.spec import HardwareSpec
from uboost.hardware.systolic import SystolicArray
from uboost.hardware.systolic_mem import MemorySystolicArray

logger = logging.getLogger(__name__)


@register("scalesim", description="SCALE-Sim 3.0 per unique layer shape (CALC, or USER with --sram-kb/--dram-bw-words); disk cache, worker processes")
class ScaleSimModel(CostModel):
    """SCALE-Sim's cycle counts per layer; see the module docstring.

    ``python``: the interpreter with ``scalesim`` (default: :func:`~uboost.hardware.scalesim_runner.find_python`),
    ``cache_dir``: where results are kept, ``workers``: simulation processes, ``progress``:
    ``progress(done, total)`` after each simulation (the CLI draws a Rich bar with it).
    """

    prices_memory = True

    name = "scalesim"
    pe_modes = ("fixed",)  # measured on SCALE-Sim's fixed 1-byte PEs

    def __init__(
        self,
        spec: HardwareSpec | None = None,
        *,
        python: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
        workers: int = 2,
        progress: Progress | None = None,
        **spec_fields: Any,
    ):
        super().__init__(spec, **spec_fields)
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers must be a positive integer, got {workers!r}")
        self._respec()
        self.python = python
        self.cache = ResultCache(cache_dir)
        self.workers = workers
        self.progress = progress
        self.stats = RunStats()
        self._memo: dict[str, tuple[int, int]] = {}  # job key -> (cycles, stalls), for tables rebuilt every step (smooth mode)
        self._words_memo: dict[str, dict[str, int]] = {}  # job key -> access counts

    def _respec(self) -> None:
        # per table, the results on this spec's memory system (another clock may change its words per cycle); the job
        # memos stay shared, as a job's key names its memory system
        if self.spec.memory_bound:  # said here, before a search writes its run directory, not at the first job
            whole_bandwidth(self.spec)
        closed = MemorySystolicArray if self.spec.memory_bound else SystolicArray
        self.closed_form: CostModel = closed(self.spec)
        self._simulated: "weakref.WeakKeyDictionary[LayerTable, torch.Tensor]" = weakref.WeakKeyDictionary()
        self._simulated_words: "weakref.WeakKeyDictionary[LayerTable, dict[str, torch.Tensor]]" = weakref.WeakKeyDictionary()

    @classmethod
    def example(cls, spec: HardwareSpec, layers: Sequence[LayerShape] = ()) -> "ScaleSimModel":
        """A model whose cache is pre-filled with ``systolic`` cycles for ``layers`` (SCALE-Sim's CALC numbers,
        see ``tests/hardware/test_scalesim_golden.py``) and no simulator: generic tests run without SCALE-Sim.
        Its cache is a temporary folder, removed with the cache object (or at exit)."""
        import shutil
        import tempfile

        folder = tempfile.mkdtemp(prefix="uboost-scalesim-example-")
        model = cls(spec, python=os.devnull, cache_dir=folder)
        weakref.finalize(model.cache, shutil.rmtree, folder, ignore_errors=True)  # on the cache: a copied model shares it
        if layers:
            table = LayerTable.from_shapes(layers)
            words = model.closed_form.accesses(table) if spec.memory_bound else None
            model.prefill(layers, SystolicArray(spec).cycles(table).tolist(), words)
        return model

    def prefill(self, shapes: Sequence[LayerShape], cycles: Sequence[float],
                words: dict[str, Sequence[float] | torch.Tensor] | None = None) -> None:
        """Store known cycle counts (and access counts: per key, one value per layer) of whole layers
        in the cache (as if simulated)."""
        for i, (shape, total) in enumerate(zip(shapes, cycles)):
            job, repeat = layer_job(shape, self.spec)
            per_job = None if words is None else {key: int(round(float(v[i]) / repeat)) for key, v in words.items()}
            self.cache.put(job.key, int(round(total / repeat)), 0, 0.0, per_job)

    def _per_job(self, shapes: list[LayerShape], memo: dict, fetch) -> list[tuple[Any, int]]:
        """``(what fetch gives for the shape's job, repeats)`` per shape; jobs not in ``memo`` fetched at once
        (``simulate`` or ``simulate_words``: the disk cache, else SCALE-Sim) and kept there."""
        jobs = [layer_job(s, self.spec) for s in shapes]
        missing = [job for job, _ in jobs if job.key not in memo]
        if missing:
            results = fetch(missing, python=self.python, workers=self.workers, cache=self.cache, progress=self.progress,
                            stats=self.stats)
            memo.update(zip((job.key for job in missing), results))
        return [(memo[job.key], repeat) for job, repeat in jobs]

    def simulate_shapes(self, shapes: list[LayerShape]) -> list[float]:
        """SCALE-Sim cycles of each layer shape on this model's spec (cached; unique shapes simulated once)."""
        return [float(cycles * repeat) for (cycles, _), repeat in self._per_job(shapes, self._memo, simulate)]

    def simulate_shape_words(self, shapes: list[LayerShape]) -> list[dict[str, float]]:
        """SCALE-Sim's access counts of each layer shape on this model's spec (cached)."""
        return [{key: float(v * repeat) for key, v in words.items()}
                for words, repeat in self._per_job(shapes, self._words_memo, simulate_words)]

    def _table_words(self, layers: LayerTable) -> dict[str, torch.Tensor]:
        cached = self._simulated_words.get(layers)
        if cached is None:
            per_layer = self.simulate_shape_words(layers.shapes())
            device = layers.in_channels.device
            cached = {key: torch.tensor([w[key] for w in per_layer], dtype=torch.float64, device=device)
                      for key in ACCESS_KEYS}
            self._simulated_words[layers] = cached
        return cached

    def accesses(self, layers: LayerTable, *, in_channels=None, out_channels=None, temperature=None) -> dict[str, torch.Tensor]:
        """SCALE-Sim's access counts with finite buffers (module docstring), else the unbounded ones."""
        if not self.spec.memory_bound:
            return super().accesses(layers, in_channels=in_channels, out_channels=out_channels, temperature=temperature)
        exact = self._table_words(layers)
        if in_channels is None and out_channels is None and temperature is None:
            return dict(exact)
        with torch.no_grad():
            anchor = self.closed_form.accesses(layers)
        soft = self.closed_form.accesses(layers, in_channels=in_channels, out_channels=out_channels, temperature=temperature)
        return {key: _ratio(exact[key], anchor[key]) * soft[key] for key in ACCESS_KEYS}

    def _table_cycles(self, layers: LayerTable) -> torch.Tensor:
        cached = self._simulated.get(layers)
        if cached is None:
            cycles = self.simulate_shapes(layers.shapes())
            cached = torch.tensor(cycles, dtype=torch.float64, device=layers.in_channels.device)
            self._simulated[layers] = cached
        return cached

    def cycles(self, layers: LayerTable, *, in_channels=None, out_channels=None, temperature=None) -> torch.Tensor:
        exact = self._table_cycles(layers)
        if in_channels is None and out_channels is None and temperature is None:
            return exact
        with torch.no_grad():
            scale = _ratio(exact, self.closed_form.cycles(layers))
        return scale * self.closed_form.cycles(layers, in_channels=in_channels, out_channels=out_channels, temperature=temperature)


def _ratio(simulated: torch.Tensor, closed: torch.Tensor) -> torch.Tensor:
    """SCALE-Sim over the closed form per layer (1 where the closed form says 0): what the closed form's
    soft-channel numbers are scaled by, exact at the table's own shapes."""
    return torch.where(closed > 0, simulated / closed.clamp_min(1e-12), torch.ones_like(simulated))

"""``scalesim``: layers priced by SCALE-Sim 3.0 itself (optional extra ``uboost[scalesim]``).

Each *unique* layer shape of a table is simulated once (CALC mode for an unbounded spec, USER
mode with the spec's SRAM and DRAM bandwidth when :attr:`HardwareSpec.memory_bound`), in worker
processes of SCALE-Sim's own environment, and cached on disk (see
:mod:`uboost.hardware.scalesim_runner`). A table's cycles are simulated the first time it is seen
and kept for the model's lifetime, so a search in ``expected`` cost mode -- where every supernet
row is a concrete layer shape -- optimizes SCALE-Sim's own numbers exactly, with no simulation
inside the training step.

Soft (expected) channel counts, as ``smooth`` cost mode passes them, cannot be simulated; they are
priced by the closed form of the same memory system (``systolic-mem``; ``systolic`` in CALC mode)
scaled, per layer, by SCALE-Sim over the closed form at the layer's own channels: exact at the
table's shapes, smooth and monotone between them.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Sequence
from typing import Any

import torch

from uboost.exceptions import ConfigError
from uboost.hardware.base import CostModel
from uboost.hardware.layers import LayerShape, LayerTable
from uboost.hardware.registry import register
from uboost.hardware.scalesim_runner import Progress, ResultCache, RunStats, layer_job, simulate
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
        self.python = python
        self.cache = ResultCache(cache_dir)
        self.workers = workers
        self.progress = progress
        self.stats = RunStats()
        closed = MemorySystolicArray if self.spec.memory_bound else SystolicArray
        self.closed_form: CostModel = closed(self.spec)
        self._simulated: "weakref.WeakKeyDictionary[LayerTable, torch.Tensor]" = weakref.WeakKeyDictionary()
        self._memo: dict[str, int] = {}  # job key -> cycles, for tables rebuilt every step (smooth mode)

    @classmethod
    def example(cls, spec: HardwareSpec, layers: Sequence[LayerShape] = ()) -> "ScaleSimModel":
        """A model whose cache is pre-filled with ``systolic`` cycles for ``layers`` (SCALE-Sim's CALC numbers,
        see ``tests/hardware/test_scalesim_golden.py``) and no simulator: generic tests run without SCALE-Sim."""
        import tempfile

        model = cls(spec, python=os.devnull, cache_dir=tempfile.mkdtemp(prefix="uboost-scalesim-example-"))
        if layers:
            model.prefill(layers, SystolicArray(spec).cycles(LayerTable.from_shapes(layers)).tolist())
        return model

    def prefill(self, shapes: Sequence[LayerShape], cycles: Sequence[float]) -> None:
        """Store known cycle counts of whole layers in the cache (as if simulated)."""
        for shape, total in zip(shapes, cycles):
            job, repeat = layer_job(shape, self.spec)
            self.cache.put(job.key, int(round(total / repeat)), 0, 0.0)

    def simulate_shapes(self, shapes: list[LayerShape]) -> list[float]:
        """SCALE-Sim cycles of each layer shape on this model's spec (cached; unique shapes simulated once)."""
        jobs = [layer_job(s, self.spec) for s in shapes]
        missing = [job for job, _ in jobs if job.key not in self._memo]
        if missing:
            results = simulate(
                missing, python=self.python, workers=self.workers, cache=self.cache, progress=self.progress, stats=self.stats
            )
            self._memo.update({job.key: cycles for job, (cycles, _) in zip(missing, results)})
        return [float(self._memo[job.key] * repeat) for job, repeat in jobs]

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
            anchor = self.closed_form.cycles(layers)
            scale = torch.where(anchor > 0, exact / anchor.clamp_min(1e-12), torch.ones_like(exact))
        return scale * self.closed_form.cycles(layers, in_channels=in_channels, out_channels=out_channels, temperature=temperature)

"""Where ``systolic-mem`` is measured against SCALE-Sim USER mode, and how well (issue 22).

The closed form (:mod:`uboost.hardware.systolic_mem`) is fitted and scored on SCALE-Sim USER-mode cycles of
``tests/hardware/data/scalesim_user*.csv``: 32x32 and 128x128 arrays, WS/OS/IS, 8-256 kB per buffer, 4-32
DRAM words per cycle. :data:`HELD_OUT_MAPE` holds its held-out error per measured corner; :func:`unmeasured`
says what of an accelerator lies outside the data (the model's ``memory_note`` points to ``--cost-model
scalesim`` there: a single layer unlike the data can be far off, ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

# Held-out MAPE (3-fold over layers, constants refitted without them; worst over the measured
# bandwidths) per (rows, cols, dataflow, SRAM kB), from `benchmarks/bench_memory_model.py --groups`.
# Only measured corners are listed; over 0.25 the model's memory_note points to --cost-model scalesim.
HELD_OUT_MAPE: dict[tuple[int, int, str, int], float] = {
    (32, 32, 'is', 8): 0.093, (32, 32, 'is', 16): 0.072, (32, 32, 'is', 64): 0.065, (32, 32, 'is', 256): 0.026,
    (32, 32, 'os', 8): 0.112, (32, 32, 'os', 16): 0.099, (32, 32, 'os', 64): 0.076, (32, 32, 'os', 256): 0.039,
    (32, 32, 'ws', 8): 0.103, (32, 32, 'ws', 16): 0.069, (32, 32, 'ws', 64): 0.102, (32, 32, 'ws', 256): 0.032,
    (128, 128, 'is', 8): 0.093, (128, 128, 'is', 16): 0.092, (128, 128, 'is', 64): 0.068, (128, 128, 'is', 256): 0.039,
    (128, 128, 'os', 8): 0.102, (128, 128, 'os', 16): 0.120, (128, 128, 'os', 64): 0.105, (128, 128, 'os', 256): 0.047,
    (128, 128, 'ws', 8): 0.128, (128, 128, 'ws', 16): 0.123, (128, 128, 'ws', 64): 0.081, (128, 128, 'ws', 256): 0.021,
}

MEASURED_BANDWIDTH = (4.0, 32.0)  # DRAM words per cycle of the data behind HELD_OUT_MAPE
MEASURED_TEXT = "32x32 and 128x128 arrays, 8-256 kB buffers, 4-32 DRAM words per cycle"


def unmeasured(spec) -> str:
    """What of a memory-bound ``spec`` lies outside the SCALE-Sim data the model is fitted and scored on
    (its arrays, buffer sizes and bandwidths: :data:`HELD_OUT_MAPE`'s corners), as text; ``""``: inside."""
    arrays = {(r, c) for r, c, _, _ in HELD_OUT_MAPE}
    kbs = [kb for _, _, _, kb in HELD_OUT_MAPE]
    out = []
    if (spec.rows, spec.cols) not in arrays:
        out.append(f"{spec.array} arrays")
    sized = [kb for kb in spec.buffer_kb if kb is not None]
    if any(not min(kbs) <= kb <= max(kbs) for kb in sized):  # ifmap/filter/ofmap, as the accelerator is written
        same = len(set(spec.buffer_kb)) == 1
        out.append(("/".join("unbounded" if kb is None else f"{kb:g}" for kb in spec.buffer_kb) if not same
                    else f"{sized[0]:g}") + " kB buffers")
    words = spec.dram_words_per_cycle
    if words is not None and not MEASURED_BANDWIDTH[0] <= words <= MEASURED_BANDWIDTH[1]:
        out.append(f"{words:g} DRAM word{'' if words == 1 else 's'} per cycle")
    return ", ".join(out)


def thin_linear_layers(spec, layers, half_filter_words: float) -> list[str]:
    """Names of the batch-1 ``Linear`` layers whose weights overflow the filter buffer's active half
    (``half_filter_words``), so that they stall: the data holds two such shapes, and a sweep of 20 on
    32x32 arrays with 16 kB buffers put the model at 0.54-1.00x of SCALE-Sim on OS, 0.63-1.00x on WS and
    0.56-1.00x on IS (their prefetches traced exactly; 0.12-2.35x, 0.79-1.65x and 0.73-1.41x before), the misses
    layers of one to three prefetches (``benchmarks/RESULTS.md``, "the filter ports, and the ifmap of layers that
    read each pixel once, traced exactly")."""
    if spec.batch_size != 1:
        return []
    return [layer.name for layer in layers
            if layer.kind == "linear" and not layer.per_sample and layer.out_h * layer.out_w == 1
            and layer.in_channels * layer.out_channels // layer.groups * layer.weight_bits / 8 > half_filter_words]


__all__ = ["HELD_OUT_MAPE", "MEASURED_BANDWIDTH", "MEASURED_TEXT", "thin_linear_layers", "unmeasured"]

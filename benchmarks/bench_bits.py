"""Mixed precision: uniform 8-bit, uniform 4-bit and the mixed search over {2, 4, 8}, each searched
and retrained quantization-aware, priced on (a) bitfusion 16x16 WS and (b) fixed 16x16 WS with
16 kB SRAMs and 4 words/cycle (systolic-mem). Also the search step time with and without bits.

    nice -n 10 env OMP_NUM_THREADS=1 python benchmarks/bench_bits.py --spaces lenet --seeds 0,1
    ... --hardware fixed-mem --variants mixed-2-4-8 --no-steps     # one cell of the table

Prints one row per (space, hardware, variant, seed); runs go to --root, whose bench_bits.json
collects the rows of every invocation. The step time is CPU time of the process (one thread): on
a shared machine wall time mostly measures the load.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

HARDWARE = {
    "bitfusion": {"pe": "bitfusion", "array": "16x16", "dataflow": "ws"},
    "fixed-mem": {"pe": "fixed", "array": "16x16", "dataflow": "ws", "cost_model": "systolic-mem", "sram_kb": 16, "dram_bw_words": 4},
}
VARIANTS = {"uniform-8": {"bits": (8,)}, "uniform-4": {"bits": (4,)}, "mixed-2-4-8": {"bits": (2, 4, 8)}}


def run(space: str, hardware: str, variant: str, seed: int, root: Path, epochs: int, retrain_epochs: int) -> dict:
    from uboost.retrain import RetrainConfig, retrain
    from uboost.search import SearchConfig, run_search

    out = root / f"{space}-{hardware}-{variant}-s{seed}"
    config = SearchConfig(space=space, dataset="digits", seed=seed, epochs=epochs, accelerator="cpu",
                          **HARDWARE[hardware], **VARIANTS[variant])
    started = time.perf_counter()
    result = run_search(config, out, force=True)
    search_s = time.perf_counter() - started
    re = retrain(out, RetrainConfig(epochs=retrain_epochs, seed=seed, accelerator="cpu"))
    precision = json.loads((out / "precision.json").read_text())
    return {
        "space": space, "hardware": hardware, "variant": variant, "seed": seed,
        "test_acc": re.test_acc, "latency_us": re.report.latency_ms * 1e3, "utilization": re.report.utilization,
        "energy_uj": re.report.energy_uj,
        "precision": {k: v["weight_bits"] for k, v in precision.items()},
        "search_s": search_s, "bits": sorted({v["weight_bits"] for v in precision.values()}),
        "searched_latency_us": result.hardware.latency_ms * 1e3,
    }


def step_time(space: str, seed: int, root: Path, bits) -> float:
    """Median CPU seconds of one search step (architecture + weight step; 1 thread), timed inside
    the training loop, steps 3 onwards (the first steps trace the supernet); same data and settings."""
    import statistics

    import pytorch_lightning as pl

    from uboost.search import SearchConfig, run_search

    times: list[float] = []

    class Timer(pl.Callback):  # CPU time of this process: wall time on the shared 2-core machine mostly measures the load
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.started = time.process_time()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            times.append(time.process_time() - self.started)

    config = SearchConfig(space=space, dataset="digits", seed=seed, epochs=1, accelerator="cpu", max_samples=1280,
                          **HARDWARE["bitfusion"], **({"bits": bits} if bits else {}))
    run_search(config, root / f"step-{space}-{'bits' if bits else 'float'}-s{seed}", force=True, callbacks=[Timer()])
    return statistics.median(times[2:])


def main() -> None:
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser()
    parser.add_argument("--spaces", default="lenet")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--retrain-epochs", type=int, default=10)
    parser.add_argument("--root", type=Path, default=Path("runs/bench_bits"))
    parser.add_argument("--steps-only", action="store_true", help="only the search step time with and without bits")
    parser.add_argument("--hardware", default=",".join(HARDWARE), help="comma-separated: " + ", ".join(HARDWARE))
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: " + ", ".join(VARIANTS))
    parser.add_argument("--no-steps", action="store_true", help="skip the step-time measurement")
    args = parser.parse_args()
    rows = []
    for space in args.spaces.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            if not args.no_steps:
                step_time(space, seed, args.root, None)  # warm-up: the first search of a process pays the imports
                t_float = min(step_time(space, seed, args.root, None), step_time(space, seed, args.root, None))
                t_bits = min(step_time(space, seed, args.root, (2, 4, 8)), step_time(space, seed, args.root, (2, 4, 8)))
                print(json.dumps({"space": space, "seed": seed, "step_cpu_s_float": t_float, "step_cpu_s_bits": t_bits,
                                  "ratio": t_bits / t_float}), flush=True)
            for hardware in () if args.steps_only else args.hardware.split(","):
                for variant in args.variants.split(","):
                    row = run(space, hardware, variant, seed, args.root, args.epochs, args.retrain_epochs)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    if rows:  # appended: several invocations (spaces, seeds, variants) build one table
        path = args.root / "bench_bits.json"
        previous = json.loads(path.read_text()) if path.is_file() else []
        path.write_text(json.dumps(previous + rows, indent=1))


if __name__ == "__main__":
    main()

"""Data-parallel search (issue 25): 1 vs N processes on Lightning DDP (not a test: nothing asserts a time).

**CPU (default).** On the ``no-norm`` space (:mod:`uboost.distributed.checks`: no batch norm, so
N ranks at batch b follow one ``ddp`` process at batch N*b) the same search runs as

* ``1 proc (auto)``: today's one-process search at the global batch (its own data order);
* ``1 proc (ddp)``: one DDP rank at the global batch (the sharded data order of world size 1);
* ``2 procs (ddp)``: two ranks at half the batch each, gloo on 127.0.0.1;

and reports seconds per epoch (mean over epochs, rank 0), whole-run seconds, the largest alpha
difference to ``1 proc (ddp)`` and whether the exported architecture is the same, and whether
alphas, weights, multiplier and sampled path were bitwise identical across ranks at every step.
On a 2-core machine two processes compete for the cores the single process already uses
(PyTorch's intra-op threads), so they are not faster; the point is the equivalence.

Run: ``PYTHONPATH=src nice -n 10 python benchmarks/bench_ddp.py [--epochs 2] [--max-samples 640]
[--global-batch 32] [--sampling single-path]``.

**GPU.** ``--gpu [--devices 1,2,4,8]`` searches ``darts-cifar`` (``--width 16 --cells 8``) on digits
resized to ``--image-size 32`` (RGB) with a fixed per-device ``--batch-size`` (weak scaling) for
``--steps`` steps on 1 -> N GPUs, and prints the median step time per device (first
``--warmup`` steps skipped), samples per second and the scaling efficiency
``throughput(N) / (N x throughput(1))``. Add ``--precision bf16-mixed`` to time mixed precision.

**Host syncs.** ``--syncs`` runs a one-process search (``lenet``, single-path, a latency budget
with its commit phase) and counts, per training step, the host syncs a GPU would wait for, by
call site (:mod:`uboost.host_syncs`: reads of device values -- ``item``, ``float()``, ``bool()``,
``tolist``, ``numpy``, blocking copies to the host --, not of host-made tensors such as an
optimizer's step counter). ``bench_search_step.py --syncs --baseline`` compares them before/after.

Every run is a subprocess re-running this file as ``--worker`` (Lightning's launcher re-runs the
command once per extra rank).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]


def worker(out: str, report: str, config_json: str) -> None:
    from uboost.distributed import global_rank
    from uboost.distributed.checks import RankConsistency, register_no_norm
    from uboost.search import SearchConfig, run_search

    register_no_norm()
    options = json.loads(config_json)
    check = RankConsistency(check=options.pop("check", True))
    config = SearchConfig(**options)
    result = run_search(config, out, force=True, callbacks=[check])
    rank = global_rank(devices=config.devices, num_nodes=config.num_nodes)
    Path(report, f"rank{rank}.json").write_text(json.dumps({
        "world": check.size, "records": check.records, "epoch_seconds": check.epoch_seconds,
        "step_seconds": check.step_seconds, "seconds": result.seconds, "arch": result.arch,
    }))


def launch(options: dict, env_extra: dict | None = None, timeout_s: float = 1800) -> tuple[dict, dict | None]:
    """One search in subprocesses; returns rank 0's report and the run's alphas."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = Path(tempfile.mkdtemp(prefix="bench-ddp-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
           "PYTHONWARNINGS": "ignore", **(env_extra or {})}
    argv = [sys.executable, str(HERE), "--worker", str(tmp / "run"), str(tmp), json.dumps(options)]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}): {done.stderr[-2000:]}")
    report = json.loads((tmp / "rank0.json").read_text())
    alphas_path = tmp / "run" / "alphas.json"
    return report, json.loads(alphas_path.read_text()) if alphas_path.is_file() else None


def max_diff(a: dict, b: dict) -> float:
    return max(abs(x - y) for k in a for x, y in zip(a[k], b[k]))


def cpu(args) -> None:
    base = {"space": "no-norm", "dataset": "digits", "image_size": 8, "max_samples": args.max_samples,
            "epochs": args.epochs, "accelerator": "cpu", "sampling": args.sampling, "seed": args.seed}
    runs = [("1 proc (auto)", 1, "auto"), ("1 proc (ddp)", 1, "ddp"), ("2 procs (ddp)", 2, "ddp")]
    results = {}
    for name, devices, strategy in runs:
        options = {**base, "devices": devices, "strategy": strategy, "batch_size": args.global_batch // devices}
        results[name] = launch(options, {"OMP_NUM_THREADS": str(args.threads)})
        print(f"done: {name}", file=sys.stderr)
    ref_alphas = results["1 proc (ddp)"][1]
    ref_arch = results["1 proc (ddp)"][0]["arch"]
    print(f"\nno-norm on digits 8x8, {args.max_samples} samples ({int(round(args.max_samples * 0.8))} weights), "
          f"{args.epochs} epochs, global batch {args.global_batch}, {args.sampling}, OMP_NUM_THREADS={args.threads}, "
          f"{os.cpu_count()} cores\n")
    print(f"{'setting':16} {'procs':>5} {'batch/proc':>10} {'s/epoch':>8} {'run s':>7} {'max |d alpha|':>14} "
          f"{'same arch':>9} {'ranks identical':>15}")
    for name, devices, _ in runs:
        report, alphas = results[name]
        per_epoch = statistics.mean(report["epoch_seconds"]) if report["epoch_seconds"] else float("nan")
        identical = all(all(r[k] for k in ("alphas", "weights", "multiplier", "path")) for r in report["records"])
        identical_text = f"{identical} ({len(report['records'])} steps)"
        print(f"{name:16} {devices:>5} {args.global_batch // devices:>10} {per_epoch:>8.2f} {report['seconds']:>7.1f} "
              f"{max_diff(alphas, ref_alphas):>14.2e} {str(report['arch'] == ref_arch):>9} "
              f"{identical_text:>15}")


def gpu(args) -> None:
    import torch

    available = torch.cuda.device_count()
    counts = [int(n) for n in args.devices.split(",") if int(n) <= available]
    if not counts:
        raise SystemExit(f"no GPU count of {args.devices} fits the {available} GPUs here")
    print(f"darts-cifar width {args.width} cells {args.cells}, digits {args.image_size}x{args.image_size} RGB, "
          f"{args.batch_size} per device, {args.precision}, {args.steps} steps ({args.warmup} skipped)\n")
    print(f"{'GPUs':>4} {'step ms (median)':>16} {'p90 ms':>8} {'samples/s':>10} {'efficiency':>10}")
    import math

    from uboost.data import load_datasets

    train, _ = load_datasets("digits", image_size=args.image_size, channels=3)
    weights = int(round(len(train) * 0.8))  # the weight split of data_split=0.8
    single = None
    for n in counts:
        epochs = math.ceil(args.steps / math.ceil(weights / (args.batch_size * n)))  # digits is small: several epochs
        options = {"space": "darts-cifar", "space_options": {"width": args.width, "cells": args.cells}, "dataset": "digits",
                   "image_size": args.image_size, "epochs": epochs, "batch_size": args.batch_size,
                   "accelerator": "gpu", "devices": n, "precision": args.precision, "check": False}
        report, _ = launch(options)
        steps = sorted(report["step_seconds"][args.warmup:])
        median = statistics.median(steps)
        p90 = steps[int(0.9 * (len(steps) - 1))]
        throughput = n * args.batch_size / median
        single = single or throughput
        print(f"{n:>4} {1e3 * median:>16.1f} {1e3 * p90:>8.1f} {throughput:>10.0f} {throughput / (n * single):>10.2f}")


def syncs(args) -> None:
    """Count host syncs (reads of device values a GPU would wait for) inside each search step, by
    call site, with :mod:`uboost.host_syncs` (``bench_search_step.py --syncs`` compares them)."""
    import collections

    from uboost.host_syncs import report, step_callback
    from uboost.search import SearchConfig, run_search

    counter = step_callback()
    config = SearchConfig(space="lenet", dataset="digits", image_size=8, epochs=1, max_samples=320, batch_size=32,
                          accelerator="cpu", target_latency_ms=0.0008, budget_commit=0.5)
    with tempfile.TemporaryDirectory() as tmp:
        run_search(config, Path(tmp) / "run", callbacks=[counter])
    per_step = counter.totals()
    print(f"lenet single-path, latency budget with commit phase: {len(per_step)} steps, host syncs per step "
          f"{min(per_step)}-{max(per_step)} (median {statistics.median(per_step):g}; the first step traces the supernet)\n")
    sites: collections.Counter = collections.Counter()
    for step in counter.steps:
        sites.update(step)
    print("\n".join(report(sites, len(per_step), args.top)))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-samples", type=int, default=640)
    parser.add_argument("--global-batch", type=int, default=32)
    parser.add_argument("--sampling", default="single-path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of every process (CPU runs)")
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--devices", default="1,2,4,8")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--syncs", action="store_true", help="count host reads of tensor values per search step")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    if args.syncs:
        return syncs(args)
    gpu(args) if args.gpu else cpu(args)


if __name__ == "__main__":
    main()

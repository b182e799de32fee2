"""Search-step time of UBoost against plain GumbelDARTS (not a test: nothing here asserts a time).

Both strategies search the same ``darts-cifar`` space (a fresh instance per run: NNI mutates
the space in place), on the same data (scikit-learn digits resized to ``--image-size`` in
RGB), with the same batch size and seed, and the same train/val loaders (``UBoost(data_split=
None)`` uses the evaluator's train and val loaders the way DARTS does).

**Lockstep interleaving.** Every strategy runs its search in its own process (NNI keeps
process-global state), all started together, and a baton passed between them lets exactly one
process compute at a time, one step each in turn: A B C, B C A, C A B, ... (the order rotates
every round). Adjacent steps of different strategies therefore see the same load from other
processes on the machine; a search per process one after the other (tried first) gave pooled
ratios of 0.96 to 1.36 on this shared 2-core machine for the same code.

Measured, side by side in one run:

1. **Step time**: a Lightning callback times every training step (``on_train_batch_start`` to
   ``on_train_batch_end``: the architecture step plus the weight step). The first ``--warmup``
   steps of every run are skipped; the first UBoost step also traces the supernet once, and that
   one-off cost is timed alone and reported separately. Median and p90 of the remaining steps of
   all repeats and the ratio UBoost / GumbelDARTS against the target (<= 1.05): the median over
   rounds of the ratio of the two steps taken back to back (same load). The ratio of the pooled
   medians is shown too; it drifts when the load changes between repeats (1.15 against a
   per-round 1.04 once). "loop" also holds the baton through Lightning's per-step metric
   bookkeeping after ``on_train_batch_end`` and the next batch's loading.
2. **Hardware loss alone**: ``hardware_loss()`` then ``.loss.backward()`` on the traced supernet,
   timed in isolation (one process at a time), as a share of the GumbelDARTS step: what the
   hardware term *has* to cost, against the measured extra.
3. With ``--profile``: one more lockstep repeat, instrumented: the parts of a step (forward,
   backward, gradient clipping, the Gumbel-temperature hook, logging, the hardware loss...) are
   timed by wrapping methods on the instances, and UBoost's own parts give an expected ratio.
4. With ``--ablations``: UBoost variants (subclasses defined here; the library is not touched)
   join the lockstep, each without one candidate source of extra time. Their effects are ~1% of
   a step, near the noise: ``--profile`` is the precise tool.
5. **Single-path sampling** (``UBoost single-path``: ``UBoost(sampling="single-path")``, one
   sampled candidate per choice runs) against the mixtures: step-time ratio to GumbelDARTS
   (target <= 1/3) and to mixture UBoost, and **peak memory** per process: CPU RSS (the peak
   above the RSS at the start of training, by resetting the kernel's high-water mark through
   ``/proc/self/clear_refs``; the whole-process peak too) and ``torch.cuda.max_memory_allocated``
   where a GPU exists. Target: single-path peak <= 1/2 of the mixture's. ``UBoost single-path bits``
   (``bits=(2, 4, 8)``) against ``UBoost single-path``: target <= 1.3 (issue 21). Pick the strategies with
   ``--strategies`` (at CIFAR sizes each mixture process needs ~9 GB).

6. With ``--syncs``: host syncs per step (a GPU's waits, counted on the CPU by
   :mod:`uboost.host_syncs`) in one more, instrumented repeat; with ``--baseline SRC`` every UBoost
   strategy also runs with an older ``uboost`` (``SRC``: e.g. the parent commit's ``src``) in the
   same lockstep, as ``"<name> (base)"``: before and after side by side (``_syncs.py``).
   ``--space lenet`` and ``--target-latency-ms`` (with ``--budget-commit``) select the space and a
   latency budget with its commit phase.

7. With ``--paired-paths``: the single-path processes run the same op path at every step, drawn at random
   from a fixed stream instead of from their alphas (``_paired_paths.py``), so that "bits / no bits" per
   round compares the same network with and without the quantizers; the report counts the draws that
   stayed paired. The bits ratio is also given as the ratio of the total time of all timed steps.

Run: ``PYTHONPATH=src python benchmarks/bench_search_step.py [--steps 12] [--repeats 3] [--profile]``;
the issue-10 sizes: ``--width 16 --cells 8 --image-size 32 --batch-size 64 --steps 3 --repeats 1
--strategies GumbelDARTS,"UBoost single-path"`` (and the demo's: ``--width 8 --cells 3 --image-size 8
--batch-size 64``).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import queue
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable

import _syncs  # noqa: E402  (benchmarks/ is on the path when a script of it runs)
from _step_ablations import ABLATIONS, ablations, uboost_kwargs  # noqa: E402
from _step_timing import WAIT_S, Baton, Sections, make_timer, median_time, percentile  # noqa: E402

TARGET_RATIO = 1.05  # UBoost step / GumbelDARTS step, median over rounds
BASE = "GumbelDARTS"
SINGLE = "UBoost single-path"
MIXTURE = "UBoost"
BITS = "UBoost single-path bits"  # mixed precision {2, 4, 8} (issue 21: <= 1.3x the single-path step)
TARGETS = {SINGLE: 1 / 3}  # step-time ratio to GumbelDARTS; others: TARGET_RATIO
MEMORY_TARGET = 0.5  # single-path peak memory / the mixture's
DEFAULT_STRATEGIES = (BASE, MIXTURE, "UBoost smooth", SINGLE)
PROFILED = ("GumbelDARTS", "UBoost", "UBoost smooth")
EXTRA_PARTS = ("batch-start hook (tau walk)", "gradient clipping", "hardware loss forward", "log_dict(hw/*), log(tau)")


# -- strategies -------------------------------------------------------------------------------
def strategies(args) -> dict[str, Callable]:
    from nni.nas.strategy import GumbelDARTS

    from uboost.strategy import UBoost

    result = {
        "GumbelDARTS": lambda a: GumbelDARTS(),
        "UBoost": lambda a: UBoost(**uboost_kwargs(a)),
        "UBoost smooth": lambda a: UBoost(**uboost_kwargs(a, cost_mode="smooth")),
        SINGLE: lambda a: UBoost(**uboost_kwargs(a, sampling="single-path")),
        BITS: lambda a: UBoost(**uboost_kwargs(a, sampling="single-path", bits=(2, 4, 8))),
    }
    if getattr(args, "ablations", False):
        result.update({"UBoost " + name: make for name, make in ablations().items()})
    return result


def hw_loss_time(hw, repeats: int) -> tuple[float, float]:
    """Median seconds of the hardware loss: forward only (no grad), forward + backward."""
    import torch

    alphas = hw.supernet_cost._alphas

    def fwd_bwd():
        for a in alphas:
            a.grad = None
        hw().loss.backward()

    def fwd():
        with torch.no_grad():
            hw()

    return median_time(fwd, repeats), median_time(fwd_bwd, repeats)


# -- one search run, in its own process -------------------------------------------------------
def quiet() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=r".*is found to be not a nn\.Module.*")
    # nni.nas.strategy must be imported before nni.nas.oneshot.pytorch.strategy (which
    # uboost.strategy imports): the other order leaves nni.nas.strategy.GumbelDARTS an
    # ImportFailedStrategy (a circular import inside NNI 3.0)
    import nni.nas.strategy  # noqa: F401

    from uboost.strategy import quiet_nni

    quiet_nni()
    warnings.filterwarnings("ignore")
    for name in ("nni", "lightning.pytorch", "pytorch_lightning", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)


def one_run(args, name: str, baton: Baton, workdir: str, lock, profile: bool, count_syncs: bool = False) -> dict:
    import pytorch_lightning as pl
    import torch
    from nni.nas.evaluator.pytorch import Classification, DataLoader
    from nni.nas.oneshot.pytorch.supermodule.differentiable import GumbelSoftmax

    from uboost.data import load_datasets
    from uboost.search_spaces import create
    from uboost.strategy import run_experiment

    channels = 1 if args.space == "lenet" else 3
    train, val = load_datasets("digits", image_size=args.image_size, channels=channels, seed=args.seed)
    if args.tile_data > 1:  # large batches: digits holds ~5 batches of 256; the same images again (time, not accuracy)
        train, val = (torch.utils.data.ConcatDataset([d] * args.tile_data) for d in (train, val))
    pl.seed_everything(args.seed, verbose=False)
    shape = (channels, args.image_size, args.image_size)
    options = dict(input_shape=shape) if args.space == "lenet" else dict(width=args.width, cells=args.cells, input_shape=shape)
    space = create(args.space, **options)
    sections = Sections() if profile else None
    timer = make_timer(baton, sections)
    syncs = _syncs.step_counter() if count_syncs else None
    evaluator = Classification(
        train_dataloaders=DataLoader(train, batch_size=args.batch_size, shuffle=True, drop_last=True,
                                     generator=torch.Generator().manual_seed(args.seed)),
        val_dataloaders=DataLoader(val, batch_size=args.batch_size, shuffle=True, drop_last=True,
                                   generator=torch.Generator().manual_seed(args.seed + 1)),
        num_classes=10,
        max_epochs=1,
        limit_train_batches=args.warmup + args.steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[timer] + ([syncs] if syncs is not None else []),
        enable_progress_bar=False,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    strategy = strategies(args)[_syncs.strategy_name(name)](args)
    spent: list[float] = []
    hw = getattr(strategy, "hardware_loss", None)
    if hw is not None:
        real_attach = hw.attach

        def timed_attach(*a, **k):
            t = time.perf_counter()
            real_attach(*a, **k)
            spent.append(time.perf_counter() - t)

        object.__setattr__(hw, "attach", timed_attach)  # instance attribute: the class is untouched
    run_experiment(space, evaluator, strategy, workdir=workdir)
    if len(timer.times) != args.warmup + args.steps:
        raise RuntimeError(f"expected {args.warmup + args.steps} timed steps, got {len(timer.times)}")
    module = evaluator.trainer.lightning_module
    result = dict(name=name, times=timer.times, loops=timer.loops, attach=spent[0] if spent else None, memory=timer.memory.result,
                  sections=sections.steps if sections else None, hw=None,
                  syncs=[dict(s) for s in syncs.steps] if syncs is not None else None,
                  modules=sum(1 for _ in module.modules()),
                  gumbel=sum(isinstance(m, GumbelSoftmax) for m in module.modules()))
    module_hw = getattr(module, "hardware_loss", None)
    if not profile and not count_syncs and _syncs.strategy_name(name) in PROFILED and module_hw is not None and hasattr(module_hw, "supernet_cost"):
        with lock:  # one process at a time
            fwd, fwd_bwd = hw_loss_time(module_hw, args.hw_repeats)
        result["hw"] = dict(mode=module_hw.cost_mode, rows=len(module_hw.supernet_cost.shapes), fwd=fwd, fwd_bwd=fwd_bwd)
    return result


def child(args, name, index, semaphores, barrier, lock, results, workdir, profile, count_syncs=False) -> None:
    try:
        _syncs.use_baseline(name, args.baseline)
        quiet()
        import torch

        if args.threads > 0:
            torch.set_num_threads(args.threads)
        baton = Baton(semaphores, barrier, index, args.warmup + args.steps)
        paths: list[int] = []
        if getattr(args, "paired_paths", False):
            import _paired_paths

            _paired_paths.install(paths, args.seed)
        results.put({**one_run(args, name, baton, workdir, lock, profile, count_syncs), "paths": paths})
    except BaseException:
        barrier.abort()
        results.put(dict(name=name, error=traceback.format_exc()))


def lockstep(args, names: list[str], workdir: str, profile: bool = False, count_syncs: bool = False) -> dict[str, dict]:
    """One search per strategy, each in its own process, stepping in turn."""
    ctx = mp.get_context("spawn")
    semaphores = [ctx.Semaphore(0) for _ in names]
    barrier, lock, results = ctx.Barrier(len(names)), ctx.Lock(), ctx.Queue()
    procs = [
        ctx.Process(target=child, args=(args, name, i, semaphores, barrier, lock, results,
                                        os.path.join(workdir, f"{i}"), profile, count_syncs), daemon=True)
        for i, name in enumerate(names)
    ]
    for p in procs:
        p.start()
    out: dict[str, dict] = {}
    done = False
    try:
        while len(out) < len(names):
            try:
                result = results.get(timeout=WAIT_S)
            except queue.Empty:
                raise RuntimeError("a strategy's process stopped answering") from None
            if "error" in result:
                raise RuntimeError(f"{result['name']} failed:\n{result['error']}")
            out[result["name"]] = result
        done = True
    finally:
        for p in procs:  # only the processes started here
            p.join(timeout=60 if done else 0)
            if p.is_alive():
                p.terminate()
                p.join()
    return out


# -- report -----------------------------------------------------------------------------------
def ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.1f}"


def print_profile(profile: dict[str, dict], args, hw_backward: dict[str, float]) -> None:
    """Mean per-step time of every part (timed steps of the instrumented repeat)."""
    names = [n for n in PROFILED if n in profile]
    first = profile[names[0]]
    print()
    print(f"where the time goes (--profile: an instrumented lockstep repeat, mean ms per timed step; "
          f"the supernet module has {first['modules']} submodules, {first['gumbel']} GumbelSoftmax):")
    labels: list[str] = []
    for name in names:
        for step in profile[name]["sections"]:
            labels += [k for k in step if k not in labels]
    labels.sort(key=lambda k: (k == "(step total)", k))
    means = {
        name: {k: statistics.fmean(step.get(k, 0.0) for step in profile[name]["sections"][args.warmup:]) for k in labels}
        for name in names
    }
    other = "(other: loop, arch Adam, hooks)"
    for name in names:
        means[name][other] = means[name]["(step total)"] - sum(v for k, v in means[name].items() if k != "(step total)")
    labels.insert(len(labels) - 1, other)
    head = "".join(f"{n:>14}" for n in names) + "".join(f"{'d ' + n.replace('UBoost', 'UB'):>13}" for n in names[1:])
    print(f"{'part':<32}{head}")
    for k in labels:
        row = "".join(f"{means[n][k] * 1e3:14.2f}" for n in names)
        row += "".join(f"{(means[n][k] - means[names[0]][k]) * 1e3:13.2f}" for n in names[1:])
        print(f"{k:<32}{row}")
    print("d: difference to GumbelDARTS (the big forward/backward rows differ by noise; the small ones are exact)")
    base_step = means[names[0]]["(step total)"]
    for name in names[1:]:
        extra = sum(means[name][k] - means[names[0]][k] for k in EXTRA_PARTS if k in means[name])
        total = extra + hw_backward.get(name, 0.0)
        print(f"{name}: tau walk + clipping + hw-loss forward + hw logging (profiled) + hw-loss backward "
              f"{hw_backward.get(name, 0.0) * 1e3:.2f} ms (isolated) = {total * 1e3:.1f} ms = {total / base_step:.2%} "
              f"of the GumbelDARTS step: expected ratio {1 + total / base_step:.3f}")


def print_single_path(runs: list[dict[str, dict]], names: list[str], args) -> None:
    """Step time and peak memory side by side; single-path against the mixtures."""

    def per_round(name, base):
        return [a / b for run in runs for a, b in zip(run[name]["times"][args.warmup:], run[base]["times"][args.warmup:])]

    def memory(name, key):
        values = [run[name]["memory"].get(key) for run in runs]
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    mixture = MIXTURE if MIXTURE in names else BASE
    cuda = any(run[n]["memory"].get("cuda_peak") is not None for run in runs for n in names)
    print()
    print("step time and peak memory per process (median over repeats; 'extra': peak RSS above the RSS at the")
    print(f"start of training; ratios: per-round step ratio, peak ratio of 'extra'; mixture = {mixture}):")
    head = f"{'strategy':<26} {'step ms':>9} {'/ ' + BASE:>15} {'/ ' + MIXTURE:>9} {'RSS MB':>7} {'extra MB':>9} {'/ mixture':>9}"
    if cuda:
        head += f" {'cuda MB':>8} {'/ mixture':>9}"
    print(head)
    base_extra, base_cuda = memory(mixture, "rss_extra"), memory(mixture, "cuda_peak")
    for name in names:
        steps = [t for run in runs for t in run[name]["times"][args.warmup:]]
        to_mixture = f"{statistics.median(per_round(name, MIXTURE)):9.3f}" if MIXTURE in names else f"{'-':>9}"
        extra, peak = memory(name, "rss_extra"), memory(name, "rss_peak")
        row = (f"{name:<26} {ms(statistics.median(steps)):>9} {statistics.median(per_round(name, BASE)):15.3f} {to_mixture} "
               f"{peak or float('nan'):7.0f} {extra or float('nan'):9.0f} "
               f"{(extra / base_extra) if extra is not None and base_extra else float('nan'):9.3f}")
        if cuda:
            peak_cuda = memory(name, "cuda_peak")
            row += f" {peak_cuda or float('nan'):8.0f} {(peak_cuda / base_cuda) if peak_cuda and base_cuda else float('nan'):9.3f}"
        print(row)
    if SINGLE in names:
        ratio = statistics.median(per_round(SINGLE, BASE))
        extra = memory(SINGLE, "rss_extra")
        mem_ratio = extra / base_extra if extra is not None and base_extra else float("nan")
        print(f"targets: {SINGLE} step / {BASE} step {ratio:.3f} <= {TARGETS[SINGLE]:.3f} "
              f"{'PASS' if ratio <= TARGETS[SINGLE] else 'MISS'}; peak RSS extra / {mixture}'s {mem_ratio:.3f} <= "
              f"{MEMORY_TARGET:.2f} {'PASS' if mem_ratio <= MEMORY_TARGET else 'MISS'}")
        if cuda:
            c = memory(SINGLE, "cuda_peak") / base_cuda
            print(f"         cuda max_memory_allocated / {mixture}'s {c:.3f} {'PASS' if c <= MEMORY_TARGET else 'MISS'}")
    if not all(run[n]["memory"].get("rss_reset") for run in runs for n in names):
        print("note: /proc/self/clear_refs was not writable: RSS peaks include everything before training")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--cells", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per run (after warm-up)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps of every run")
    parser.add_argument("--repeats", type=int, default=3, help="lockstep runs (fresh processes) per strategy")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads per process (0: torch's default)")
    parser.add_argument("--rows", type=int, default=32, help="systolic array rows")
    parser.add_argument("--cols", type=int, default=32, help="systolic array columns")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tile-data", type=int, default=1, metavar="K",
                        help="repeat the digits images K times, so that large batches have enough steps (a timing, not a search)")
    parser.add_argument("--hw-repeats", type=int, default=200, help="isolated hardware-loss timings")
    parser.add_argument("--profile", action="store_true", help="also time the parts of a step (one more, instrumented repeat)")
    parser.add_argument("--ablations", action="store_true", help="also run UBoost variants without each candidate overhead")
    parser.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES),
                        help=f"comma-separated, {BASE} included (default: %(default)s)")
    parser.add_argument("--space", choices=("darts-cifar", "lenet"), default="darts-cifar",
                        help="lenet ignores --width and --cells (1 input channel)")
    parser.add_argument("--target-latency-ms", type=float, default=None, help="UBoost's latency budget (default: none)")
    parser.add_argument("--budget-commit", type=float, default=0.2, help="commit phase share with a budget (1: every step)")
    parser.add_argument("--syncs", action="store_true", help="also count host syncs per step (one more, instrumented repeat)")
    parser.add_argument("--paired-paths", action="store_true",
                        help="single-path processes run the same op path at every step, drawn at random (_paired_paths.py)")
    parser.add_argument("--baseline", default=None, metavar="SRC",
                        help="also run every UBoost strategy with the uboost package from SRC, as '<name> (base)'")
    args = parser.parse_args(argv)
    if args.warmup < 1:
        parser.error("--warmup must be >= 1 (the first UBoost step traces the supernet)")
    if min(args.steps, args.repeats, args.batch_size, args.hw_repeats, args.tile_data) < 1:
        parser.error("--steps, --repeats, --batch-size, --hw-repeats and --tile-data must be positive")

    import torch

    started = time.perf_counter()
    load_start = os.getloadavg()
    threads = args.threads if args.threads > 0 else torch.get_num_threads()
    channels = 1 if args.space == "lenet" else 3
    shape = "" if args.space == "lenet" else f" width {args.width}, cells {args.cells},"
    budget = "" if args.target_latency_ms is None else f", budget {args.target_latency_ms:g} ms (commit {args.budget_commit:g})"
    print(f"uboost search step: {args.space}{shape} input {channels}x{args.image_size}x{args.image_size}, "
          f"batch {args.batch_size}, digits{f' x{args.tile_data}' if args.tile_data > 1 else ''}, seed {args.seed}, systolic {args.rows}x{args.cols}{budget}")
    if args.baseline:
        print(f"'(base)': the uboost package from {args.baseline}")
    print(f"torch {torch.__version__}, {threads} intra-op thread(s) per process, {os.cpu_count()} CPUs, "
          f"load average {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}")
    names = [n.strip() for n in args.strategies.split(",") if n.strip()]
    known = set(DEFAULT_STRATEGIES) | {BITS} | {"UBoost " + n for n in ABLATIONS}
    if BASE not in names or not set(names) <= known:
        parser.error(f"--strategies must include {BASE} and name only: {', '.join(sorted(known))}")
    if args.ablations:
        names += ["UBoost " + n for n in ABLATIONS]
    if args.baseline:
        names = _syncs.with_baselines(names)
    print(f"{args.repeats} lockstep repeat(s) of {len(names)} strategies x {args.steps} timed steps (+{args.warmup} warm-up)")

    runs: list[dict[str, dict]] = []
    profile: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="uboost-bench-") as tmp:
        for r in range(args.repeats):
            runs.append(lockstep(args, names, os.path.join(tmp, str(r))))
            line = "  ".join(f"{n} {ms(statistics.median(runs[-1][n]['times'][args.warmup:])).strip()}" for n in names)
            print(f"  repeat {r + 1}/{args.repeats}: median ms  {line}  (load {os.getloadavg()[0]:.2f})", flush=True)
        if args.profile:
            profile = lockstep(args, list(PROFILED), os.path.join(tmp, "profile"), profile=True)
            print(f"  profile repeat done (load {os.getloadavg()[0]:.2f})", flush=True)
        if args.syncs:
            counted = lockstep(args, names, os.path.join(tmp, "syncs"), count_syncs=True)
            print(f"  sync-counting repeat done (load {os.getloadavg()[0]:.2f})", flush=True)

    def pooled(name, key="times"):
        return [t for run in runs for t in run[name][key][args.warmup:]]

    def per_round(name, key="times"):
        return [a / b for run in runs for a, b in zip(run[name][key][args.warmup:], run[BASE][key][args.warmup:])]

    base_median = statistics.median(pooled(BASE))
    print()
    print(f"{'strategy':<26} {'median ms':>9} {'p90 ms':>8} {'ratio':>6} {'pooled':>7} {'loop':>6} "
          f"{'step 1 ms':>9} {'trace ms':>8}  target")
    for name in names:
        steps = pooled(name)
        ratio = statistics.median(per_round(name))
        ratio_pooled = statistics.median(steps) / base_median
        loop = statistics.median(per_round(name, "loops"))
        first = statistics.median(run[name]["times"][0] for run in runs)
        attach = [run[name]["attach"] for run in runs if run[name]["attach"] is not None]
        trace = ms(statistics.median(attach)) if attach else f"{'-':>8}"
        target = TARGETS.get(_syncs.strategy_name(name), TARGET_RATIO)
        verdict = "" if name == BASE else f"<= {target:.2f} {'PASS' if ratio <= target else 'MISS'}"
        print(f"{name:<26} {ms(statistics.median(steps)):>9} {ms(percentile(steps, 0.9))} {ratio:6.3f} {ratio_pooled:7.3f} "
              f"{loop:6.3f} {ms(first):>9} {trace}  {verdict}")
    for suffix in ("", _syncs.BASE_SUFFIX):  # with --baseline, the older code's ratio too (same rounds)
        if BITS + suffix in names and SINGLE + suffix in names:
            per = [a / b for run in runs
                   for a, b in zip(run[BITS + suffix]["times"][args.warmup:], run[SINGLE + suffix]["times"][args.warmup:])]
            ratio = statistics.median(per)
            total = (sum(t for run in runs for t in run[BITS + suffix]["times"][args.warmup:])
                     / sum(t for run in runs for t in run[SINGLE + suffix]["times"][args.warmup:]))
            print(f"bits: {BITS + suffix} step / {SINGLE + suffix} step (median over rounds) {ratio:.3f} <= 1.30 "
                  f"{'PASS' if ratio <= 1.3 else 'MISS'}; total time of the timed steps {total:.3f}")
            if args.paired_paths:
                import _paired_paths

                same = [_paired_paths.paired_steps(run[BITS + suffix]["paths"], run[SINGLE + suffix]["paths"]) for run in runs]
                print(f"      paired paths: the same op path in {sum(a for a, _ in same)} of {sum(n for _, n in same)} draws")
    print("ratio (the target): median over rounds of step / GumbelDARTS step taken back to back (same load);")
    print("pooled: median step / GumbelDARTS median step over all timed steps (drifts when the load changes")
    print("between repeats); loop: like ratio, for the baton-holding time (step + Lightning's bookkeeping +")
    print("next batch); step 1: the first step (UBoost's includes the supernet trace, timed alone in 'trace')")

    print()
    print(f"hardware loss alone on the traced supernet (median of {args.hw_repeats}), against the step:")
    print(f"{'strategy':<26} {'rows':>5} {'fwd ms':>7} {'fwd+bwd ms':>10} {'/ DARTS step':>12} {'measured extra ms':>18}")
    hw_backward: dict[str, float] = {}
    for name in names:
        hws = [run[name]["hw"] for run in runs if run[name]["hw"]]
        if not hws:
            continue
        fwd = statistics.median(h["fwd"] for h in hws)
        fwd_bwd = statistics.median(h["fwd_bwd"] for h in hws)
        hw_backward[name] = max(0.0, fwd_bwd - fwd)
        diffs = [a - b for run in runs for a, b in zip(run[name]["times"][args.warmup:], run[BASE]["times"][args.warmup:])]
        spread = (percentile(diffs, 0.75) - percentile(diffs, 0.25)) / math.sqrt(len(diffs))
        print(f"{name:<26} {hws[0]['rows']:>5} {fwd * 1e3:7.2f} {fwd_bwd * 1e3:10.2f} {fwd_bwd / base_median:12.3%} "
              f"{statistics.median(diffs) * 1e3:10.1f} +-{spread * 1e3:4.0f}")
    print("measured extra: median of the per-round differences UBoost - GumbelDARTS, +- IQR / sqrt(n)")

    print_single_path(runs, names, args)
    if args.syncs:
        _syncs.print_syncs(counted, names, args.warmup)
    if profile:
        print_profile(profile, args, hw_backward)
    load_end = os.getloadavg()
    print()
    print(f"load average at the end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}; "
          f"wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Search-step time of UBoost against plain GumbelDARTS (not a test: nothing here asserts a time).

Both strategies search the same ``darts-cifar`` space (a fresh instance per run: NNI mutates
the space in place), on the same data (scikit-learn digits resized to ``--image-size`` in
RGB), with the same batch size and seed, and the same train/val loaders (``UBoost(data_split=
None)`` uses the evaluator's train and val loaders the way DARTS does). Runs are interleaved
(the order rotates every repeat) so that load from other processes hits all strategies alike.

Measured, side by side in one run:

1. **Step time**: a Lightning callback times every training step (``on_train_batch_start`` to
   ``on_train_batch_end``: the architecture step plus the weight step, data loading excluded).
   The first ``--warmup`` steps of every run are skipped; the first UBoost step also traces the
   supernet once, and that one-off cost is reported separately. Median and p90 of the remaining
   steps of all repeats, and the ratio of medians UBoost / GumbelDARTS against the target
   (<= 1.05).
2. **Hardware loss alone**: ``strategy.hardware_loss()`` then ``.loss.backward()`` on the traced
   supernet, timed in isolation, as a share of the GumbelDARTS step: the overhead the hardware
   term *has* to cost, against the measured one.
3. With ``--profile``: ablations of UBoost (defined here by subclassing; the library is not
   touched) interleaved with the rest, each removing one candidate source of extra time.

Run: ``PYTHONPATH=src python benchmarks/bench_search_step.py [--steps 15] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

TARGET_RATIO = 1.05  # median UBoost step / median GumbelDARTS step


# -- timing -----------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


class Sections:
    """Per-step wall time of the parts of a search step, by wrapping (on the instances only)
    the methods the one-shot module calls. Only the outermost wrapped call is timed, so nested
    calls (``log_probs`` -> ``log_dict`` -> ``log``) are counted once, in the outer part."""

    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = []
        self._current: dict[str, float] = {}
        self._depth = 0
        self._backwards = 0

    def install(self, pl_module) -> None:
        tm = pl_module.training_module

        def by_parity(args, kwargs):
            batch_idx = args[1] if len(args) > 1 else kwargs.get("batch_idx", 1)
            return "arch forward + task loss" if batch_idx % 2 == 0 else "weight forward + loss"

        def backward_name(args, kwargs):
            self._backwards += 1
            return "arch backward" if self._backwards == 1 else "weight backward"

        def log_name(args, kwargs):
            keys = args[0] if args else kwargs.get("dictionary", {})
            return "log_dict(hw/*), log(tau)" if any(str(k).startswith("hw/") for k in keys) else "log_probs(export_probs)"

        targets = [
            (pl_module, "on_train_batch_start", "batch-start hook (tau walk)"),
            (pl_module, "resample", "resample"),
            (tm, "training_step", by_parity),
            (pl_module, "manual_backward", backward_name),
            (tm, "optimizer_zero_grad", "weight zero_grad"),
            (tm, "configure_gradient_clipping", "gradient clipping"),
            (tm, "optimizer_step", "weight optimizer step"),
            (pl_module, "log_dict", log_name),
            (pl_module, "log", "log_dict(hw/*), log(tau)"),
            (pl_module, "log_probs", "log_probs(export_probs)"),
        ]
        hw = getattr(pl_module, "hardware_loss", None)
        if hw is not None:
            targets.append((hw, "forward", "hardware loss forward"))
        for obj, attr, name in targets:
            self._wrap(obj, attr, name)

    def _wrap(self, obj, attr: str, name) -> None:
        inner = getattr(obj, attr)

        def wrapper(*args, **kwargs):
            if self._depth:
                return inner(*args, **kwargs)
            label = name(args, kwargs) if callable(name) else name
            self._depth += 1
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self._current[label] = self._current.get(label, 0.0) + time.perf_counter() - start
                self._depth -= 1

        object.__setattr__(obj, attr, wrapper)  # instance attribute: the classes are untouched

    def start_step(self) -> None:
        self._current, self._backwards = {}, 0

    def end_step(self, total: float) -> None:
        self._current["(step total)"] = total
        self.steps.append(self._current)


def make_timer(sections: Sections | None = None):
    from pytorch_lightning import Callback

    class StepTimer(Callback):
        """Wall time of every training step (architecture step + weight step)."""

        def __init__(self) -> None:
            self.times: list[float] = []  # on_train_batch_start -> on_train_batch_end
            self.starts: list[float] = []  # differences: whole loop iterations (see ``cycles``)
            self._start = 0.0

        def on_train_start(self, trainer, pl_module):
            if sections is not None:
                sections.install(pl_module)

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if sections is not None:
                sections.start_step()
            self._start = time.perf_counter()
            self.starts.append(self._start)

        def on_train_end(self, trainer, pl_module):
            self.starts.append(time.perf_counter())

        @property
        def cycles(self) -> list[float]:
            """Start to next start: the step plus Lightning's per-step metric bookkeeping (after
            ``on_train_batch_end``) and the next batch's loading (same loaders for all)."""
            return [b - a for a, b in zip(self.starts, self.starts[1:])]

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.times.append(time.perf_counter() - self._start)
            if sections is not None:
                sections.end_step(self.times[-1])

    return StepTimer()


# -- strategies -------------------------------------------------------------------------------
def uboost_kwargs(args, **extra) -> dict:
    return dict(cost_model="systolic", hardware=dict(rows=args.rows, cols=args.cols), data_split=None, seed=args.seed, **extra)


def ablations() -> dict[str, Callable]:
    """UBoost variants, each without one candidate source of extra time (``--ablations``)."""
    import torch
    from nni.nas.oneshot.pytorch.supermodule.differentiable import GumbelSoftmax

    from uboost.strategy import UBoost
    from uboost.strategy.lightning import UBoostLightningModule
    from uboost.strategy.loss import HardwareTerms

    class NoLog(UBoostLightningModule):
        """No per-step ``log_dict`` of the hardware terms nor ``log("gumbel_tau")``."""

        def log_dict(self, dictionary, *a, **k):
            if any(key.startswith("hw/") for key in dictionary):
                return None
            return super().log_dict(dictionary, *a, **k)

        def log(self, name, value, *a, **k):
            if name == "gumbel_tau":
                return None
            return super().log(name, value, *a, **k)

    class CachedTau(UBoostLightningModule):
        """The Gumbel modules found once, not by walking ``self.modules()`` every step."""

        def on_train_batch_start(self, batch, batch_idx, *args, **kwargs):
            tau = self.current_gumbel_tau(self.trainer.fit_loop.total_batch_idx)
            if tau is not None:
                if not hasattr(self, "_gumbel_modules"):
                    self._gumbel_modules = [m for m in self.modules() if isinstance(m, GumbelSoftmax)]
                for module in self._gumbel_modules:
                    module.tau = tau
            # skip UBoostLightningModule's hook, keep the rest of the chain
            return super(UBoostLightningModule, self).on_train_batch_start(batch, batch_idx, *args, **kwargs)

    class ZeroHardware(torch.nn.Module):
        """The hardware loss replaced by a constant (still traced on step 1, still logged)."""

        def __init__(self, real):
            super().__init__()
            self.real = real
            self._terms = None

        @property
        def attached(self):
            return self.real.attached

        @property
        def latency_ref_ms(self):
            return self.real.latency_ref_ms

        def attach(self, supernet, example):
            self.real.attach(supernet, example)
            with torch.no_grad():
                terms = self.real()
            self._terms = HardwareTerms(loss=torch.zeros((), dtype=terms.loss.dtype), cost=terms.cost)

        def forward(self):
            return self._terms

    def variant(module_cls=UBoostLightningModule, wrap_hw=None, **kwargs):
        class Variant(UBoost):
            def configure_oneshot_module(self, training_module):
                hw = self.hardware_loss if wrap_hw is None else wrap_hw(self.hardware_loss)
                return module_cls(
                    training_module,
                    hardware_loss=hw,
                    gumbel_temperature=self.gumbel_temperature,
                    arc_learning_rate=self.arc_learning_rate,
                    gradient_clip_val=self.gradient_clip_val,
                    log_prob_every_n_step=self.log_prob_every_n_step,
                    warmup_epochs=self.warmup_epochs,
                )

        return lambda args: Variant(**uboost_kwargs(args, **kwargs))

    class Lean(NoLog, CachedTau):
        pass

    return {
        "-hw loss": variant(wrap_hw=ZeroHardware),
        "-logging": variant(NoLog),
        "-tau walk": variant(CachedTau),
        "-clip": variant(gradient_clip_val=None),
        "-log -walk -clip": variant(Lean, gradient_clip_val=None),
    }


def strategies(args) -> dict[str, Callable]:
    from nni.nas.strategy import GumbelDARTS

    from uboost.strategy import UBoost

    result = {
        "GumbelDARTS": lambda a: GumbelDARTS(),
        "UBoost": lambda a: UBoost(**uboost_kwargs(a)),
        "UBoost smooth": lambda a: UBoost(**uboost_kwargs(a, cost_mode="smooth")),
    }
    if args.ablations:
        result.update({"UBoost " + name: make for name, make in ablations().items()})
    return result


# -- one search run ---------------------------------------------------------------------------
@dataclass
class Runs:
    steps: list[float] = field(default_factory=list)  # after warm-up, all repeats
    first: list[float] = field(default_factory=list)  # step 1 of every run
    run_medians: list[float] = field(default_factory=list)
    attach: list[float] = field(default_factory=list)  # supernet trace (UBoost only)
    strategy: object = None  # last run's strategy, for the isolated hw-loss timing


def one_run(args, make_strategy, datasets, workdir: str) -> tuple[list[float], float | None, object]:
    import pytorch_lightning as pl
    from nni.nas.evaluator.pytorch import Classification, DataLoader

    from uboost.search_spaces import create
    from uboost.strategy import run_experiment

    train, val = datasets
    pl.seed_everything(args.seed, verbose=False)
    space = create("darts-cifar", width=args.width, cells=args.cells, input_shape=(3, args.image_size, args.image_size))
    timer = make_timer()
    evaluator = Classification(
        train_dataloaders=DataLoader(train, batch_size=args.batch_size, shuffle=True, drop_last=True,
                                     generator=__import__("torch").Generator().manual_seed(args.seed)),
        val_dataloaders=DataLoader(val, batch_size=args.batch_size, shuffle=False, drop_last=True),
        num_classes=10,
        max_epochs=1,
        limit_train_batches=args.warmup + args.steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[timer],
        enable_progress_bar=False,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    strategy = make_strategy(args)
    attach_time = None
    hw = getattr(strategy, "hardware_loss", None)
    if hw is not None:
        real_attach = hw.attach
        spent = []

        def timed_attach(*a, **k):
            t = time.perf_counter()
            real_attach(*a, **k)
            spent.append(time.perf_counter() - t)

        hw.attach = timed_attach  # instance attribute: the library class is untouched
    run_experiment(space, evaluator, strategy, workdir=workdir)
    if hw is not None:
        del hw.attach
        attach_time = spent[0] if spent else None
    if len(timer.times) != args.warmup + args.steps:
        raise RuntimeError(f"expected {args.warmup + args.steps} timed steps, got {len(timer.times)}")
    return timer.times, attach_time, strategy


def hw_loss_time(strategy, repeats: int) -> tuple[float, float]:
    """Median seconds of the hardware loss: forward only (no grad), forward + backward."""
    import torch

    hw = strategy.hardware_loss
    alphas = hw.supernet_cost._alphas

    def fwd_bwd():
        for a in alphas:
            a.grad = None
        hw().loss.backward()

    def fwd():
        with torch.no_grad():
            hw()

    return median_time(fwd, repeats), median_time(fwd_bwd, repeats)


# -- report -----------------------------------------------------------------------------------
def ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--cells", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=15, help="timed steps per run (after warm-up)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps of every run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per strategy, interleaved")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--rows", type=int, default=32, help="systolic array rows")
    parser.add_argument("--cols", type=int, default=32, help="systolic array columns")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hw-repeats", type=int, default=200, help="isolated hardware-loss timings")
    parser.add_argument("--profile", action="store_true", help="also run UBoost ablations (see the docstring)")
    args = parser.parse_args(argv)
    if args.warmup < 1:
        parser.error("--warmup must be >= 1 (the first UBoost step traces the supernet)")

    import warnings

    warnings.filterwarnings("ignore", message=r".*is found to be not a nn\.Module.*")
    # nni.nas.strategy must be imported before nni.nas.oneshot.pytorch.strategy (which
    # uboost.strategy imports): the other order leaves nni.nas.strategy.GumbelDARTS an
    # ImportFailedStrategy (circular import inside NNI 3.0)
    import nni.nas.strategy  # noqa: F401

    from uboost.strategy import quiet_nni

    quiet_nni()
    warnings.filterwarnings("ignore")
    import logging

    import torch

    from uboost.data import load_datasets

    for name in ("nni", "lightning.pytorch", "pytorch_lightning", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    load_start = os.getloadavg()
    print(f"uboost search step: darts-cifar width {args.width}, cells {args.cells}, input 3x{args.image_size}x{args.image_size}, "
          f"batch {args.batch_size}, digits, seed {args.seed}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op thread(s), {os.cpu_count()} CPUs, "
          f"load average {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}")
    print(f"{args.repeats} interleaved run(s) per strategy x {args.steps} timed steps (+{args.warmup} warm-up), "
          f"systolic {args.rows}x{args.cols}")

    datasets = load_datasets("digits", image_size=args.image_size, channels=3, seed=args.seed)
    makers = strategies(args)
    names = list(makers)
    runs = {name: Runs() for name in names}
    with tempfile.TemporaryDirectory(prefix="uboost-bench-") as tmp:
        for r in range(args.repeats):
            order = names[r % len(names):] + names[: r % len(names)]  # rotate: no strategy always first
            for name in order:
                times, attach, strategy = one_run(args, makers[name], datasets, os.path.join(tmp, f"{r}-{len(runs[name].first)}"))
                run = runs[name]
                run.first.append(times[0])
                run.steps += times[args.warmup:]
                run.run_medians.append(statistics.median(times[args.warmup:]))
                if attach is not None:
                    run.attach.append(attach)
                run.strategy = strategy
                print(f"  repeat {r + 1}/{args.repeats} {name:<24} median {ms(run.run_medians[-1])} ms", flush=True)

    base = runs["GumbelDARTS"]
    base_median = statistics.median(base.steps)
    print()
    print(f"{'strategy':<24} {'median ms':>9} {'p90 ms':>8} {'ratio':>6} {'paired':>7} {'step 1 ms':>9} {'trace ms':>8}  target")
    for name in names:
        run = runs[name]
        median = statistics.median(run.steps)
        ratio = median / base_median
        paired = statistics.median(m / b for m, b in zip(run.run_medians, base.run_medians))
        trace = f"{ms(statistics.median(run.attach))}" if run.attach else f"{'-':>8}"
        verdict = "" if name == "GumbelDARTS" else f"<= {TARGET_RATIO:.2f} {'PASS' if ratio <= TARGET_RATIO else 'MISS'}"
        print(f"{name:<24} {ms(median)} {ms(percentile(run.steps, 0.9))[1:]} {ratio:6.3f} {paired:7.3f} {ms(statistics.median(run.first))[-9:]:>9} {trace}  {verdict}")
    print("ratio: median step / GumbelDARTS median step (all timed steps); paired: median over repeats of the per-repeat ratio")
    print("step 1: first step of a run (UBoost's includes the supernet trace, timed alone in 'trace')")

    print()
    print(f"hardware loss alone (traced supernet, median of {args.hw_repeats}):")
    print(f"{'cost mode':<24} {'rows':>6} {'fwd ms':>8} {'fwd+bwd ms':>10} {'/ DARTS step':>12} {'measured extra':>14}")
    for name in names:
        strategy = runs[name].strategy
        hw = getattr(strategy, "hardware_loss", None)
        if hw is None or not hw.attached or name not in ("UBoost", "UBoost smooth"):
            continue
        fwd, fwd_bwd = hw_loss_time(strategy, args.hw_repeats)
        extra = statistics.median(runs[name].steps) - base_median
        print(f"{hw.cost_mode:<24} {len(hw.supernet_cost.shapes):>6} {ms(fwd)} {ms(fwd_bwd):>10} {fwd_bwd / base_median:12.3%} "
              f"{ms(extra):>11} ms")
    load_end = os.getloadavg()
    print()
    print(f"load average at the end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}; "
          f"wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

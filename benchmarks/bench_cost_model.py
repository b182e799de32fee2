"""Speed of the batched systolic cost model (not a test: nothing here asserts a time).

Measures, side by side in one run:

1. throughput (layers/s) of the batched, exact ``SystolicArray.cycles`` on a ``LayerTable`` of
   random realistic layers, against a per-layer pure-Python loop over ``LayerShape`` objects
   computing the same formula with ``math.ceil`` (and checks the two agree to the cycle);
2. forward + backward time of the soft-channel cost (smooth ceiling at ``T``) of a
   ``--net-layers`` network, plus the exact forward for reference, at 1 thread and at the
   default thread count;
3. candidate variants of the smooth ceiling, built inside this script (the library is not
   touched), checked against the library's values and gradients and timed the same way.

Run: ``PYTHONPATH=src python benchmarks/bench_cost_model.py [--layers N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import time
from collections.abc import Callable

import torch

from uboost.hardware import HardwareSpec, LayerShape, LayerTable, SystolicArray
from uboost.hardware.layers import conv_kind
from uboost.hardware.smooth import window
from uboost.hardware.spec import DATAFLOWS
from uboost.hardware.systolic import compute_cycles

THROUGHPUT_TARGET = 1e6  # layers/s, batched exact cycles
SOFT_TARGET_MS = 1.0  # soft fwd+bwd of a 1,000-layer network


# -- workload ---------------------------------------------------------------------------------
def random_layers(n: int, seed: int) -> list[LayerShape]:
    """Random realistic conv layers: channels 1..1024, kernels 1/3/5/7, groups 1 or depthwise,
    output sizes 1..112, stride 1 or 2."""
    rng = random.Random(seed)
    shapes = []
    for i in range(n):
        cin = rng.randint(1, 1024)
        depthwise = rng.random() < 0.25
        cout = cin if depthwise else rng.randint(1, 1024)
        groups = cin if depthwise else 1
        k = rng.choice((3, 5, 7)) if depthwise else rng.choice((1, 3, 5, 7))
        stride = rng.choice((1, 2))
        out = rng.randint(1, 112)
        shapes.append(
            LayerShape(
                name=f"l{i}",
                kind=conv_kind(cin, groups, k, k),
                in_channels=cin,
                out_channels=cout,
                groups=groups,
                kernel_h=k,
                kernel_w=k,
                stride=stride,
                in_h=out * stride,
                in_w=out * stride,
                out_h=out,
                out_w=out,
            )
        )
    return shapes


def reference_cycles(shapes: list[LayerShape], spec: HardwareSpec) -> list[int]:
    """The docstring formula of ``uboost.hardware.systolic``, one layer at a time, in integers:
    ``groups * (folds * (streamed + fill_drain) - 1)``."""
    r, c, batch, dataflow = spec.rows, spec.cols, spec.batch_size, spec.dataflow
    result = []
    for s in shapes:
        groups = s.in_channels if s.depthwise else s.groups
        m = batch * s.out_h * s.out_w
        k = s.kernel_h * s.kernel_w * (s.in_channels // groups)
        n = s.out_channels // groups
        if dataflow == "ws":
            folds, streamed, fill_drain = math.ceil(k / r) * math.ceil(n / c), m, 2 * r + c - 2
        elif dataflow == "os":
            folds, streamed, fill_drain = math.ceil(m / r) * math.ceil(n / c), k, r + c - 2
        else:  # "is"
            folds, streamed, fill_drain = math.ceil(k / r) * math.ceil(m / c), n, 2 * r + c - 2
        result.append(groups * (folds * (streamed + fill_drain) - 1))
    return result


# -- timing -----------------------------------------------------------------------------------
def timed(fn: Callable[[], object], repeats: int, warmup: int) -> tuple[float, float]:
    """(median, 90th percentile) wall time in seconds of ``fn()`` over ``repeats`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.9 * len(times)))]


class Threads:
    """``with Threads(n):`` runs torch ops on ``n`` intra-op threads (``None``: leave as is)."""

    def __init__(self, n: int | None):
        self.n = n

    def __enter__(self) -> int:
        self.saved = torch.get_num_threads()
        if self.n is not None:
            torch.set_num_threads(self.n)
        return torch.get_num_threads()

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self.saved)


# -- candidate smooth ceilings (tried here, not in the library) -------------------------------
def smooth_ceil_inf_mask(x: torch.Tensor, temperature: float, offset: float = 0.0) -> torch.Tensor:
    """Library ``smooth_ceil`` with the ``* valid`` multiply removed: steps below 0 are moved to
    +inf on the detached side, so their sigmoid is exactly 0 with zero gradient. Same values."""
    w = window(temperature)
    shifted = x - offset
    base = torch.floor(shifted.detach()) - (w - 1)
    steps = base.unsqueeze(-1) + torch.arange(2 * w, dtype=x.dtype, device=x.device)
    steps = steps.masked_fill_(steps < 1, math.inf)  # the library's: no steps below i = 1
    sig = torch.sigmoid((shifted.unsqueeze(-1) - steps) * temperature)
    return 1.0 + (base - 1).clamp_min(0.0) + sig.sum(-1)


class _SmoothCeilFn(torch.autograd.Function):
    """Smooth ceiling with an analytic derivative: ``d/dx sum sigmoid(T(x-i)) = T sum s(1-s)``.

    One autograd node instead of ~8; forward and derivative are computed together in no-grad ops."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, temperature: float, offset: float) -> torch.Tensor:
        w = window(temperature)
        shifted = x - offset
        base = torch.floor(shifted) - (w - 1)
        steps = base.unsqueeze(-1) + torch.arange(2 * w, dtype=x.dtype, device=x.device)
        steps.masked_fill_(steps < 1, math.inf)
        sig = torch.sigmoid(shifted.unsqueeze(-1).sub(steps).mul_(temperature))
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward((sig - sig * sig).sum(-1).mul_(temperature))
        return (base - 1).clamp_min_(0.0).add_(1.0).add_(sig.sum(-1))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (slope,) = ctx.saved_tensors
        return grad * slope, None, None


def smooth_ceil_autograd_fn(x: torch.Tensor, temperature: float, offset: float = 0.0) -> torch.Tensor:
    return _SmoothCeilFn.apply(x, temperature, offset)


class CandidateCeil:
    """Drop-in for ``uboost.hardware.base.Ceil`` with a different smooth ceiling."""

    def __init__(self, smooth: Callable[..., torch.Tensor], temperature: float):
        self.smooth, self.temperature = smooth, temperature

    def __call__(self, numerator: torch.Tensor, divisor: int) -> torch.Tensor:
        return self.smooth(numerator / divisor, self.temperature, offset=0.5 / divisor)


def candidate_cycles(model: SystolicArray, layers: LayerTable, ceil: CandidateCeil, cin, cout) -> torch.Tensor:
    """``SystolicArray.cycles`` with ``ceil`` in place of ``Ceil(temperature)`` (the model's own fold code)."""
    groups, compute, _ = compute_cycles(model.spec, layers, cin, cout, ceil=ceil)
    return groups * compute


CANDIDATES = {
    "inf-mask": smooth_ceil_inf_mask,
    "autograd.Function": smooth_ceil_autograd_fn,
}


# -- report -----------------------------------------------------------------------------------
ROWS: list[tuple[str, str, str, str, str]] = []


def row(what: str, threads: str = "", value: str = "", target: str = "", status: str = "") -> None:
    ROWS.append((what, threads, value, target, status))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_table(title: str) -> None:
    header = ("measurement", "threads", "measured", "target", "")
    widths = [max(len(r[i]) for r in ROWS + [header] if not r[0].startswith("#")) for i in range(5)]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}\n{line}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    print(line)
    for r in ROWS:
        if r[0].startswith("#"):
            print(r[0][1:].strip())
            continue
        print("  ".join(v.ljust(w) if i in (0, 1, 4) else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))).rstrip())
    print(line)
    ROWS.clear()


# -- part 1 -----------------------------------------------------------------------------------
def bench_throughput(n_layers: int, repeats: int, loop_repeats: int, thread_counts: list[int | None]) -> None:
    t0 = time.perf_counter()
    shapes = random_layers(n_layers, seed=0)
    t1 = time.perf_counter()
    table = LayerTable.from_shapes(shapes)
    t2 = time.perf_counter()
    print(f"workload: {n_layers:,} random layers ({sum(s.depthwise for s in shapes):,} depthwise); "
          f"LayerShape objects {t1 - t0:.2f} s, LayerTable.from_shapes {t2 - t1:.2f} s (one-off, not timed below)")
    warmup = max(3, repeats // 10)
    for dataflow in DATAFLOWS:
        model = SystolicArray(rows=128, cols=128, dataflow=dataflow)
        row(f"# dataflow {dataflow} (128x128), exact cycles of {n_layers:,} layers")
        with torch.no_grad():
            batched = model.cycles(table)
        reference = reference_cycles(shapes, model.spec)
        ref_tensor = torch.tensor(reference, dtype=torch.float64)
        identical = torch.equal(batched, ref_tensor)
        rates: dict[int, float] = {}
        max_diff = (batched - ref_tensor).abs().max().item()
        for n in thread_counts:
            with Threads(n) as used, torch.no_grad():
                med, p90 = timed(lambda: model.cycles(table), repeats, warmup)
            rate = n_layers / med
            row(f"  batched SystolicArray.cycles ({med * 1e3:.2f} ms/call, p90 {p90 * 1e3:.2f})", str(used),
                f"{rate:.3g} layers/s", f">= {THROUGHPUT_TARGET:.0e}", verdict(rate >= THROUGHPUT_TARGET))
            rates[used] = rate
        med_loop, _ = timed(lambda: reference_cycles(shapes, model.spec), loop_repeats, 1)
        loop_rate = n_layers / med_loop
        row(f"  python loop, math.ceil over LayerShape ({med_loop * 1e3:.0f} ms/call)", "1", f"{loop_rate:.3g} layers/s")
        for used, rate in rates.items():
            row("  speed-up batched / loop", str(used), f"{rate / loop_rate:.1f}x")
        row("  batched == loop, every layer", "", f"{identical} (max |diff| {max_diff:g})", "identical", verdict(identical))
    print_table(f"1. exact cycles throughput (median of {repeats} batched calls, {loop_repeats} loop calls)")


# -- part 2 -----------------------------------------------------------------------------------
def bench_soft(n_layers: int, repeats: int, temperature: float, thread_counts: list[int | None]) -> None:
    table = LayerTable.from_shapes(random_layers(n_layers, seed=1))
    warmup = max(20, repeats // 5)
    for dataflow in DATAFLOWS:
        model = SystolicArray(rows=128, cols=128, dataflow=dataflow)
        cin = table.in_channels.clone().requires_grad_(True)
        cout = table.out_channels.clone().requires_grad_(True)
        row(f"# dataflow {dataflow} (128x128), {n_layers:,}-layer network")

        def soft() -> None:
            total = model.cycles(table, in_channels=cin, out_channels=cout, temperature=temperature).sum()
            torch.autograd.grad(total, (cin, cout))

        def exact() -> None:
            with torch.no_grad():
                model.cycles(table, in_channels=table.in_channels, out_channels=table.out_channels).sum()

        # the library result the candidates must reproduce
        lib_value = model.cycles(table, in_channels=cin, out_channels=cout, temperature=temperature)
        lib_grads = torch.autograd.grad(lib_value.sum(), (cin, cout))
        exact_value = model.cycles(table).detach()
        soft_value, dw = lib_value.detach(), table.depthwise
        ratio_all = (soft_value.sum() / exact_value.sum()).item()
        ratio_dw = (soft_value[dw].sum() / exact_value[dw].sum()).item() if dw.any() else float("nan")

        for n in thread_counts:
            with Threads(n) as used:
                med, p90 = timed(soft, repeats, warmup)
            row(f"  soft T={temperature:g} fwd+bwd (p90 {p90 * 1e3:.3f} ms)", str(used), f"{med * 1e3:.3f} ms",
                f"< {SOFT_TARGET_MS:g} ms", verdict(med * 1e3 < SOFT_TARGET_MS))
        for n in thread_counts:
            with Threads(n) as used:
                med, p90 = timed(exact, repeats, warmup)
            row(f"  exact fwd only, no_grad (p90 {p90 * 1e3:.3f} ms)", str(used), f"{med * 1e3:.3f} ms", "reference")
        row(f"  soft/exact total cycles at T={temperature:g} (fidelity, not speed)", "",
            f"all {ratio_all:.3f}, depthwise {ratio_dw:.3f}")

        for label, fn in CANDIDATES.items():
            ceil = CandidateCeil(fn, temperature)
            value = candidate_cycles(model, table, ceil, cin, cout)
            grads = torch.autograd.grad(value.sum(), (cin, cout))
            same = torch.allclose(value, lib_value, rtol=1e-12, atol=1e-9) and all(
                torch.allclose(g, h, rtol=1e-9, atol=1e-9) for g, h in zip(grads, lib_grads)
            )

            def candidate(ceil=ceil) -> None:
                total = candidate_cycles(model, table, ceil, cin, cout).sum()
                torch.autograd.grad(total, (cin, cout))

            for n in thread_counts:
                with Threads(n) as used:
                    med, p90 = timed(candidate, repeats, warmup)
                row(f"  candidate {label}: soft fwd+bwd (values+grads equal: {same})", str(used),
                    f"{med * 1e3:.3f} ms", f"< {SOFT_TARGET_MS:g} ms", verdict(med * 1e3 < SOFT_TARGET_MS and same))
    print_table(f"2. soft-channel cost, {n_layers:,} layers (median of {repeats} calls after {warmup} warm-up)")


def profile_soft(n_layers: int, temperature: float, calls: int = 200) -> None:
    """Where the soft fwd+bwd time goes: per-stage wall time, then torch.profiler by operator."""
    from uboost.hardware.base import Ceil
    from uboost.hardware.smooth import smooth_ceil

    table = LayerTable.from_shapes(random_layers(n_layers, seed=1))
    model = SystolicArray(rows=128, cols=128, dataflow="ws")
    cin = table.in_channels.clone().requires_grad_(True)
    cout = table.out_channels.clone().requires_grad_(True)
    spec, ceil = model.spec, Ceil(temperature)
    groups, m, k, n = table.gemm(spec.batch_size, cin, cout)
    x = (k / spec.rows).detach().requires_grad_(True)

    def whole() -> None:
        torch.autograd.grad(model.cycles(table, in_channels=cin, out_channels=cout, temperature=temperature).sum(), (cin, cout))

    stages = {
        "whole soft fwd+bwd (ws)": whole,
        "  LayerTable.gemm fwd": lambda: table.gemm(spec.batch_size, cin, cout),
        "  one smooth_ceil fwd": lambda: smooth_ceil(x, temperature, offset=0.5 / spec.rows),
        "  one smooth_ceil fwd+bwd": lambda: torch.autograd.grad(smooth_ceil(x, temperature, 0.5 / spec.rows).sum(), x),
        "  two Ceil() + product fwd": lambda: ceil(k, spec.rows) * ceil(n, spec.cols),
        "  exact cycles fwd (no_grad)": lambda: model.cycles(table).detach(),
    }
    for name, fn in stages.items():
        med, p90 = timed(fn, calls, calls // 5)
        row(name, str(torch.get_num_threads()), f"{med * 1e3:.3f} ms")
    print_table(f"soft fwd+bwd breakdown, {n_layers:,} layers, T={temperature:g}")
    from torch.profiler import ProfilerActivity, profile

    for _ in range(20):
        whole()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            whole()
    print(f"torch.profiler, {calls} calls of the whole soft fwd+bwd (per-call = total / {calls}):")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=100_000, help="layers in the throughput table (part 1)")
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per measurement, median reported (part 1 batched: R//4)")
    parser.add_argument("--loop-repeats", type=int, default=3, help="timed calls of the slow pure-Python loop")
    parser.add_argument("--net-layers", type=int, default=1000, help="layers of the network in part 2")
    parser.add_argument("--temperature", type=float, default=10.0, help="smooth-ceiling temperature in part 2")
    parser.add_argument("--skip-throughput", action="store_true", help="run part 2 only")
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler breakdown of the soft fwd+bwd")
    args = parser.parse_args()

    default_threads = torch.get_num_threads()
    thread_counts: list[int | None] = [None] if default_threads == 1 else [None, 1]
    print(f"torch {torch.__version__}, default intra-op threads {default_threads}, "
          f"smooth-ceil window at T={args.temperature:g}: {window(args.temperature)} steps each side")
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    print(f"load average (1 min) {load:.2f} on {cores} cores"
          + ("  ** machine busy recently: multi-thread timings may be contended **" if load > 0.5 else ""))
    if args.profile:
        profile_soft(args.net_layers, args.temperature)
        return
    if not args.skip_throughput:
        bench_throughput(args.layers, max(1, args.repeats // 4), args.loop_repeats, thread_counts)
    bench_soft(args.net_layers, args.repeats, args.temperature, thread_counts)


if __name__ == "__main__":
    main()

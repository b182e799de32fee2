"""Is the accuracy a network loses at 4 bits the quantizer's, or the network's? (issues 21/22; a study, not a test)

The bits benchmarks and the lenet 16 kB co-search cells (issue 22) stop where narrow bits cost more accuracy than
the tolerance allows: lenet's reference network at uniform 4 bits is 2.81x cheaper in EDP but 1-3 points less
accurate. This script asks whether a different rule of the one quantizer search and retrain share
(:mod:`uboost.quant`) would keep that accuracy. It retrains one network of a space at uniform bitwidths, every
retrain seed, under each variant, swapped in for the duration of the variant only:

* ``minmax``: today's quantizer (weights: max |W| per output channel; activations: EMA of the batch min/max);
* ``mse-weights``: each channel's weight scale chosen from 15 clipping ratios (0.3-1.0 of max |W|) by the least
  squared quantization error (the fused numba kernel, which computes the max rule, is bypassed);
* ``percentile-acts``: the activation range from the batch's 0.1 / 99.9 percentiles instead of its min/max (at
  most 200,000 values sampled per batch), the same EMA;
* ``float-then-qat``: half the epochs in floating point, then the other half quantization-aware from those
  weights (the usual QAT recipe), today's rule;
* ``float``: the network without quantization, for scale (not a bitwidth).

Nothing here changes the library; every retrain is ``uboost.retrain.retrain`` with ``RetrainConfig(epochs, seed)``
on a run directory holding ``config.json`` (the space's defaults), ``arch.json`` and ``precision.json``.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/study_quantizer.py --space lenet --bits 8,4,2 --seeds 0,1,2 \\
        --epochs 10 --out benchmarks/runs/quantizer-study --report benchmarks/bits/quantizer-study
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import warnings
from pathlib import Path

VARIANTS = ("minmax", "mse-weights", "percentile-acts", "float-then-qat")
LENET_REFERENCE = {"conv1_width": 8, "conv1_kernel": 3, "conv2_width": 16, "conv2_kernel": 3, "fc1_width": 32}
CLIP_RATIOS = 15  # clipping ratios tried per channel by mse-weights, evenly from 0.3 to 1.0


def mse_weight_scale(weight, bits: int):
    """Per output channel, the scale ``r * max|W_c| / qmax`` (r from :data:`CLIP_RATIOS` values in [0.3, 1]) whose
    symmetric ``bits``-bit quantization has the least squared error; r = 1 is today's rule, so never worse."""
    import torch

    qmax = 2 ** (bits - 1) - 1
    with torch.no_grad():
        w = weight.reshape(weight.shape[0], -1).float()
        peak = w.abs().amax(1).clamp_min(1e-8)
        best = best_err = None
        for ratio in torch.linspace(1.0, 0.3, CLIP_RATIOS):
            scale = peak * ratio / qmax
            err = ((torch.clamp(torch.round(w / scale[:, None]), -qmax, qmax) * scale[:, None] - w) ** 2).sum(1)
            if best is None:
                best, best_err = scale.clone(), err
            else:
                better = err < best_err
                best, best_err = torch.where(better, scale, best), torch.where(better, err, best_err)
    return best


def _percentile_observe(quantizer, x) -> None:
    """:meth:`uboost.quant.LayerQuantizer._observe` with the 0.1 / 99.9 percentiles for the batch min / max."""
    import torch

    values = x.detach().flatten().float()
    if values.numel() > 200_000:
        values = values[torch.randint(0, values.numel(), (200_000,), device=values.device)]
    lo = torch.quantile(values, 0.001).clamp_max(0.0)
    hi = torch.quantile(values, 0.999).clamp_min(0.0)
    weight = quantizer.momentum if bool(quantizer.observed) else 1.0
    quantizer.act_min.lerp_(lo, weight)
    quantizer.act_max.lerp_(hi, weight)
    quantizer.observed.fill_(True)
    quantizer.__dict__["_seen"] = True


@contextlib.contextmanager
def _swapped(owner, name: str, value):
    old = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, old)


@contextlib.contextmanager
def variant_rule(variant: str, start_from=None):
    """The quantizer rule (and start point) of ``variant`` in force inside the block, today's outside it."""
    import uboost.quant as quant
    from uboost import quant_numba, runs

    with contextlib.ExitStack() as stack:
        if variant == "mse-weights":
            stack.enter_context(_swapped(quant, "weight_scale", mse_weight_scale))
            stack.enter_context(_swapped(quant_numba, "usable", lambda x: False))
        elif variant == "percentile-acts":
            stack.enter_context(_swapped(quant.LayerQuantizer, "_observe", _percentile_observe))
        if start_from is not None:  # float-then-qat: the frozen network starts from the float retrain's weights
            import torch

            state = torch.load(start_from, weights_only=True)
            freeze = runs.freeze_arch

            def freeze_from(space, arch):
                network = freeze(space, arch)
                network.load_state_dict(state)  # before precision.json puts the quantizers on (strict: same network)
                return network

            stack.enter_context(_swapped(runs, "freeze_arch", freeze_from))
        yield


def _run_dir(path: Path, space: str, arch: dict, bits: int | None) -> Path:
    from uboost.io import write_json
    from uboost.networks import load_frozen_network
    from uboost.quant import quantized_layers
    from uboost.search_config import SearchConfig

    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    write_json(path / "config.json", SearchConfig(space=space).to_dict())
    write_json(path / "arch.json", arch)
    if bits is not None:
        network = load_frozen_network(path)
        write_json(path / "precision.json",
                   {name: {"weight_bits": bits, "act_bits": bits} for name, _ in quantized_layers(network.module)})
    return path


def _retrain(path: Path, epochs: int, seed: int) -> float:
    from uboost.retrain import RetrainConfig, retrain

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        retrain(path, RetrainConfig(epochs=epochs, seed=seed), progress=False)
    return float(json.loads((path / "retrain" / "retrain.json").read_text())["test_acc"])


def run(args) -> dict:
    arch = json.loads(args.arch) if args.arch else LENET_REFERENCE
    out = Path(args.out)
    rows = []
    for seed in args.seeds:
        accuracy = _retrain(_run_dir(out / f"float-s{seed}", args.space, arch, None), args.epochs, seed)
        rows.append({"variant": "float", "bits": None, "seed": seed, "accuracy": accuracy})
        print(f"float seed {seed}: {accuracy:.4f}", flush=True)
        half = None
        for variant in args.variants:
            for bits in args.bits:
                path = _run_dir(out / f"{variant}-b{bits}-s{seed}", args.space, arch, bits)
                epochs, start = args.epochs, None
                if variant == "float-then-qat":
                    if half is None:
                        half = _run_dir(out / f"float-half-s{seed}", args.space, arch, None)
                        _retrain(half, args.epochs // 2, seed)
                    epochs, start = args.epochs - args.epochs // 2, half / "retrain" / "model.pt"
                with variant_rule(variant, start):
                    accuracy = _retrain(path, epochs, seed)
                rows.append({"variant": variant, "bits": bits, "seed": seed, "accuracy": accuracy})
                print(f"{variant} {bits} bits seed {seed}: {accuracy:.4f}", flush=True)
    return {"space": args.space, "arch": arch, "epochs": args.epochs, "seeds": args.seeds, "rows": rows}


def markdown(result: dict) -> str:
    def mean(variant, bits):
        values = [r["accuracy"] for r in result["rows"] if r["variant"] == variant and r["bits"] == bits]
        return f"{100 * statistics.fmean(values):.2f}" if values else "-"

    bits = sorted({r["bits"] for r in result["rows"] if r["bits"] is not None}, reverse=True)
    variants = list(dict.fromkeys(r["variant"] for r in result["rows"] if r["variant"] != "float"))
    lines = [f"{result['space']} {json.dumps(result['arch'])}, {result['epochs']} epochs, test accuracy % "
             f"(mean over retrain seeds {result['seeds']}); float: {mean('float', None)}", "",
             "| variant | " + " | ".join(f"{b} bits" for b in bits) + " |", "|---|" + "---|" * len(bits)]
    lines += [f"| {v} | " + " | ".join(mean(v, b) for b in bits) + " |" for v in variants]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="lenet")
    parser.add_argument("--arch", default=None, help="the network's arch.json as JSON [default: lenet's reference]")
    parser.add_argument("--bits", type=lambda s: [int(b) for b in s.split(",")], default=[8, 4, 2])
    parser.add_argument("--seeds", type=lambda s: [int(b) for b in s.split(",")], default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--variants", type=lambda s: s.split(","), default=list(VARIANTS))
    parser.add_argument("--out", default="benchmarks/runs/quantizer-study")
    parser.add_argument("--report", default=None, help="folder for study.json and study.md")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    result = run(args)
    text = markdown(result)
    print(text)
    if args.report:
        from uboost.io import write_json, write_text

        report = Path(args.report)
        report.mkdir(parents=True, exist_ok=True)
        write_json(report / "study.json", result)
        write_text(report / "study.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

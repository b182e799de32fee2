"""Time of ``uboost tune``'s inner accelerator choice per network (not a test).

Prices lenet networks on the co-search benchmark's space (``bench_cosearch.cosearch_space``: rows and cols 4-16,
three dataflows, each buffer 2-64 kB, four operating points; 16x16 + 3 x ``--sram-kb`` kB of area) and reports
the wall time per network of :func:`uboost.tuning.inner_accelerator.choose`: the first network (every layer shape
new to the pricer's memo), the later ones, and all of them again (every shape priced: a study's later trials).
``--bits 4,8`` gives every layer of every network a width drawn from those (seeded; a bits study's networks, whose
widths make new layer rows, as ``uboost tune --bits --local-search`` prices them). With ``--baseline SRC`` (another checkout's ``src``, e.g. from
``git archive``) both run in turns, each in its own process, and the ratio is of the same networks in the same run:

    git archive HEAD~1 src | tar -x -C /tmp/base
    PYTHONPATH=src python benchmarks/bench_inner_choice.py --baseline /tmp/base/src --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARCHS = [dict(conv1_kernel=k1, conv1_width=w1, conv2_kernel=3, conv2_width=w2, fc1_width=h)
         for k1, w1, w2, h in ((5, 8, 16, 32), (3, 4, 4, 32), (3, 16, 24, 64), (5, 32, 32, 128), (3, 8, 8, 64), (5, 24, 16, 32))]


def measure(sram_kb: int, bits: tuple[int, ...] = ()) -> dict:
    """One process: the inner choice of every network of ARCHS, in order (the memo fills as it goes)."""
    import dataclasses
    import random

    sys.path.insert(0, str(HERE))
    import bench_cosearch

    from uboost import tuning
    from uboost._quiet import quiet_nni
    from uboost.hardware.layers import extract_layers
    from uboost.runs import freeze_arch
    from uboost.search import build_space
    from uboost.tuning import inner_accelerator

    quiet_nni()
    base = bench_cosearch.base_config("lenet", sram_kb=sram_kb, dram_bw=4.0, epochs=1, max_samples=None, seed=0)
    space = bench_cosearch.cosearch_space(base, tuning.area_of(base), (0.01, 3.0))
    net_space, shape, _ = build_space(base)
    seconds, warm, values = [], [], []
    for times in (seconds, warm):  # the second pass: every layer shape already priced (a study's later trials)
        rng = random.Random(0)  # the same widths in both passes and in every process
        for arch in ARCHS:
            shapes = extract_layers(freeze_arch(net_space, arch), shape)
            if bits:
                shapes = [dataclasses.replace(s, weight_bits=b, act_bits=b) for s in shapes for b in [rng.choice(bits)]]
            started = time.perf_counter()
            choice = inner_accelerator.choose(shapes, space, base, objective="edp")
            times.append(time.perf_counter() - started)
            values.append([choice.value, choice.report.spec.array, choice.report.spec.dataflow, list(choice.report.spec.buffer_kb)])
    return {"seconds": seconds, "warm": warm, "values": values}


def run_in(src: str, sram_kb: int, bits: str) -> dict:
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--measure", "--sram-kb", str(sram_kb), "--bits", bits], env=env,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sram-kb", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default=None, help="another checkout's src folder, timed in turns with this one")
    parser.add_argument("--bits", default="", help="per-layer widths drawn from these, e.g. 4,8 (default: 8 bits)")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.sram_kb, tuple(int(b) for b in args.bits.split(",") if b))))
        return 0
    here = str(HERE.parent / "src")
    paths = {"today": here, **({"baseline": args.baseline} if args.baseline else {})}
    runs: dict[str, list[dict]] = {name: [] for name in paths}
    for _ in range(args.rounds):
        for name, src in paths.items():
            runs[name].append(run_in(src, args.sram_kb, args.bits))
    for name, found in runs.items():
        first = statistics.median(r["seconds"][0] for r in found)
        later = statistics.median(s for r in found for s in r["seconds"][1:])
        warm = statistics.median(s for r in found for s in r["warm"])
        print(f"{name:8s} first network {first:6.2f} s, later networks median {later:6.2f} s, again (shapes priced) "
              f"{warm:6.2f} s ({args.rounds} rounds)")
    if args.baseline:
        same = all(a["values"] == b["values"] for a, b in zip(runs["today"], runs["baseline"]))
        ratio = [b["seconds"][i] / t["seconds"][i] for t, b in zip(runs["today"], runs["baseline"]) for i in range(len(ARCHS))]
        again = [b["warm"][i] / t["warm"][i] for t, b in zip(runs["today"], runs["baseline"]) for i in range(len(ARCHS))]
        print(f"baseline / today per network: median {statistics.median(ratio):.2f}x (range {min(ratio):.2f}-{max(ratio):.2f}), "
              f"shapes priced {statistics.median(again):.2f}x ({min(again):.2f}-{max(again):.2f}); same choices and values: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

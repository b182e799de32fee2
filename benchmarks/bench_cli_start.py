"""CLI start-up time against ``python -c "import torch"``, measured side by side.

Each round runs every command once and ``import torch`` once, in fresh processes, in turn, so a
busy machine slows both alike; the ratio of medians is reported (target <= 0.1x: a command that
needs no network must not pay for torch, NNI, Lightning or Optuna). ``python -c pass`` is timed
alongside as the floor: what the interpreter and this environment's ``site`` cost before uboost runs.

    python benchmarks/bench_cli_start.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "uboost --help": ["--help"],
    "uboost search --help": ["search", "--help"],
    "uboost retrain --help": ["retrain", "--help"],
    "uboost profile --help": ["profile", "--help"],
    "uboost tune --help": ["tune", "--help"],
    "uboost hw list": ["hw", "list"],
    "uboost spaces": ["spaces"],
    "uboost --version": ["--version"],
}
TORCH = [sys.executable, "-c", "import torch"]
BARE = [sys.executable, "-c", "pass"]  # the interpreter alone (site, .pth files): the floor, for reference


def uboost() -> list[str]:
    exe = shutil.which("uboost")
    return [exe] if exe else [sys.executable, "-m", "uboost"]


def wall(argv: list[str]) -> float:
    env = {**os.environ, "COLUMNS": "100"}
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    base = uboost()
    wall(TORCH)  # warm the file cache for both sides
    for argv in COMMANDS.values():
        wall(base + argv)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    torch_times: list[float] = []
    bare_times: list[float] = []
    for _ in range(args.rounds):
        torch_times.append(wall(TORCH))
        bare_times.append(wall(BARE))
        for name, argv in COMMANDS.items():
            times[name].append(wall(base + argv))
    torch_median = statistics.median(torch_times)
    print(f"python -c 'import torch': median {torch_median:.3f} s over {args.rounds} rounds")
    print(f"{'command':<26} {'median s':>9} {'ratio':>7}  target <= 0.10x")
    bare = statistics.median(bare_times)
    print(f"{'python -c pass':<26} {bare:>9.3f} {bare / torch_median:>6.3f}x  (the interpreter alone)")
    for name, values in times.items():
        median = statistics.median(values)
        ratio = median / torch_median
        print(f"{name:<26} {median:>9.3f} {ratio:>6.3f}x  {'ok' if ratio <= 0.1 else 'OVER'}")


if __name__ == "__main__":
    main()

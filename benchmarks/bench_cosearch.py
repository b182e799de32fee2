"""Co-searched (network, accelerator) vs the best network for today's 16x16 accelerator, at equal area (not a test).

Issue 22 item 5. For each space and each area budget:

* **baseline**: today's default accelerator -- a 16x16 weight-stationary array of fixed 8-bit PEs
  -- with three SRAM buffers of ``S`` kB each, DRAM at ``--dram-bw`` words per cycle, at the fastest
  point of the ``rk3576-npu`` DVFS table (900 MHz, 850 mV). Its area on the ``recpipe12`` table
  (12 nm, hardware/area.py) *is* the budget. ``uboost tune`` searches only the network (lambda)
  on it; the reference is its most accurate trial.
* **co-search**: the same budget as ``--area-budget-mm2``; ``uboost tune`` searches lambda with
  rows and cols (4, 8, 16), the dataflow (ws, os, is), each buffer (2..64 kB) and the operating
  point (the four rk3576-npu points), objectives accuracy, latency and energy (NSGA-II). The DRAM
  bandwidth is held at the baseline's: it has no area in the model, so searching it would win by
  buying free bandwidth.

``--inner-accelerator exhaustive`` runs the co-search with ``uboost tune``'s inner accelerator choice
(each trial's network on the best accelerator of the space within budget; studies in ``cosearch-exhaustive/``),
``--inner-rounds 2`` with a second network search on the chosen accelerator (``cosearch-exhaustive-rounds2/``);
finished studies are reused (the baseline is shared), ``--baseline-only`` runs only the baselines.
``--bits 4,8`` also searches the co-search networks' bitwidths per layer (quantization-aware retrain, priced at the
bits; studies in ``...-bits4-8/``; the baseline stays the 8-bit one) and adds rows that split the gain and retrain the
reference at uniform 8 bits and at each narrower width of ``--bits`` (``_cosearch_bits.py``); ``--energy-weight G`` gives the co-search trials' network
searches an energy term; ``--warm-start`` enqueues the baseline's trials as the co-search's first ones (``uboost tune --warm-start``; they
count in ``--cosearch-trials``; studies in ``...-warm/``); ``--local-search N`` copies the finished co-search study and adds up to N
local-search trials (``uboost tune --local-search``: networks one choice away from the front's; studies in ``...-lsN/``;
``--baseline-local-search N`` does the same for the baseline, in ``baseline-lsN/``); ``--tag T`` names a separate co-search study folder (e.g. a copy of a study continued further).
``--retrain-seeds K`` (with ``--report-only`` on finished studies) retrains every trial network K times (seeds 0..K-1, the
trial's own retrain settings, each network once per seed) and judges on the mean accuracies (``_cosearch_retrains.py``).
``cosearch_crossfit.py`` re-judges those summaries with the choice and the verdict on separate halves of the seeds.

Both price with ``systolic-mem`` (finite SRAM and bandwidth) and the ``horowitz45`` energy table;
accuracy is the test accuracy of a short retrain of each trial's network (``--retrain-epochs``).
The co-search pick is the feasible trial of least EDP (energy x latency) whose accuracy is within
``--tolerance`` (0.5 points) of the reference. One more row prices the reference network itself
on the picked accelerator, to split the gain into network and accelerator.

    nice -n 10 env OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_cosearch.py
    PYTHONPATH=src python benchmarks/bench_cosearch.py --quick        # dry run: 1 epoch, few trials

Run directories go to the gitignored ``benchmarks/runs/cosearch/``; the summary (``summary.json``,
``summary.md``) to ``--summary`` (default ``benchmarks/cosearch/``, small files meant to be committed).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

from _accuracies import at_least, dominates

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent
SPACES = {
    "lenet": dict(space="lenet", dataset="digits", image_size=16, batch_size=32),
    "darts-cifar": dict(space="darts-cifar", dataset="digits", image_size=16, batch_size=32,
                        space_options={"width": 8, "cells": 3}),
}
BUFFER_CHOICES = (2, 4, 8, 16, 32, 64)


def base_config(name: str, *, sram_kb: int, dram_bw: float, epochs: int, max_samples: int | None, seed: int):
    from uboost.search import SearchConfig

    return SearchConfig(**SPACES[name], epochs=epochs, max_samples=max_samples, seed=seed, cost_model="systolic-mem",
                        array="16x16", dataflow="ws", sram_kb=sram_kb, dram_bw_words=dram_bw, operating_points="rk3576-npu",
                        hardware={"area": "recpipe12"}, accelerator="cpu")


def cosearch_space(base, budget: float, lambdas, search_seeds: int = 1, betas=None):
    """The co-search's space: lambda, rows and cols (4, 8, 16), the dataflow, each buffer and the operating point of
    ``base``'s DVFS table, within the area ``budget`` (mm^2); with ``search_seeds`` > 1 each trial's search seed too,
    with ``betas`` (low, high) the utilization weight."""
    from uboost import tuning

    clocks = [p.freq_hz for p in base.hardware_spec().operating_points]
    return tuning.TuneSpace(
        rows=(4, 8, 16), cols=(4, 8, 16), dataflows=("ws", "os", "is"), temperature=None, latency_weight=tuple(lambdas),
        accelerator=tuning.AcceleratorSpace(ifmap_sram_kb=BUFFER_CHOICES, filter_sram_kb=BUFFER_CHOICES,
                                            ofmap_sram_kb=BUFFER_CHOICES, clock_hz=clocks, area_budget_mm2=budget),
        search_seeds=search_seeds, utilization_weight=None if betas is None else tuple(betas))


class Plan(NamedTuple):
    """One side of a cell: its study folder, the study a local search starts from (itself without one), and how to
    run both."""

    kind: str
    source: str
    local_n: int
    base: Any
    space: Any
    trials: int
    objectives: str
    extra: dict
    local_inner: str
    screen: str


def run_pair(name: str, sram_kb: int, args) -> dict:
    from uboost import tuning

    base = base_config(name, sram_kb=sram_kb, dram_bw=args.dram_bw, epochs=args.epochs, max_samples=args.max_samples, seed=args.seed)
    budget = tuning.area_of(base)
    out = Path(args.out) / f"{name}-{sram_kb}kB"
    studies = {}
    baseline_space = tuning.TuneSpace(rows=(16,), cols=(16,), temperature=None, latency_weight=tuple(args.lambdas))
    co_space = cosearch_space(base, budget, args.lambdas, args.search_seeds, args.utilization_weight_range)
    inner = args.inner_accelerator
    co_kind = cosearch_kind(inner, args.inner_rounds, args.bits, args.energy_weight) + ("-warm" if args.warm_start else "") \
        + (f"-seeds{args.search_seeds}" if args.search_seeds > 1 else "") \
        + ("-beta{:g}-{:g}".format(*args.utilization_weight_range) if args.utilization_weight_range else "") \
        + (f"-{args.tag}" if args.tag else "")
    source_kind = co_kind  # --local-search N: a copy of this finished study, then N local-search trials
    co_kind += (f"-ls{args.local_search}" + ("-parent" if args.local_search_screen == "parent" else "")) if args.local_search else ""
    co_base = base if args.bits is None else base.replace(bits=args.bits)  # the baseline stays today's 8-bit network
    if args.energy_weight:  # the co-search's network searches also weigh energy (the baseline's do not)
        co_base = co_base.replace(energy_weight=args.energy_weight)
    base_kind = f"baseline-ls{args.baseline_local_search}" if args.baseline_local_search else "baseline"
    # the baseline's local search runs on its fixed 16x16 accelerator (ranked by latency)
    runs = [Plan(base_kind, "baseline", args.baseline_local_search, base, baseline_space, args.baseline_trials,
                 "accuracy,latency", {}, "off", "best")]
    if not args.baseline_only:
        runs.append(Plan(co_kind, source_kind, args.local_search, co_base, co_space, args.cosearch_trials,
                         "accuracy,latency,energy",
                         {} if inner == "off" else {"inner_accelerator": inner, "inner_rounds": args.inner_rounds},
                         inner, args.local_search_screen))
    for kind, source, local_n, kind_base, space, trials, objectives, extra, local_inner, screen in runs:
        started = time.perf_counter()
        done = _searched(out / kind)
        if args.report_only or (done >= trials and not local_n):  # reused (the baseline is shared)
            study = FirstTrials(tuning.load_study(out / kind), trials)  # a study continued further: its first `trials`
        else:
            searched = _searched(out / source)
            if searched < trials:  # the search itself (the local search's source study first)
                warm = None
                if source != "baseline" and args.warm_start:  # the baseline's trials first (uboost tune --warm-start)
                    from uboost.tuning.warm_start import enqueue_from

                    warm = tuning.create_study(out / source, objectives=objectives, seed=args.seed, population_size=args.population)
                    enqueue_from(warm, out / "baseline", space, base_seed=kind_base.seed)
                study = tuning.run_study(base=kind_base, tune_space=space, out_root=out / source, n_trials=trials - searched,
                                         seed=args.seed, objectives=objectives, population_size=args.population,
                                         retrain_epochs=args.retrain_epochs, study=warm, **extra)
            if local_n:
                study = local_search(out, source, kind, trials, kind_base, space, args, local_n, objectives, local_inner, screen)
        seconds = time.perf_counter() - started
        if args.report_only or done or local_n:  # the studies' own span: first trial start to last trial end
            seconds = study_seconds(study)
        studies["cosearch" if kind == co_kind else "baseline"] = (study, seconds)
    if args.baseline_only:
        return {"space": name, "baseline_sram_kb": sram_kb, "budget_mm2": budget}
    found = judged(name, sram_kb, budget, base, studies, args.tolerance, args.retrain_seeds, Path(args.out), out)
    if "reference" in found:
        found["best_accelerator_for_reference"] = best_accelerator(studies, found["reference"]["trial"], co_space, budget)
    if "reference" in found and args.bits is not None:  # bits vs accelerator, and the baseline at uniform bits (_cosearch_bits.py)
        import _cosearch_bits

        ref_trial = studies["baseline"][0].trials[found["reference"]["trial"]]
        found["bits_split"] = _cosearch_bits.split(studies["cosearch"][0].trials[found["pick"]["trial"]], ref_trial, co_space)
        found["reference_uniform_bits"] = [_cosearch_bits.uniform_reference(ref_trial, b, out / f"reference-w{b}a{b}", co_space)
                                           for b in fairness_bits(args.bits)]
    return found


def study_seconds(study) -> float:
    """A study's span (first trial start to last trial end), plus its local-search trials' retrains and pricing
    (they were added later, without a start time of their own)."""
    from uboost.tuning.local_search import ATTR

    times = [(t.datetime_start, t.datetime_complete) for t in study.trials
             if t.datetime_start and t.datetime_complete and ATTR not in t.user_attrs]
    seconds = (max(e for _, e in times) - min(s for s, _ in times)).total_seconds() if times else 0.0
    local = [t.user_attrs for t in study.trials if ATTR in t.user_attrs]
    if local:
        seconds += sum(a["retrain_seconds"] for a in local) + max(a[ATTR]["pricing_seconds"] for a in local)
    return seconds


def local_search(out: Path, source_kind: str, kind: str, trials: int, base, space, args, n: int, objectives: str,
                 inner: str, screen: str):
    """``--local-search N`` (or ``--baseline-local-search N``): the finished study ``source_kind`` copied to ``kind``
    (its journal: the trials keep their run directories), then up to ``n`` local-search trials added (``uboost tune
    --local-search``; resumes)."""
    import shutil

    from uboost import tuning
    from uboost.tuning.local_search import ATTR
    from uboost.tuning.local_trials import run_local_search

    target = out / kind / "study.journal"
    if not target.is_file():
        if _searched(out / source_kind) < trials:
            raise SystemExit(f"--local-search starts from the finished study {out / source_kind}: run it first ({trials} trials)")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(out / source_kind / "study.journal", target.with_suffix(".tmp"))
        os.replace(target.with_suffix(".tmp"), target)
    study = tuning.load_study(out / kind)
    done = sum(1 for t in study.trials if ATTR in t.user_attrs)
    if done < n:
        run_local_search(study, n - done, base=base, tune_space=space, out_root=out / kind,
                         retrain_epochs=args.retrain_epochs, objectives=objectives, inner_accelerator=inner, screen=screen)
    return FirstTrials(study, trials)


class FirstTrials:
    """A finished study seen up to its ``n``-th searched trial (the skipped ones before it included), so a
    summary of ``n`` trials stays the same after the study was continued further; local-search trials
    (``--local-search``) always count."""

    def __init__(self, study, n: int):
        from uboost.tuning import local_search

        searched = [t.number for t in local_search.searched(study)]
        cut = searched[n - 1] if 0 < n <= len(searched) else max((t.number for t in study.trials), default=-1)
        self.study, self.trials = study, [t for t in study.trials if t.number <= cut or local_search.ATTR in t.user_attrs]

    def get_trials(self, deepcopy=False, states=None):
        return [t for t in self.trials if states is None or t.state in states]

    def __getattr__(self, name):
        return getattr(self.study, name)


def fairness_bits(bits: tuple[int, ...]) -> list[int]:
    """The widths the reference network is retrained at for the fairness rows: 8, then every narrower width of
    ``--bits`` from the narrowest up (4 as before for ``--bits 4,8``; 4 and 6 for ``--bits 4,6,8``)."""
    return [8] + sorted(b for b in set(bits) if b < 8)


def cosearch_kind(inner: str, rounds: int, bits: tuple[int, ...] | None, energy_weight: float = 0.0) -> str:
    """The co-search study's folder name: one per setting, so a study with bits never continues an 8-bit one."""
    kind = ("cosearch" if inner == "off" else f"cosearch-{inner}") + ("-rounds2" if rounds == 2 else "")
    kind += "" if bits is None else "-bits" + "-".join(str(b) for b in bits)
    return kind + (f"-gamma{energy_weight:g}" if energy_weight else "")


def _searched(out: Path) -> int:
    """Trials of the study in ``out`` that ran a search (0 without a study)."""
    from uboost import tuning
    from uboost.tuning.local_search import searched

    if not (out / "study.journal").is_file():
        return 0
    return len(searched(tuning.load_study(out)))


def _done(study) -> list:
    """The trials a summary compares: completed, within budget, priced in energy."""
    from uboost import tuning

    return [t for t in tuning.completed(study) if tuning.feasible(t) and t.user_attrs.get("energy_uj") is not None]


def _row(trial) -> dict:
    a = trial.user_attrs
    cfg = a["config"]
    spec_text = f"{a['array']} {a['dataflow']}, " + "/".join(
        str((cfg.get("hardware") or {}).get(f"{b}_sram_kb") or cfg.get("sram_kb")) for b in ("ifmap", "filter", "ofmap"))
    return {"trial": trial.number, "accuracy": a["accuracy"], "latency_ms": a["latency_ms"], "energy_uj": a["energy_uj"],
            "edp_uj_ms": a["energy_uj"] * a["latency_ms"], "area_mm2": a.get("area_mm2"),
            "accelerator": f"{spec_text} kB, {cfg['clock_hz'] / 1e6:g} MHz", "lambda": trial.params.get("latency_weight"),
            "bits": bit_counts(a.get("run_dir"))}


def bit_counts(run_dir) -> dict | None:
    """``{"w4a4": layers, "w8a8": layers}`` of a trial's ``precision.json`` (None without one: 8-bit pricing)."""
    from collections import Counter

    from uboost.quant import PRECISION_FILE, read_precision

    path = Path(run_dir or "") / PRECISION_FILE
    if not run_dir or not path.is_file():
        return None
    return dict(sorted(Counter(f"w{w}a{a}" for w, a in read_precision(path).values()).items()))


def judged(name, sram_kb, budget, base, studies, tolerance, seeds: int, root: Path, out: Path) -> dict:
    """:func:`summarize` on each trial's own retrain (``seeds`` 1), or on the mean of ``seeds`` retrains
    per trial network (``_cosearch_retrains.py``; retrain cache under the run ``root``, the pair's
    retrains in ``out``), recorded under ``"retrains"``."""
    if seeds == 1:
        return summarize(name, sram_kb, budget, base, studies, tolerance)
    import _cosearch_retrains
    import _reuse

    retrains, record = _cosearch_retrains.retrain_trials(
        {kind: _done(study) for kind, (study, _) in studies.items()}, seeds, root / _reuse.RETRAIN_CACHE, out)
    return {**summarize(name, sram_kb, budget, base, studies, tolerance, retrains), "retrains": record}


def summarize(name, sram_kb, budget, base, studies, tolerance, retrains: dict | None = None) -> dict:
    """``retrains``: ``{kind: {trial: [accuracy per seed]}}`` (``--retrain-seeds``): the rows' accuracies become their means."""
    found: dict = {"space": name, "baseline_sram_kb": sram_kb, "budget_mm2": budget}
    for kind, (study, seconds) in studies.items():
        done = _done(study)
        skipped = sum(1 for t in study.trials if t.user_attrs.get("skipped"))
        rows = [_row(t) for t in done]
        if retrains:
            from _cosearch_retrains import average

            average(rows, retrains[kind])
        found[kind] = {"searched_trials": len(done), "skipped_over_budget": skipped, "wall_s": seconds, "trials": rows}
    base_rows = found["baseline"]["trials"]
    co_rows = found["cosearch"]["trials"]
    if not base_rows or not co_rows:
        return found
    reference, pick, within = choose(base_rows, co_rows, tolerance)
    found.update(reference=reference, pick=pick, pick_within_tolerance=within,
                 edp_gain=reference["edp_uj_ms"] / pick["edp_uj_ms"], accuracy_delta_points=100 * (pick["accuracy"] - reference["accuracy"]))
    found["reference_on_picked_accelerator"] = reprice(studies, reference["trial"], pick["trial"])
    rounds = round_pairs(studies["cosearch"][0], reference, tolerance)
    if rounds:
        found["inner_rounds"] = rounds
    point = lambda r: (r["accuracy"], r["edp_uj_ms"])  # noqa: E731
    front = [r for r in base_rows if not any(dominates(point(q), point(r), (1, -1)) for q in base_rows)]
    found["front_gains"] = []  # every point of the baseline's accuracy-EDP front, matched the same way
    for ref in sorted({(r["accuracy"], r["edp_uj_ms"]): r for r in front}.values(), key=lambda r: r["edp_uj_ms"]):
        match = [r for r in co_rows if at_least(r["accuracy"], ref["accuracy"] - tolerance)]
        best = min(match, key=lambda r: r["edp_uj_ms"]) if match else None
        found["front_gains"].append({"baseline_trial": ref["trial"], "accuracy": ref["accuracy"], "edp_uj_ms": ref["edp_uj_ms"],
                                     "cosearch_trial": best and best["trial"], "cosearch_accuracy": best and best["accuracy"],
                                     "gain": best and ref["edp_uj_ms"] / best["edp_uj_ms"]})
    return found


def choose(base_rows: list[dict], co_rows: list[dict], tolerance: float, accuracy=lambda r: r["accuracy"]) -> tuple[dict, dict, bool]:
    """``(reference, pick, pick within tolerance)``: the reference is the most accurate baseline trial (the
    cheaper on a tie), the pick the co-search trial of least EDP within ``tolerance`` of it (else the most
    accurate co-search trial). ``accuracy(row)`` gives a row's accuracy (``cosearch_crossfit.py``: a mean over
    some retrain seeds)."""
    reference = most_accurate(base_rows, accuracy)
    close = [r for r in co_rows if at_least(accuracy(r), accuracy(reference) - tolerance)]
    pick = min(close, key=lambda r: r["edp_uj_ms"]) if close else most_accurate(co_rows, accuracy)
    return reference, pick, bool(close)


def most_accurate(rows: list[dict], accuracy=lambda r: r["accuracy"]) -> dict:
    """The most accurate row (on exact accuracies, ``_accuracies.py``), the one of least EDP on a tie."""
    top = max(accuracy(r) for r in rows)
    return min((r for r in rows if at_least(accuracy(r), top)), key=lambda r: r["edp_uj_ms"])


def round_pairs(study, reference: dict, tolerance: float) -> dict | None:
    """With ``--inner-rounds 2``: both rounds' (network, accelerator) pairs of every trial, how often round 2
    changed the network or was kept, and the gain when any round's pair may be the pick (None without rounds)."""
    from uboost import tuning

    trials = [t for t in tuning.completed(study) if tuning.feasible(t) and t.user_attrs.get("inner_rounds")]
    if not trials:
        return None
    pairs = [{"trial": t.number, "kept": t.user_attrs["inner_round_kept"] == r["round"], **{k: r.get(k) for k in (
        "round", "accuracy", "latency_ms", "energy_uj", "edp_uj_ms", "array", "dataflow", "arch")}}
        for t in trials for r in t.user_attrs["inner_rounds"]]
    both = [t.user_attrs["inner_rounds"] for t in trials if len(t.user_attrs["inner_rounds"]) == 2]
    close = [p for p in pairs if at_least(p["accuracy"], reference["accuracy"] - tolerance)]
    best = min(close, key=lambda p: p["edp_uj_ms"]) if close else None
    return {"trials": len(trials), "round_2_ran": len(both),
            "round_2_other_network": sum(1 for a, b in both if a["arch"] != b["arch"]),
            "round_2_other_accelerator": sum(1 for a, b in both if a["config"] != b["config"]),
            "kept_round_2": sum(1 for t in trials if t.user_attrs["inner_round_kept"] == 2),
            "round_2_lower_edp": sum(1 for a, b in both if b["edp_uj_ms"] < a["edp_uj_ms"]),
            "best_pair_any_round": best, "edp_gain_any_round": best and reference["edp_uj_ms"] / best["edp_uj_ms"],
            "pairs": pairs}


def best_accelerator(studies, reference: int, space, budget: float) -> dict:
    """Headroom: the reference network on the accelerator of the co-search space within the budget of least EDP
    (cost model only, no search): the inner accelerator choice of ``uboost tune``, equal to pricing every one."""
    from _cosearch_bits import best_on_space

    from uboost.hardware.layers import extract_layers
    from uboost.networks import load_frozen_network

    trial = studies["baseline"][0].trials[reference]
    network = load_frozen_network(Path(trial.user_attrs["run_dir"]))
    return best_on_space(extract_layers(network.module, network.input_shape), space, trial.user_attrs["config"])


def reprice(studies, reference: int, pick: int) -> dict:
    """The baseline's reference network priced on the co-searched accelerator (the accelerator's share of the gain)."""
    from uboost.networks import load_frozen_network
    from uboost.search import SearchConfig, build_cost_model

    ref_trial = studies["baseline"][0].trials[reference]
    pick_trial = studies["cosearch"][0].trials[pick]
    network = load_frozen_network(Path(ref_trial.user_attrs["run_dir"]))
    report = build_cost_model(SearchConfig.from_dict(pick_trial.user_attrs["config"])).evaluate(network.module, network.input_shape)
    return {"latency_ms": report.latency_ms, "energy_uj": report.energy_uj, "edp_uj_ms": report.edp_uj_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", default="lenet", help="comma list of: " + ", ".join(SPACES))
    parser.add_argument("--sram-kb", default="4,16", help="baseline buffer sizes: one area budget each (16x16 + 3 x S kB)")
    parser.add_argument("--dram-bw", type=float, default=4.0, help="DRAM words per cycle (both designs)")
    parser.add_argument("--lambdas", type=float, nargs=2, default=(0.01, 3.0), help="latency-weight range searched")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--retrain-epochs", type=int, default=5)
    parser.add_argument("--max-samples", type=int, default=None)
    parser.add_argument("--baseline-trials", type=int, default=6)
    parser.add_argument("--cosearch-trials", type=int, default=16)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--tolerance", type=float, default=0.005, help="accuracy tolerance (0.005 = 0.5 points)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inner-accelerator", default="off", choices=("off", "exhaustive"),
                        help="co-search: pick each trial's accelerator by pricing its network on every one within budget")
    parser.add_argument("--inner-rounds", type=int, default=1, choices=(1, 2),
                        help="with the inner choice: 2 searches each trial's network again on its chosen accelerator "
                             "(studies in cosearch-exhaustive-rounds2/)")
    parser.add_argument("--bits", default=None,
                        help="co-search: also search a bitwidth per layer (weights and activations together), e.g. 4,8; "
                             "trials retrain quantization-aware at the chosen bits (studies in ...-bits4-8/; the baseline stays 8-bit)")
    parser.add_argument("--energy-weight", type=float, default=0.0,
                        help="co-search: gamma of each trial's network search (energy / energy_ref; with --bits it prices "
                             "4-bit layers' lower energy); studies in ...-gammaG/")
    parser.add_argument("--tag", default=None,
                        help="co-search study folder suffix (e.g. a copy of a finished study's journal, continued further "
                             "without touching the original)")
    parser.add_argument("--retrain-seeds", type=int, default=1,
                        help="judge on the mean of K retrains per trial network (seeds 0..K-1, the trial's retrain settings; "
                             "1: the trials' own single retrain)")
    parser.add_argument("--search-seeds", type=int, default=1,
                        help="co-search: each trial also draws its search seed from seed + 0..N-1 (uboost tune --search-seeds; "
                             "studies in ...-seedsN/)")
    parser.add_argument("--utilization-weight-range", type=float, nargs=2, metavar=("LOW", "HIGH"),
                        help="co-search: also search each trial's utilization weight beta (uboost tune "
                             "--utilization-weight-range; studies in ...-betaLOW-HIGH/)")
    parser.add_argument("--warm-start", action="store_true",
                        help="the co-search's first trials are the baseline's (uboost tune --warm-start; studies in ...-warm/)")
    parser.add_argument("--local-search", type=int, default=0, metavar="N",
                        help="co-search: a copy of the finished study, then up to N local-search trials (uboost tune "
                             "--local-search; studies in ...-lsN/)")
    parser.add_argument("--baseline-local-search", type=int, default=0, metavar="N",
                        help="the baseline too: a copy of its finished study, then up to N local-search trials on the 16x16 "
                             "default (ranked by latency; studies in baseline-lsN/)")
    parser.add_argument("--local-search-screen", default="best", choices=("best", "parent"),
                        help="screen neighbors on their best accelerator or on the parent's (studies in ...-lsN-parent/)")
    parser.add_argument("--baseline-only", action="store_true", help="run (or complete) the 16x16 baselines only")
    parser.add_argument("--out", default=str(ROOT / "runs" / "cosearch"))
    parser.add_argument("--summary", default=str(ROOT / "cosearch"))
    parser.add_argument("--report-only", action="store_true", help="recompute the summary from the finished studies in --out")
    parser.add_argument("--quick", action="store_true", help="dry run: 1 epoch, 256 images, 2 + 3 trials, into a temp folder")
    args = parser.parse_args()
    if args.retrain_seeds < 1:
        parser.error(f"--retrain-seeds must be at least 1, got {args.retrain_seeds}")
    if args.bits is not None:
        from uboost.exceptions import ConfigError
        from uboost.quant import parse_bits

        try:
            args.bits = parse_bits(args.bits, "--bits")
        except ConfigError as exc:
            parser.error(str(exc))
    if args.quick:
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix="bench-cosearch-"))
        args.epochs, args.retrain_epochs, args.max_samples, args.baseline_trials, args.cosearch_trials = 1, 1, 256, 2, 3
        args.population, args.out, args.summary, args.sram_kb = 2, str(tmp / "runs"), str(tmp / "summary"), "4"
    logging.basicConfig(level=logging.WARNING)
    from uboost._quiet import quiet_nni

    quiet_nni()  # NNI's import-time warnings about new torch classes are noise
    import _cosearch_report
    import optuna
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    results = []
    for name in args.spaces.split(","):
        for sram_kb in (int(s) for s in args.sram_kb.split(",")):
            result = run_pair(name, sram_kb, args)
            results.append(result)
            summary = Path(args.summary)
            summary.mkdir(parents=True, exist_ok=True)
            settings = {k: v for k, v in vars(args).items() if k not in ("out", "summary")}
            (summary / "summary.json").write_text(json.dumps({"settings": settings, "results": results}, indent=2) + "\n")
            (summary / "summary.md").write_text(_cosearch_report.markdown(results))
            print(_cosearch_report.markdown([result]), flush=True)


if __name__ == "__main__":
    main()

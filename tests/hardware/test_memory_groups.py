"""Issue 22: ``systolic-mem`` scored held out per (array, dataflow, SRAM, bandwidth) group.

On a small slice of the SCALE-Sim USER-mode data (``tools/fit_systolic_mem.py``'s ``SLICE_GROUPS`` x
``SLICE_LAYERS``: 32x32 and 128x128, WS/OS/IS, 8-64 kB), 3-fold over layers: every layer is
predicted by constants refitted without it. The per-group MAPEs are recomputed here by hand from
those predictions, checked to be truly held out, and compared with the slice table that
``benchmarks/bench_memory_model.py --groups --slice`` printed into ``benchmarks/RESULTS.md``.
"""

import re
import statistics
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tools():
    sys.path.insert(0, str(ROOT / "tools"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_memory_model
        import fit_systolic_mem

        yield fit_systolic_mem, bench_memory_model
    finally:
        sys.path.remove(str(ROOT / "tools"))
        sys.path.remove(str(ROOT / "benchmarks"))


@pytest.fixture(scope="module")
def slice_data(tools):
    fitting, _ = tools
    return fitting.Data(fitting.DATA, keep=fitting.in_slice)


@pytest.fixture(scope="module")
def out_of_fold(tools, slice_data):
    fitting, _ = tools
    return fitting.out_of_fold(slice_data, slice_data.fold_of(3), fitting.START)


@pytest.fixture(scope="module")
def table(tools, slice_data, out_of_fold):
    fitting, _ = tools
    return fitting.per_group(slice_data, predicted=out_of_fold)


def test_the_slice_spans_every_kind_of_group(tools, slice_data):
    fitting, _ = tools
    assert set(slice_data.config) == fitting.SLICE_GROUPS
    assert {c[0] for c in slice_data.config} == {"32x32", "128x128"}
    assert {c[1] for c in slice_data.config} == {"ws", "os", "is"}
    assert len(slice_data.layers) >= 12 and len(slice_data.rows) >= 80


def test_held_out_scores_are_out_of_fold_mapes(slice_data, out_of_fold, table):
    """Recompute each group's MAPE by hand from the out-of-fold predictions."""
    predicted = out_of_fold
    for cfg, scores in table.items():
        rows = [i for i, c in enumerate(slice_data.config) if c == cfg]
        by_hand = statistics.mean(abs(float(predicted[i]) - float(slice_data.target[i])) / float(slice_data.target[i]) for i in rows)
        assert scores["held_out"] == pytest.approx(by_hand, rel=1e-6), cfg
        assert scores["n"] == len(rows)
        simulated = [float(slice_data.rows[i]["cycles"]) for i in rows]
        compute = [float(slice_data.rows[i]["compute_cycles"]) for i in rows]
        assert scores["compute"] == pytest.approx(statistics.mean(abs(c - s) / s for c, s in zip(compute, simulated)))


def test_a_fit_never_sees_the_rows_it_is_scored_on(tools, slice_data):
    """Scrambling the held-out fold's SCALE-Sim cycles leaves the constants fitted for it unchanged."""
    fitting, _ = tools
    folds = slice_data.fold_of(3)
    train = [i for i, f in enumerate(folds) if f != 0]
    held = torch.tensor([i for i, f in enumerate(folds) if f == 0])
    before = fitting.fit(slice_data, train, fitting.START)
    saved = slice_data.target.clone()
    try:
        slice_data.target[held] = slice_data.target[held] * 7.0
        after = fitting.fit(slice_data, train, fitting.START)
    finally:
        slice_data.target.copy_(saved)
    assert fitting.flatten(after)[1] == pytest.approx(fitting.flatten(before)[1], rel=1e-9, abs=1e-12)
    # whole layers are held out: no layer has rows in two folds
    by_layer = {}
    for row, fold in zip(slice_data.rows, folds):
        by_layer.setdefault(row["layer"], set()).add(fold)
    assert all(len(f) == 1 for f in by_layer.values())


def test_slice_scores_are_what_the_benchmark_reports(tools, table):
    """benchmarks/RESULTS.md (issue 22 section) holds the slice table printed by
    ``bench_memory_model.py --groups --slice``; the same computation must give the same numbers."""
    _, bench = tools
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    section = text[text.index("<!-- memory-groups-slice -->"):text.index("<!-- /memory-groups-slice -->")]
    reported = {}
    for line in section.splitlines():
        m = re.match(r"\| (\d+x\d+) (\w+) (\d+) kB ([\d.]+) w/c \| (\d+) \| ([\d.]+) %", line)
        if m:
            reported[(m[1], m[2].lower(), int(m[3]), float(m[4]))] = (int(m[5]), float(m[6]))
    assert set(reported) == set(table)
    for cfg, scores in table.items():
        n, held = reported[cfg]
        assert scores["n"] == n
        assert 100 * scores["held_out"] == pytest.approx(held, abs=0.15), cfg
    # and the benchmark's own formatting of the table is the one parsed here
    assert any(line.startswith("| 128x128 OS 16 kB 10 w/c |") for line in bench.group_table(table))


def test_held_out_scores_on_the_slice_meet_what_results_states(table):
    """Every slice group within the bounds stated in RESULTS (the issue's 25 % except the corners
    named there), and the held-out model beats compute-only where memory stalls matter."""
    for cfg, scores in table.items():
        if scores["compute"] > 0.25:
            assert scores["held_out"] < scores["compute"], cfg
    assert statistics.mean(s["held_out"] for s in table.values()) <= SLICE_MEAN_BOUND
    assert max(s["held_out"] for s in table.values()) <= SLICE_WORST_BOUND


SLICE_MEAN_BOUND = 0.16  # measured 15.0 % (RESULTS.md, issue 22): the slice misses the 12 % mean goal
SLICE_WORST_BOUND = 0.25  # measured 22.8 %: every slice group meets the 25 % goal

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


SLICE_MEAN_BOUND = 0.10  # measured 9.1 % (RESULTS.md, issue 22; 12.2 % before the exact traces, 15.0 % before the crawl and copies)
SLICE_WORST_BOUND = 0.18  # measured 15.7 % (16.4 % before the exact traces): every slice group meets the 25 % goal


def test_corners_over_the_goal_point_to_scalesim():
    """Where RESULTS measures systolic-mem over 25 % off held out, pricing with it says so in one line
    (``profile`` prints model notes) and names the exact model; elsewhere it stays quiet."""
    from uboost.hardware import HardwareSpec, create
    from uboost.hardware.systolic_mem import HELD_OUT_MAPE

    assert HELD_OUT_MAPE and all(0.0 < v < 2.0 for v in HELD_OUT_MAPE.values())
    for (rows, cols, flow, kb), mape in HELD_OUT_MAPE.items():
        model = create("systolic-mem", spec=HardwareSpec(rows=rows, cols=cols, dataflow=flow, sram_kb=kb, dram_bw_words=10))
        note = model.memory_note()
        if mape > 0.25:
            assert note is not None and "--cost-model scalesim" in note and f"{kb} kB" in note and f"{100 * mape:.0f} %" in note
        else:
            assert note is None
    unbounded = create("systolic-mem", spec=HardwareSpec(rows=32, cols=32, dataflow="is"))
    assert unbounded.memory_note() is None


def test_a_corner_over_the_goal_gets_the_note(monkeypatch):
    """Every measured corner is within 25 % today (RESULTS.md); a corner measured over it would be
    named in one line that points to the exact model, at every bandwidth of that corner."""
    from uboost.hardware import HardwareSpec, create, systolic_mem

    monkeypatch.setitem(systolic_mem.HELD_OUT_MAPE, (32, 32, "is", 16), 0.473)
    for bw in (4, 10, 32):
        note = create("systolic-mem", spec=HardwareSpec(rows=32, cols=32, dataflow="is", sram_kb=16, dram_bw_words=bw)).memory_note()
        assert note is not None and "--cost-model scalesim" in note and "47 %" in note and "16 kB" in note and "is" in note
    assert create("systolic-mem", spec=HardwareSpec(rows=32, cols=32, dataflow="is", sram_kb=64, dram_bw_words=10)).memory_note() is None


@pytest.mark.parametrize("flow", ["ws", "os", "is"])
def test_new_groups_stay_differentiable(flow):
    """128x128 with 16 kB buffers in smooth cost mode: finite gradients for the channel widths and
    close to the exact (hard-ceiling) cycles."""
    from uboost.hardware import LayerShape, LayerTable, create

    layer = LayerShape(name="c", kind="conv", in_channels=32, out_channels=48, kernel_h=3, kernel_w=3,
                       in_h=16, in_w=16, out_h=16, out_w=16)
    table = LayerTable.from_shapes([layer])
    model = create("systolic-mem", rows=128, cols=128, dataflow=flow, sram_kb=16, dram_bw_words=10)
    exact = model.cycles(table).item()
    cout = torch.tensor([48.0], dtype=torch.float64, requires_grad=True)
    smooth = model.cycles(table, out_channels=cout, temperature=50.0)
    smooth.sum().backward()
    assert torch.isfinite(cout.grad).all() and cout.grad.item() >= 0
    assert smooth.item() == pytest.approx(exact, rel=0.05)
    assert exact > create("systolic", rows=128, cols=128, dataflow=flow).cycles(table).item()


def test_accelerators_outside_the_measured_data_get_a_note_naming_what_is_outside():
    """A QA pass priced lenet on 32x32 OS with 4 kB buffers and 2 words per cycle: 2,540 cycles against SCALE-Sim's
    6,508, with no word that the model was never measured there. Each axis outside the data is named."""
    from uboost.hardware import HardwareSpec, create

    def note(**fields):
        return create("systolic-mem", spec=HardwareSpec(**fields)).memory_note()

    small = note(rows=32, cols=32, dataflow="os", sram_kb=4, dram_bw_words=2)
    assert "not measured" in small and "4 kB buffers" in small and "2 DRAM words per cycle" in small
    assert "32x32 arrays" not in small and "--cost-model scalesim" in small
    default_array = note(rows=16, cols=16, sram_kb=16, dram_bw_words=4)
    assert "16x16 arrays" in default_array and "kB" not in default_array.split("(")[0]
    # ifmap/filter/ofmap, as tune's table and an accelerator file write them (QA: "2 / 4 / 8 kB" beside tune's 8/4/2)
    assert "512/16/16 kB buffers" in note(rows=32, cols=32, ifmap_sram_kb=512, filter_sram_kb=16, ofmap_sram_kb=16,
                                          dram_bw_words=8)
    assert "1 DRAM word per cycle" in note(rows=32, cols=32, sram_kb=4, dram_bw_words=1)
    for inside in (dict(rows=32, cols=32, sram_kb=8, dram_bw_words=4), dict(rows=128, cols=128, sram_kb=256, dram_bw_words=32),
                   dict(rows=32, cols=32, ifmap_sram_kb=16, filter_sram_kb=64, ofmap_sram_kb=8, dram_bw_words=10)):
        assert note(**inside) is None, inside
    assert note(rows=16, cols=16) is None  # unbounded memory: systolic's cycles, nothing to check


def test_batch_one_linear_layers_that_stall_are_named():
    """Batch-1 Linear layers whose weights overflow half the filter buffer: 256 -> 256 on 32x32 OS, 16 kB, 4 words per
    cycle, an accelerator inside the data, is priced 15,330 cycles against SCALE-Sim's 131,163 (RESULTS.md)."""
    from uboost.hardware import HardwareSpec, LayerShape, create

    def fc(name, cin, cout, **kw):
        return LayerShape(name=name, kind="linear", in_channels=cin, out_channels=cout, **kw)

    layers = [fc("big", 256, 256), fc("small", 64, 64), fc("tokens", 256, 256, out_h=16),
              LayerShape(name="conv", kind="conv", in_channels=256, out_channels=256, kernel_h=3, kernel_w=3,
                         in_h=4, in_w=4, out_h=2, out_w=2)]
    spec = HardwareSpec(rows=32, cols=32, dataflow="os", sram_kb=16, dram_bw_words=4)
    note = create("systolic-mem", spec=spec).layers_note(layers)
    assert note.startswith("systolic-mem prices 1 batch-1 Linear layer ") and "(big)" in note and "--cost-model scalesim" in note
    # 4-bit weights: half the words, 256 x 256 x 0.5 = 32k still overflows 8k; 64 x 64 at 8 bits (4k) never does
    assert "(big)" in create("systolic-mem", spec=spec).layers_note([fc("big", 256, 256, weight_bits=4)])
    assert create("systolic-mem", spec=spec).layers_note([fc("small", 64, 64)]) is None
    batched = HardwareSpec(rows=32, cols=32, dataflow="os", sram_kb=16, dram_bw_words=4, batch_size=8)
    assert create("systolic-mem", spec=batched).layers_note(layers) is None  # a GEMM over the batch: in the data
    assert create("systolic-mem", spec=HardwareSpec(rows=32, cols=32)).layers_note(layers) is None  # unbounded
    assert create("systolic", spec=spec).layers_note(layers) is None  # compute only: memory_note says so instead


def test_one_memory_limit_alone_is_said_to_price_unbounded_memory():
    from uboost.hardware import HardwareSpec, create

    only_sram = create("systolic-mem", spec=HardwareSpec(rows=32, cols=32, sram_kb=4)).memory_note()
    only_bw = create("systolic-mem", spec=HardwareSpec(rows=32, cols=32, dram_bw_words=4)).memory_note()
    assert "SRAM sizes but no DRAM bandwidth" in only_sram and "unbounded memory" in only_sram
    assert "DRAM bandwidth but no SRAM sizes" in only_bw and "unbounded memory" in only_bw

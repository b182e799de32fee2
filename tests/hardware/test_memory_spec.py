"""On-chip memory in HardwareSpec and the closed-form memory-aware model ``systolic-mem``."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from uboost.exceptions import ConfigError
from uboost.hardware import HardwareSpec, LayerShape, LayerTable, create
from uboost.testing import CONTRACT_LAYERS

from tests.hardware.test_scalesim_golden import load_rows, shape_of


@pytest.mark.parametrize(
    "fields",
    [
        {"sram_kb": 0},
        {"sram_kb": -16},
        {"sram_kb": 1.5},
        {"sram_kb": True},
        {"ofmap_sram_kb": 0},
        {"dram_bw_words": float("nan")},
        {"dram_bw_words": float("inf")},
        {"dram_bw_words": 0},
        {"dram_bw_words": -4},
        {"dram_bw_words": "10"},
    ],
)
def test_bad_memory_config_is_a_config_error(fields):
    with pytest.raises(ConfigError, match=next(iter(fields)).split("_", 1)[-1] if "sram" in next(iter(fields)) else "dram_bw_words"):
        HardwareSpec(**fields)


def test_memory_defaults_are_unbounded():
    spec = HardwareSpec()
    assert spec.buffer_kb == (None, None, None)
    assert not spec.memory_bound
    assert spec.memory_text == "unbounded memory"


def test_per_buffer_overrides_and_memory_bound():
    spec = HardwareSpec(sram_kb=64, ofmap_sram_kb=16, dram_bw_words=10)
    assert spec.buffer_kb == (64, 64, 16)
    assert spec.memory_bound
    assert spec.memory_text == "64/64/16 kB SRAM, 10 words/cycle"
    assert HardwareSpec(sram_kb=64, dram_bw_words=10).memory_text == "64 kB SRAM, 10 words/cycle"
    # a bandwidth alone (or an SRAM size alone) cannot stall anything
    assert not HardwareSpec(dram_bw_words=4).memory_bound
    assert not HardwareSpec(sram_kb=16).memory_bound
    assert HardwareSpec(filter_sram_kb=16, dram_bw_words=4).buffer_kb == (None, 16, None)


def test_unbounded_memory_reproduces_systolic_on_every_golden_point():
    rows = load_rows()
    groups = {}
    for row in rows:
        groups.setdefault((int(row["rows"]), int(row["cols"]), row["dataflow"], int(row["batch"])), []).append(row)
    for (r, c, flow, batch), members in groups.items():
        table = LayerTable.from_shapes([shape_of(m) for m in members])
        spec = HardwareSpec(rows=r, cols=c, dataflow=flow, batch_size=batch, dram_bw_words=4)  # no SRAM size: unbounded
        mem = create("systolic-mem", spec=spec).cycles(table)
        assert mem.tolist() == [float(m["cycles"]) for m in members]


def test_operands_that_fit_never_stall():
    # 1 MB buffers hold every contract layer's operands in their active halves
    spec = HardwareSpec(rows=16, cols=16, sram_kb=1024, dram_bw_words=1)
    table = LayerTable.from_shapes(CONTRACT_LAYERS)
    compute = create("systolic", rows=16, cols=16).cycles(table)
    assert torch.equal(create("systolic-mem", spec=spec).cycles(table), compute)


def test_small_sram_and_bandwidth_make_a_big_layer_memory_bound():
    layer = LayerShape(name="c", kind="conv", in_channels=128, out_channels=128, kernel_h=3, kernel_w=3,
                       in_h=8, in_w=8, out_h=8, out_w=8)
    table = LayerTable.from_shapes([layer])
    compute = create("systolic", rows=32, cols=32).cycles(table).item()
    mem = create("systolic-mem", rows=32, cols=32, sram_kb=16, dram_bw_words=4).cycles(table).item()
    # the ifmap (64 x 1152 im2col words) streams 4 times (once per filter column fold) through 8 kB halves
    assert mem > 1.5 * compute
    roomy = create("systolic-mem", rows=32, cols=32, sram_kb=1024, dram_bw_words=4).cycles(table).item()
    assert roomy == compute


@settings(max_examples=60, deadline=None)
@given(
    kb=st.sampled_from([4, 16, 64, 256]),
    bw=st.sampled_from([1, 4, 10, 32]),
    flow=st.sampled_from(["ws", "os", "is"]),
    batch=st.integers(1, 4),
)
def test_more_bandwidth_never_costs_more(kb, bw, flow, batch):
    """(Not SRAM: SCALE-Sim itself is not monotone in it -- a bigger buffer prefetches bigger chunks.)"""
    table = LayerTable.from_shapes(CONTRACT_LAYERS)

    def cycles(kb, bw):
        spec = HardwareSpec(rows=16, cols=16, dataflow=flow, batch_size=batch, sram_kb=kb, dram_bw_words=bw)
        return create("systolic-mem", spec=spec).cycles(table)

    base = cycles(kb, bw)
    compute = create("systolic", rows=16, cols=16, dataflow=flow, batch_size=batch).cycles(table)
    assert (base >= compute).all()
    assert (cycles(kb, 2 * bw) <= base + 1e-9).all()


def test_smooth_mode_gives_gradients_and_approaches_exact():
    layer = LayerShape(name="c", kind="conv", in_channels=128, out_channels=100, kernel_h=3, kernel_w=3,
                       in_h=8, in_w=8, out_h=8, out_w=8)
    table = LayerTable.from_shapes([layer])
    model = create("systolic-mem", rows=32, cols=32, sram_kb=16, dram_bw_words=4)
    exact = model.cycles(table).item()
    cout = torch.tensor([100.0], dtype=torch.float64, requires_grad=True)
    smooth = model.cycles(table, out_channels=cout, temperature=50.0)
    smooth.sum().backward()
    assert cout.grad is not None and cout.grad.item() > 0
    assert math.isclose(smooth.item(), exact, rel_tol=0.02)


@pytest.mark.parametrize("flow", ["ws", "os", "is"])
@pytest.mark.parametrize("array, kb", [((4, 8), (2, 4, 8)), ((16, 16), (8, 8, 8)), ((128, 128), (8, 16, 8))])
def test_each_layer_prices_alone_as_in_a_batch_and_both_at_once_as_apart(flow, array, kb):
    """The fold traces stop after the batch's last fold (a few boundaries for small layers, up to 64 for big
    ones): a layer priced alone equals its row of a batch that traces longer. ``cycles_and_accesses`` traces
    once for both and gives what ``cycles`` and ``accesses`` give apart, call after call."""
    shapes = [LayerShape(name="big", kind="conv", in_channels=96, out_channels=160, kernel_h=3, kernel_w=3,
                         in_h=16, in_w=16, out_h=16, out_w=16, weight_bits=4, act_bits=8),
              *CONTRACT_LAYERS,
              LayerShape(name="tiny", kind="linear", in_channels=10, out_channels=3)]
    spec = HardwareSpec(rows=array[0], cols=array[1], dataflow=flow, ifmap_sram_kb=kb[0], filter_sram_kb=kb[1],
                        ofmap_sram_kb=kb[2], dram_bw_words=4)
    model = create("systolic-mem", spec=spec)
    batch = LayerTable.from_shapes(shapes)
    cycles, words = model.cycles(batch), model.accesses(batch)
    assert (cycles > create("systolic", spec=spec).cycles(batch)).any()  # some layer stalls: the traces matter
    for i, shape in enumerate(shapes):
        alone = LayerTable.from_shapes([shape])
        assert model.cycles(alone).item() == cycles[i].item(), shape.name
        assert {k: v.item() for k, v in model.accesses(alone).items()} == {k: v[i].item() for k, v in words.items()}
    for table in (batch, LayerTable.from_shapes(shapes[1:3]), batch):
        both_cycles, both_words = model.cycles_and_accesses(table)
        assert torch.equal(both_cycles, model.cycles(table))
        apart = model.accesses(table)
        assert both_words.keys() == apart.keys() and all(torch.equal(both_words[k], apart[k]) for k in apart)


@pytest.mark.parametrize("flow", ["ws", "os", "is"])
@pytest.mark.parametrize("array, kb", [((4, 8), (2, 4, 8)), ((128, 128), (8, 16, 8))])
def test_the_fold_traces_give_the_same_numbers_in_torch_as_in_numpy(flow, array, kb, monkeypatch):
    """On an accelerator the traces stay torch ops (no host read, all 64 steps); on the host they run in numpy and
    stop after the last fold. Forced onto the torch path here (no GPU needed): the same cycles and counts."""
    from uboost.hardware import _window_trace

    shapes = [LayerShape(name="big", kind="conv", in_channels=96, out_channels=160, kernel_h=3, kernel_w=3,
                         in_h=16, in_w=16, out_h=16, out_w=16, weight_bits=4, act_bits=8), *CONTRACT_LAYERS]
    spec = HardwareSpec(rows=array[0], cols=array[1], dataflow=flow, ifmap_sram_kb=kb[0], filter_sram_kb=kb[1],
                        ofmap_sram_kb=kb[2], dram_bw_words=4)
    model, table = create("systolic-mem", spec=spec), LayerTable.from_shapes(shapes)
    host = model.cycles(table), model.accesses(table)
    on_torch = lambda *values: (torch, [v.detach().to(torch.float64) if isinstance(v, torch.Tensor) else v  # noqa: E731
                                        for v in values])
    monkeypatch.setattr(_window_trace, "_arrays", on_torch)
    assert torch.equal(model.cycles(table), host[0])
    words = model.accesses(table)
    assert all(torch.equal(words[k], host[1][k]) for k in host[1])


@pytest.mark.parametrize("flow", ["ws", "os", "is"])
def test_channels_given_apart_price_as_a_table_of_those_channels(flow):
    """Smooth cost mode prices the derived network on the row table of its non-channel choices with the chosen
    channel counts passed in (``temperature=None``): that must be the exact price of those layers. The ifmap's
    cover (words of the covered pixels over the buffer) read the table's input channels instead, so a smooth
    search on bounded memory logged a derived price 9 % under the exported network's (a QA report)."""
    import dataclasses

    nominal = [LayerShape(name="a", kind="conv", in_channels=64, out_channels=64, kernel_h=3, kernel_w=3,
                          in_h=12, in_w=12, out_h=12, out_w=12),
               LayerShape(name="b", kind="conv", in_channels=32, out_channels=48, kernel_h=5, kernel_w=5,
                          in_h=8, in_w=8, out_h=8, out_w=8),
               LayerShape(name="c", kind="linear", in_channels=64, out_channels=10)]
    chosen = [dataclasses.replace(s, in_channels=cin, out_channels=cout)
              for s, cin, cout in zip(nominal, (6, 16, 24), (16, 8, 10))]
    spec = HardwareSpec(rows=16, cols=16, dataflow=flow, sram_kb=8, dram_bw_words=1, energy="horowitz45")
    model = create("systolic-mem", spec=spec)
    table, exact = LayerTable.from_shapes(nominal), LayerTable.from_shapes(chosen)
    cin, cout = exact.in_channels, exact.out_channels
    assert (model.cycles(exact) > create("systolic", spec=spec).cycles(exact)).any()  # stalls: memory matters here
    assert torch.equal(model.cycles(table, in_channels=cin, out_channels=cout), model.cycles(exact))
    assert torch.equal(model.energy_pj(table, in_channels=cin, out_channels=cout), model.energy_pj(exact))

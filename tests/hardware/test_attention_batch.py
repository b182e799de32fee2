"""At a batch above 1 an attention's ``Q K^T`` and attention x ``V`` are one sample's GEMMs per sample.

Before: ``LayerTable.gemm`` shared every row's second operand across the batch, so ``scores`` and
``context`` (whose "weights" are each sample's own keys and values) were priced at batch ``B`` as
``h`` GEMMs of ``M = B * L`` -- one fill/drain per fold and one load of the keys for the whole
batch: ``MultiheadAttention(64, 4)`` on 16 tokens, 16x16 WS array, batch 4: ``scores`` 436 cycles
and 1,024 filter words read from DRAM, where four independent samples take 4 x 244 = 976 cycles
and 4 x 1,024 words.
"""

import pytest
import torch
from torch import nn

from tests.hardware.test_attention import CONTEXT, SCORES, Attention
from tests.hardware.test_scalesim_model import _simulator
from uboost.hardware import HardwareSpec, LayerTable, create, extract_layers
from uboost.hardware.access import access_counts
from uboost.hardware.lookup import LookupTable
from uboost.hardware.scalesim_runner import layer_job

ARRAY = dict(rows=16, cols=16)
PER_SAMPLE = ("att.scores", "att.context")


def rows(batch: int, name: str = "systolic", net: nn.Module | None = None, **spec) -> dict:
    layers = extract_layers(net or Attention(), (16, 64))
    report = create(name, **ARRAY, batch_size=batch, **spec).evaluate(layers)
    return {l.layer.name: l for l in report.layers}


def test_scores_and_context_are_four_samples_at_batch_four_while_a_linear_shares_its_weights():
    one, four = rows(1), rows(4)
    for name in PER_SAMPLE:
        assert four[name].cycles == 4 * one[name].cycles == 4 * 244, name  # fill and drain once per sample
    for name in ("att.in_proj", "att.out_proj"):  # the weights stay, the batch streams through them
        assert four[name].cycles < 4 * one[name].cycles, name
    assert (four["att.in_proj"].cycles, one["att.in_proj"].cycles) == (5279, 2975)


def test_the_per_sample_rows_are_batch_times_heads_gemms_of_one_sample_s_tokens_with_the_same_macs():
    layers = extract_layers(Attention(), (16, 64))
    assert [l.name for l in layers if l.per_sample] == list(PER_SAMPLE)
    table = LayerTable.from_shapes(layers)
    groups, m, k, n = table.gemm(4)
    index = {l.name: i for i, l in enumerate(layers)}
    for name in PER_SAMPLE:
        i = index[name]
        assert (groups[i].item(), m[i].item(), k[i].item(), n[i].item()) == (16, 16, 16, 16)
    i = index["att.in_proj"]
    assert (groups[i].item(), m[i].item(), k[i].item(), n[i].item()) == (1, 64, 64, 192)
    four = rows(4, "flops")
    assert (four["att.scores"].macs, four["att.context"].macs) == (4 * SCORES, 4 * CONTEXT)
    assert table.macs(4).tolist() == (4 * table.macs(1)).tolist()  # MACs: the batch's, as before


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_keys_and_values_are_read_once_per_sample(dataflow):
    layers = extract_layers(Attention(), (16, 64))
    table = LayerTable.from_shapes(layers)
    one = access_counts(HardwareSpec(**ARRAY, dataflow=dataflow), table)
    four = access_counts(HardwareSpec(**ARRAY, dataflow=dataflow, batch_size=4), table)
    for name in PER_SAMPLE:
        i = [l.name for l in layers].index(name)
        assert four["filter_dram_reads"][i] == 4 * one["filter_dram_reads"][i] == 4 * 16 * 64, name
        assert four["filter_sram_reads"][i] == 4 * one["filter_sram_reads"][i], name
    i = [l.name for l in layers].index("att.in_proj")
    assert four["filter_dram_reads"][i] == one["filter_dram_reads"][i]  # shared weights: loaded once


def test_systolic_mem_and_energy_read_the_keys_once_per_sample():
    memory = dict(sram_kb=16, dram_bw_words=4)
    one, four = rows(1, "systolic-mem", **memory), rows(4, "systolic-mem", **memory)
    for name in PER_SAMPLE:
        assert four[name].words["filter_dram_reads"] == 4 * one[name].words["filter_dram_reads"], name
        assert four[name].words["filter_sram_reads"] == 4 * one[name].words["filter_sram_reads"], name
        assert four[name].cycles == 4 * one[name].cycles, name  # they fit the buffers: compute only
        assert four[name].total_energy_uj == pytest.approx(4 * one[name].total_energy_uj, rel=1e-12), name


def test_roofline_moves_each_sample_s_keys():
    one, four = rows(1, "roofline", mem_bw_gbps=0.5), rows(4, "roofline", mem_bw_gbps=0.5)  # memory-bound
    for name in PER_SAMPLE:  # weights (keys), inputs and outputs all per sample
        assert four[name].cycles == pytest.approx(4 * one[name].cycles, rel=1e-12), name
    assert four["att.in_proj"].cycles < 4 * one["att.in_proj"].cycles


def test_a_per_sample_row_is_one_sample_s_scalesim_job_repeated_per_sample_and_head():
    scores = next(l for l in extract_layers(Attention(), (16, 64)) if l.name == "att.scores")
    one, repeat_one = layer_job(scores, HardwareSpec(**ARRAY))
    four, repeat_four = layer_job(scores, HardwareSpec(**ARRAY, batch_size=4))
    assert four.key == one.key and dict(four.topology) == {"kind": "gemm", "m": 16, "k": 16, "n": 16}
    assert (repeat_one, repeat_four) == (4, 16)


class SingleHead(nn.Module):
    """One head: ``scores`` (64 -> 16 over 16 tokens) shares the lookup key of a Linear over 16 tokens."""

    def __init__(self):
        super().__init__()
        self.att = nn.MultiheadAttention(64, 1, batch_first=True)
        self.proj = nn.Linear(64, 16)

    def forward(self, x):
        return self.proj(self.att(x, x, x)[0])


def test_a_lookup_table_keys_per_sample_rows_apart_at_a_batch_above_one():
    layers = extract_layers(SingleHead(), (16, 64))
    assert {"att.scores", "proj"} <= {l.name for l in layers}
    systolic = create("systolic", **ARRAY, batch_size=4)
    lookup = LookupTable.from_model(systolic, layers, channels=[16, 64, 192])
    want, got = systolic.evaluate(layers), lookup.evaluate(layers)
    assert [l.cycles for l in got.layers] == [l.cycles for l in want.layers]
    by_name = {l.layer.name: l for l in want.layers}
    one = {l.layer.name: l for l in create("systolic", **ARRAY).evaluate(layers).layers}
    assert by_name["att.scores"].cycles == 4 * one["att.scores"].cycles != by_name["proj"].cycles


def test_the_scalesim_model_prices_the_batched_attention_as_systolic_does(tmp_path):
    """SCALE-Sim itself (skipped without its environment, as tests/hardware/test_scalesim_model.py)."""
    python = _simulator()
    layers = extract_layers(Attention(), (16, 64))
    table = LayerTable.from_shapes(layers)
    cycles = {}
    for batch in (1, 4):
        sim = create("scalesim", **ARRAY, batch_size=batch, python=python, cache_dir=tmp_path)
        cycles[batch] = sim.cycles(table).tolist()
        assert cycles[batch] == create("systolic", **ARRAY, batch_size=batch).cycles(table).tolist(), batch
    for name in PER_SAMPLE:
        i = [l.name for l in layers].index(name)
        assert cycles[4][i] == 4 * cycles[1][i], name
    assert torch.tensor(cycles[4]).sum() > 0

"""benchmarks/study_quantizer.py: the swapped quantizer rules, by hand, and that today's rule comes back."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import study_quantizer  # noqa: E402

import uboost.quant as quant  # noqa: E402
from uboost import quant_numba  # noqa: E402


def _error(weight, scale, bits):
    qmax = 2 ** (bits - 1) - 1
    return ((torch.clamp(torch.round(weight / scale[:, None]), -qmax, qmax) * scale[:, None] - weight) ** 2).sum(1)


def test_the_mse_scale_is_the_least_error_clipping_ratio_and_never_worse_than_the_max_rule():
    # channel 0: a bulk in [-1, 1] and one outlier at 10 (at 4 bits, qmax 7, the max rule's step is 10/7);
    # channel 1: evenly spread
    torch.manual_seed(0)
    bulk = torch.rand(1, 63) * 2 - 1
    weight = torch.cat([torch.cat([bulk, torch.tensor([[10.0]])], 1), torch.linspace(-1, 1, 64)[None]])
    bits = 4
    minmax = quant.weight_scale(weight, bits)
    mse = study_quantizer.mse_weight_scale(weight, bits)
    assert torch.allclose(minmax, torch.tensor([10 / 7, 1 / 7]))
    assert (mse <= minmax).all() and mse[0] < 0.9 * minmax[0]  # clipped: part of the outlier is given up
    assert (_error(weight, mse, bits) <= _error(weight, minmax, bits)).all()
    assert _error(weight, mse, bits)[0] < 0.9 * _error(weight, minmax, bits)[0]
    for ratio in torch.linspace(1.0, 0.3, study_quantizer.CLIP_RATIOS):  # by brute force: no ratio does better
        assert (_error(weight, mse, bits) <= _error(weight, minmax * ratio, bits) + 1e-6).all()


def test_a_variant_is_in_force_inside_its_block_only():
    original_scale, original_usable = quant.weight_scale, quant_numba.usable
    original_observe = quant.LayerQuantizer._observe
    with study_quantizer.variant_rule("mse-weights"):
        assert quant.weight_scale is study_quantizer.mse_weight_scale
        assert quant_numba.usable(torch.zeros(4, 4)) is False
    assert quant.weight_scale is original_scale and quant_numba.usable is original_usable
    with study_quantizer.variant_rule("percentile-acts"):
        q = quant.LayerQuantizer(4, 4)
        x = torch.cat([torch.linspace(0, 1, 9999), torch.tensor([100.0])])
        q._observe(x)  # the 99.9th percentile, not the 100 of one value
        assert 0.99 < float(q.act_max) < 1.01 and float(q.act_min) == 0.0 and bool(q.observed)
    assert quant.LayerQuantizer._observe is original_observe
    q = quant.LayerQuantizer(4, 4)
    q._observe(x)
    assert float(q.act_max) == 100.0  # today's rule again: the batch max


def test_the_report_table_has_a_row_per_variant_and_a_column_per_bitwidth():
    result = {"space": "lenet", "arch": {"w": 8}, "epochs": 2, "seeds": [0, 1], "rows": [
        {"variant": "float", "bits": None, "seed": 0, "accuracy": 0.98},
        {"variant": "float", "bits": None, "seed": 1, "accuracy": 0.96},
        {"variant": "minmax", "bits": 8, "seed": 0, "accuracy": 0.97},
        {"variant": "minmax", "bits": 8, "seed": 1, "accuracy": 0.95},
        {"variant": "minmax", "bits": 4, "seed": 0, "accuracy": 0.90},
        {"variant": "minmax", "bits": 4, "seed": 1, "accuracy": 0.92},
    ]}
    text = study_quantizer.markdown(result)
    assert "float: 97.00" in text
    assert "| variant | 8 bits | 4 bits |" in text
    assert "| minmax | 96.00 | 91.00 |" in text

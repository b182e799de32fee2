"""The cost-model speed benchmark runs the library's own fold code, so it cannot silently drift from it.

Before: ``candidate_cycles`` copied ``SystolicArray.cycles`` and called the dataflow folds with their
old six arguments; the folds gained the fill rows, and the benchmark's part 2 raised a TypeError, and
its candidate ceilings, copies of an older ``smooth_ceil``, no longer equalled the library's.
"""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_cost_model as bench  # noqa: E402
from uboost.hardware import HardwareSpec, create  # noqa: E402
from uboost.hardware.layers import LayerTable  # noqa: E402


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_the_benchmark_s_cycles_are_the_model_s_exact_and_smooth(dataflow):
    model = create("systolic", spec=HardwareSpec(rows=16, cols=8, dataflow=dataflow))
    table = LayerTable.from_shapes(bench.random_layers(40, seed=1))
    cin = table.in_channels.clone().requires_grad_(True)
    cout = table.out_channels.clone().requires_grad_(True)
    exact = bench.candidate_cycles(model, table, lambda x, d: torch.ceil(x / d), cin, cout)
    assert torch.equal(exact.detach(), model.cycles(table))
    library = model.cycles(table, in_channels=cin, out_channels=cout, temperature=10.0)
    lib_grads = torch.autograd.grad(library.sum(), (cin, cout))
    for fn in bench.CANDIDATES.values():
        value = bench.candidate_cycles(model, table, bench.CandidateCeil(fn, 10.0), cin, cout)
        grads = torch.autograd.grad(value.sum(), (cin, cout))
        torch.testing.assert_close(value, library, rtol=1e-12, atol=1e-9)
        for g, h in zip(grads, lib_grads):
            torch.testing.assert_close(g, h, rtol=1e-9, atol=1e-9)

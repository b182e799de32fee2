"""benchmarks/_paired_paths.py: two samplers with other alpha values, one with bits alphas interleaved,
draw the same op path at every step (what bench_search_step.py --paired-paths relies on)."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _paired_paths  # noqa: E402
from uboost.strategy import precision  # noqa: E402
from uboost.strategy.single_path import PathSampler  # noqa: E402

SIZES = [7, 7, 4, 2, 7]


def paths(sampler, alphas, steps=20):
    out = []
    for _ in range(steps):
        sampler.invalidate()
        out.append([sampler.sample(a)[0] for a in alphas])
    return out


def test_the_same_op_path_with_and_without_bits(monkeypatch):
    monkeypatch.setattr(PathSampler, "_logits", PathSampler._logits)  # both restored after the test
    monkeypatch.setattr(precision.BitsChoice, "__init__", precision.BitsChoice.__init__)
    torch.manual_seed(0)
    ops_a = [torch.nn.Parameter(torch.randn(n)) for n in SIZES]
    ops_b = [torch.nn.Parameter(torch.randn(n) * 5) for n in SIZES]  # other values: their own draws differ
    assert paths(PathSampler(seed=0), ops_a, 5) != paths(PathSampler(seed=1), ops_b, 5)

    record = []
    bits_alphas = _paired_paths.install(record)
    bits = [torch.nn.Parameter(torch.zeros(3)) for _ in range(3)]
    bits_alphas.update(id(b) for b in bits)  # what the patched BitsChoice.__init__ does for a real layer
    plain, with_bits = PathSampler(seed=0), PathSampler(seed=1)
    plain.register(*ops_a)  # as a supernet registers every alpha before the first draw
    with_bits.register(ops_b[0], bits[0], ops_b[1], bits[1], *ops_b[2:], bits[2])  # bits registered in between
    a = paths(plain, ops_a)
    b = paths(with_bits, ops_b + bits)
    assert a == [p[:len(SIZES)] for p in b]
    assert len({tuple(p) for p in a}) > 10  # random paths, not one constant path
    assert all(0 <= k < n for path in a for k, n in zip(path, SIZES))
    assert len({p[len(SIZES)] for p in b}) == 3  # the bits are drawn too, from their own stream
    assert _paired_paths.paired_steps(record[:20], record[20:]) == (20, 20)
    assert _paired_paths.paired_steps(record[:20], record[21:]) != (19, 19)

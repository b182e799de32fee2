"""uboost.tuning.objectives.dominates: Pareto dominance, with differences within ``ties`` counted as equal."""

from uboost.tuning.objectives import dominates


def test_dominance_and_ties():
    assert dominates((0.9, 1.0), (0.9, 2.0), (1, -1)) and not dominates((0.9, 2.0), (0.9, 1.0), (1, -1))
    assert not dominates((0.9, 1.0), (0.9, 1.0), (1, -1))  # equal: neither dominates
    # a 1e-8 accuracy difference (float32 rounding of equal image counts) decides without ties, not with them
    assert dominates((0.9 + 1e-8, 2.0), (0.9, 2.0), (1, -1)) and not dominates((0.9 + 1e-8, 2.0), (0.9, 2.0), (1, -1), ties=(1e-6,))
    assert dominates((0.9, 1.0), (0.9 + 1e-8, 2.0), (1, -1), ties=(1e-6,))  # equally accurate, cheaper
    assert not dominates((0.9, 1.0), (0.9 + 1e-8, 2.0), (1, -1))
    assert dominates((0.95, 1.0), (0.9, 1.0), (1, -1), ties=(1e-6,))  # a real difference still counts

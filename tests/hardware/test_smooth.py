import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from uboost.hardware.smooth import smooth_ceil, window


def f(x, t, offset=0.0):
    return smooth_ceil(torch.tensor(x, dtype=torch.float64), t, offset).item()


def brute(x, t, offset=0.0):
    """The definition summed over every step (no window), for comparison."""
    def sigmoid(z):
        return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))

    return 1 + sum(sigmoid(t * (x - i - offset)) for i in range(1, int(x) + 200))


@given(x=st.floats(0.01, 300.0), t=st.sampled_from([0.5, 1.0, 3.0, 10.0, 100.0]))
@settings(max_examples=200, deadline=None)
def test_window_matches_the_full_sum(x, t):
    assert f(x, t) == pytest.approx(brute(x, t), abs=1e-6)


@given(x=st.floats(0.01, 1e4).filter(lambda v: abs(v - round(v)) > 1e-3))
@settings(max_examples=200, deadline=None)
def test_converges_to_ceil_away_from_integers(x):
    assert f(x, 1e5) == pytest.approx(math.ceil(x), abs=1e-6)


@pytest.mark.parametrize("n", [2, 7, 64, 1000])
def test_paper_steps_are_half_a_tile_high_at_integers(n):
    # the documented bias of the published definition (steps at integers)
    assert f(float(n), 1e4) == pytest.approx(n + 0.5, abs=1e-9)


@pytest.mark.parametrize("divisor", [8, 16, 64, 128])
def test_half_channel_offset_is_exact_at_every_integer_channel_count(divisor):
    channels = torch.arange(1, 4 * divisor + 2, dtype=torch.float64)
    got = smooth_ceil(channels / divisor, 1e4, offset=0.5 / divisor)
    assert torch.allclose(got, torch.ceil(channels / divisor), atol=1e-6)


@given(t=st.sampled_from([0.5, 2.0, 10.0, 50.0]), offset=st.sampled_from([0.0, 0.5 / 64]))
@settings(max_examples=20, deadline=None)
def test_monotone_and_differentiable(t, offset):
    x = torch.linspace(0.01, 40.0, 4001, dtype=torch.float64, requires_grad=True)
    y = smooth_ceil(x, t, offset)
    assert (y.diff() >= -1e-6).all()
    y.sum().backward()
    assert (x.grad >= 0).all() and x.grad.sum() > 0


def test_error_shrinks_as_temperature_grows():
    x = torch.linspace(0.05, 20.0, 997, dtype=torch.float64)
    errors = [(smooth_ceil(x, t) - torch.ceil(x)).abs().mean().item() for t in (1.0, 10.0, 100.0, 1000.0)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.01


@pytest.mark.parametrize("t", [1.0, 10.0, 100.0])
def test_first_tile_is_counted_exactly(t):
    # one channel on a 128-wide array still occupies one full tile, at every temperature
    x = torch.tensor([1 / 128, 0.2, 0.5], dtype=torch.float64)
    assert smooth_ceil(x, 1e4).tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert smooth_ceil(x, t, 0.5 / 128).min() >= 1.0


def test_no_cap_on_tile_count():
    assert f(1e7 + 0.5, 50.0) == pytest.approx(1e7 + 1, abs=1e-6)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan")])
def test_bad_temperature(bad):
    with pytest.raises(ValueError):
        window(bad)

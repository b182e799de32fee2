"""``nn.MultiheadAttention`` is priced as its GEMMs; unpriced work is named in a warning.

Before: the trace hooked ``Conv2d``/``Linear`` only and an attention computes its projections with
``F.linear``, so ``MultiheadAttention(64, 4)`` on 16 tokens + ``Linear(64, 10)`` priced 1 layer,
640 MACs, silently.
"""

import logging

import pytest
import torch
from torch import nn

from uboost.hardware import create, extract_layers

IN_PROJ, OUT_PROJ, SCORES, CONTEXT, FC = 3 * 16 * 64 * 64, 16 * 64 * 64, 16 * 16 * 64, 16 * 16 * 64, 640


class Attention(nn.Module):
    """The reviewer's example: self-attention of 16 tokens of 64 channels, 4 heads, then a classifier."""

    input_shape = (16, 64)

    def __init__(self, batch_first=True, **kwargs):
        super().__init__()
        self.att = nn.MultiheadAttention(64, 4, batch_first=batch_first, **kwargs)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        if not self.att.batch_first:
            x = x.transpose(0, 1)
        y = self.att(x, x, x)[0]
        return self.fc((y if self.att.batch_first else y.transpose(0, 1)).mean(1))


def make():
    return Attention()


@pytest.mark.parametrize("batch_first", [True, False])
def test_attention_is_priced_as_its_projections_and_its_two_matmuls(batch_first, caplog):
    with caplog.at_level(logging.WARNING):
        layers = extract_layers(Attention(batch_first=batch_first), (16, 64))
    macs = {layer.name: layer.macs for layer in layers}
    assert macs == {"att.in_proj": IN_PROJ, "att.scores": SCORES, "att.context": CONTEXT, "att.out_proj": OUT_PROJ, "fc": FC}
    assert IN_PROJ == 196_608 and OUT_PROJ == 65_536
    scores = next(l for l in layers if l.name == "att.scores")
    assert (scores.kind, scores.groups, scores.in_channels, scores.out_channels, scores.out_h) == ("linear", 4, 64, 64, 16)
    assert not caplog.records  # everything with weights or a matmul is priced


def test_cross_attention_projects_query_key_and_value_apart_with_their_widths():
    class Cross(nn.Module):
        def __init__(self):
            super().__init__()
            self.att = nn.MultiheadAttention(32, 2, kdim=12, vdim=20, batch_first=True, add_bias_kv=True)

        def forward(self, x):
            return self.att(x[..., :32], x[:, :5, :12], value=x[:, :5, :20])[0]

    layers = {l.name: l for l in extract_layers(Cross(), (9, 32))}
    assert [(n, l.in_channels, l.out_channels, l.out_h) for n, l in layers.items() if "proj" in n] == [
        ("att.q_proj", 32, 32, 9), ("att.k_proj", 12, 32, 5), ("att.v_proj", 20, 32, 5), ("att.out_proj", 32, 32, 9)]
    assert layers["att.scores"].macs == 9 * 32 * 6  # bias_k: one more key


def test_every_cost_model_prices_the_attention_rows():
    layers = extract_layers(Attention(), (16, 64))
    for name in ("systolic", "systolic-paper", "flops", "roofline", "systolic-mem"):
        report = create(name, rows=16, cols=16).evaluate(layers)
        assert all(l.cycles > 0 for l in report.layers), name
        assert sum(l.macs for l in report.layers) == IN_PROJ + OUT_PROJ + SCORES + CONTEXT + FC


def test_a_module_with_weights_of_an_unknown_kind_is_named_in_one_warning(caplog):
    class Gate(nn.Module):  # an elementwise gate with weights: no function the watch knows
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(64))

        def forward(self, x):
            return x * self.scale

    net = nn.Sequential(nn.Linear(64, 64), Gate(), nn.LayerNorm(64), nn.Linear(64, 10))
    warned = set()
    with caplog.at_level(logging.WARNING):
        assert len(extract_layers(net, (64,), warned=warned)) == 2
        extract_layers(net, (64,), warned=warned)  # a caller pricing many networks hears of each kind once
    assert [r.getMessage().count("\n") for r in caplog.records] == [0]
    assert "Gate (own weights: 1)" in caplog.records[0].getMessage() and "LayerNorm" not in caplog.text
    assert warned == {"Gate"}
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # no set of its own: every trace says it (nothing kept at module level)
        extract_layers(net, (64,))
        extract_layers(net, (64,))
    assert len(caplog.records) == 2 and warned == {"Gate"}


def test_a_matmul_outside_the_priced_modules_is_named_in_one_warning(caplog):
    class SelfAttention(nn.Module):  # NNI AutoFormer's way: Linear projections, q @ k^T by hand
        def __init__(self):
            super().__init__()
            self.q, self.k = nn.Linear(8, 8), nn.Linear(8, 8)

        def forward(self, x):
            return torch.softmax(self.q(x) @ self.k(x).transpose(-2, -1), -1) @ x

    with caplog.at_level(logging.WARNING):
        extract_layers(nn.Sequential(SelfAttention()), (4, 8))
    message = caplog.records[0].getMessage()
    assert len(caplog.records) == 1 and "SelfAttention (matmuls: 0)" in message


def test_a_module_that_takes_more_than_one_tensor_is_one_config_error():
    """QA: evaluate(nn.MultiheadAttention(16, 2), (5, 16)) was torch's raw TypeError about key and value."""
    from torch import nn

    from uboost.exceptions import ConfigError
    from uboost.hardware import create

    with pytest.raises(ConfigError, match="one input tensor, and its forward needs 3 \\(query, key, value\\)"):
        create("systolic", rows=8, cols=8).evaluate(nn.MultiheadAttention(16, 2), (5, 16))


def test_a_type_error_inside_the_networks_own_code_stays_its_own():
    """QA: a bug in a network's forward (a layer called with two arguments) was reported as a network needing more
    than one input; its traceback is the help."""
    from torch import nn

    from uboost.hardware import create

    class Buggy(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(8, 4)

        def forward(self, x):
            return self.l(x, 3)

    with pytest.raises(TypeError, match="positional argument"):
        create("systolic", rows=8, cols=8).evaluate(Buggy(), (8,))

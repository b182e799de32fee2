"""A searched layer-norm or attention width computes the frozen network, pinned, in both sampling modes.

NNI's mixed ``LayerNorm`` and ``MultiheadAttention`` treat any distribution of widths, the
one-entry ``{width: weight}`` single-path sampling gave them included, as the widest: the layer
norm's statistics ran over the masked zeros too and the attention split its heads at the widest
embedding, so at a narrow width the pinned supernet's outputs differed from the frozen network's
by ~0.1-0.2 (exactly 0 at the widest; NNI's AutoFormer with a searched embed_dim: 0.08-0.17).
The mixture of widths likewise (pinned at a narrow width: layer norm 0.41 off, attention 0.17,
AutoFormer 0.11): it is now the mixture of the candidates' sliced operations.
"""

import re

import nni
import pytest
import torch
from nni.nas.nn.pytorch import ModelSpace, MutableLayerNorm, MutableLinear, MutableMultiheadAttention

from uboost.exceptions import ConfigError
from uboost.predict.network import network_indices
from uboost.predict.supernet import pinned
from uboost.strategy import UBoost
from uboost.strategy.architecture import choice_groups
from uboost.strategy.sliced_ops import (MixtureMixedLayerNorm, MixtureMixedMultiHeadAttention, SinglePathMixedLayerNorm,
                                        SinglePathMixedMultiHeadAttention)


class NormSpace(ModelSpace):
    """The reviewer's case: Linear 6->w, LayerNorm(w), Linear w->3."""

    def __init__(self):
        super().__init__()
        w = nni.choice("w", [4, 8])
        self.fc1, self.ln, self.fc2 = MutableLinear(6, w), MutableLayerNorm(w), MutableLinear(w, 3)

    def forward(self, x):
        return self.fc2(self.ln(self.fc1(x)))


class AttentionSpace(ModelSpace):
    """A searched embedding through self-attention (2 heads), a residual and a layer norm."""

    def __init__(self):
        super().__init__()
        e = nni.choice("e", [8, 16])
        self.fc1 = MutableLinear(6, e)
        self.att = MutableMultiheadAttention(embed_dim=e, num_heads=2, batch_first=True)
        self.ln = MutableLayerNorm(e)
        self.fc2 = MutableLinear(e, 3)

    def forward(self, x):
        h = self.fc1(x)
        h = h + self.att(h, h, h)[0]
        return self.fc2(self.ln(h)).mean(1)


def autoformer():
    """NNI's AutoFormer at its smallest (builds in well under a second)."""
    from nni.nas.hub.pytorch import AutoFormer

    return AutoFormer(search_embed_dim=(16, 24), search_mlp_ratio=(1.0, 2.0), search_num_heads=(1, 2),
                      search_depth=(1, 2), img_size=32, patch_size=8, num_labels=10, drop_path_rate=0.0)


def prefix(full: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    return full[tuple(slice(0, n) for n in shape)]


def slice_into(supernet, frozen) -> None:
    """The supernet's tensors, sliced to the frozen network's shapes, copied into it: a prefix of each,
    of each of q, k and v in an attention's packed in-projection."""
    source = supernet.state_dict()
    state = {}
    for name, tensor in frozen.state_dict().items():
        full = source[re.sub(r"^blocks\.(\d+)\.", r"blocks.blocks.\1.", name) if name not in source else name]
        if name.endswith(("in_proj_weight", "in_proj_bias")):
            part = (tensor.shape[0] // 3, *tensor.shape[1:])
            state[name] = torch.cat([prefix(p, part) for p in full.chunk(3)])
        else:
            state[name] = prefix(full, tensor.shape).clone()
    frozen.load_state_dict(state)


def assert_pinned_supernet_is_frozen(make, arch, x, sampling="single-path"):
    torch.manual_seed(0)
    supernet = UBoost(sampling=sampling, seed=0).mutate_model(make())
    frozen = make().freeze(arch)
    slice_into(supernet, frozen)
    choices, nodes = choice_groups(supernet)
    supernet.train()
    frozen.train()
    with torch.no_grad(), pinned(choices, network_indices(choices, nodes, arch), supernet):
        expected = frozen(x)
        torch.testing.assert_close(supernet(x), expected, rtol=1e-5, atol=1e-5)
    assert expected.abs().max() > 0.1


SAMPLINGS = ["single-path", "mixture"]


@pytest.mark.parametrize("sampling", SAMPLINGS)
@pytest.mark.parametrize("w", [4, 8])
def test_a_searched_layer_norm_width_is_the_frozen_layer_norm(w, sampling):
    """Before the fix at w=4: [0.2008, -0.5737, 0.1950] vs the frozen [-0.0018, -0.3694, 0.0699]."""
    assert_pinned_supernet_is_frozen(NormSpace, {"w": w}, torch.randn(5, 6), sampling)


@pytest.mark.parametrize("sampling", SAMPLINGS)
@pytest.mark.parametrize("e", [8, 16])
def test_a_searched_attention_embedding_is_the_frozen_attention(e, sampling):
    """Before the fix at e=8: 0.11 apart (heads split at 16 channels, the layer norm over 16)."""
    assert_pinned_supernet_is_frozen(AttentionSpace, {"e": e}, torch.randn(5, 4, 6), sampling)


@pytest.mark.parametrize("arch", [
    {"embed_dim": 16, "depth": 2, "mlp_ratio_0": 1.0, "mlp_ratio_1": 2.0, "num_head_0": 1, "num_head_1": 2},
    {"embed_dim": 16, "depth": 1, "mlp_ratio_0": 2.0, "mlp_ratio_1": 1.0, "num_head_0": 2, "num_head_1": 1},
    {"embed_dim": 24, "depth": 2, "mlp_ratio_0": 2.0, "mlp_ratio_1": 1.0, "num_head_0": 2, "num_head_1": 1},
])
@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_nni_autoformer_with_a_searched_embedding_is_the_frozen_network(arch, sampling):
    assert_pinned_supernet_is_frozen(autoformer, arch, torch.randn(3, 3, 32, 32), sampling)


def test_each_sampling_mode_uses_its_own_operations():
    net = UBoost(sampling="single-path").mutate_model(AttentionSpace())
    assert type(net.ln) is SinglePathMixedLayerNorm and type(net.att) is SinglePathMixedMultiHeadAttention
    net = UBoost(sampling="mixture").mutate_model(AttentionSpace())
    assert type(net.ln) is MixtureMixedLayerNorm and type(net.att) is MixtureMixedMultiHeadAttention


def frozen_with_weights(make, supernet, arch):
    frozen = make().freeze(arch)
    slice_into(supernet, frozen)
    return frozen.eval()


@pytest.mark.parametrize("make,label,values,x", [
    (NormSpace, "w", [4, 8], torch.randn(5, 6)), (AttentionSpace, "e", [8, 16], torch.randn(5, 4, 6))])
def test_the_mixture_of_widths_is_the_weighted_sum_of_the_candidate_operations(make, label, values, x):
    """At p = (0.3, 0.7) the mixed layer norm / attention is 0.3 * op_narrow(x[:narrow]) (zero-padded) + 0.7 * op_wide(x),
    each candidate run by the frozen network's own module (the linear layers around them stay NNI's masks)."""
    torch.manual_seed(0)
    net = UBoost(sampling="mixture", seed=0, gumbel_temperature=None).mutate_model(make()).eval()  # plain softmax weights
    choice = next(c for c in choice_groups(net)[0] if c.label == label)
    with torch.no_grad():
        choice.alpha.copy_(torch.log(torch.tensor([0.3, 0.7])).reshape(choice.alpha.shape))
    h = torch.randn(*x.shape[:-1], values[-1])
    expected = 0
    for p, v in zip((0.3, 0.7), values):
        frozen = frozen_with_weights(make, net, {label: v})
        op = frozen.ln if make is NormSpace else frozen.att
        out = op(h[..., :v]) if make is NormSpace else op(h[..., :v], h[..., :v], h[..., :v])[0]
        expected = expected + p * torch.nn.functional.pad(out, (0, values[-1] - v))
    with torch.no_grad():
        got = net.ln(h) if make is NormSpace else net.att(h, h, h)[0]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert (expected[..., values[0]:] != 0).any()


def test_the_attention_width_alpha_gets_a_task_gradient_in_the_mixture():
    """NNI's mixed attention ran its widest embedding whatever the distribution: no gradient to the width's alpha."""
    torch.manual_seed(0)
    net = UBoost(sampling="mixture", seed=0).mutate_model(AttentionSpace()).train()
    h = torch.randn(5, 4, 16)
    net.att(h, h, h)[0].square().sum().backward()
    alpha = next(c.alpha for c in choice_groups(net)[0] if c.label == "e")
    assert alpha.grad is not None and alpha.grad.abs().sum() > 0


@pytest.mark.parametrize("make,label", [(NormSpace, "w"), (AttentionSpace, "e"), (autoformer, "embed_dim")])
def test_the_width_alpha_gets_a_task_gradient_through_the_sliced_operations(make, label):
    """The output of a sliced operation is scaled by its straight-through weight: the alpha of its width
    gets a task gradient from it (a layer norm undoes the scale of the masked layer before it)."""
    torch.manual_seed(0)
    strategy = UBoost(sampling="single-path", seed=1)
    net = strategy.mutate_model(make())
    net.train()
    x = {NormSpace: torch.randn(5, 6), AttentionSpace: torch.randn(5, 4, 6)}.get(make, torch.randn(2, 3, 32, 32))
    net(x).square().sum().backward()
    alpha = next(c.alpha for c in choice_groups(net)[0] if c.label == label)
    assert alpha.grad is not None and alpha.grad.abs().sum() > 0


def test_a_narrow_layer_norm_writes_zeros_past_its_width():
    net = UBoost(sampling="single-path").mutate_model(NormSpace())
    net.train()
    choices, nodes = choice_groups(net)
    with torch.no_grad(), pinned(choices, network_indices(choices, nodes, {"w": 4}), net):
        out = net.ln(torch.randn(5, 8))
    assert out.shape == (5, 8) and out[:, 4:].abs().sum() == 0 and out[:, :4].abs().sum() > 0


def test_a_searched_number_of_heads_is_refused_in_one_line():
    class HeadsSpace(ModelSpace):
        def __init__(self):
            super().__init__()
            self.att = MutableMultiheadAttention(embed_dim=8, num_heads=nni.choice("h", [1, 2]))

        def forward(self, x):
            return self.att(x, x, x)[0]

    with pytest.raises(ConfigError, match="searched num_heads") as info:
        UBoost(sampling="single-path").mutate_model(HeadsSpace())
    assert "\n" not in str(info.value)

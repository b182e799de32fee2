"""``frontier``'s "distinct choices": a bits label counts only where the network has its layer (the bits of
candidates a network does not keep are free values: the search's own argmax, with other values there,
is still the search's network)."""

from __future__ import annotations

import torch

from uboost.frontier import distinct_choices
from uboost.search_spaces.darts import darts_cifar
from uboost.strategy import UBoost
from uboost.strategy.architecture import argmax_indices, choice_groups, indices_to_arch
from uboost.strategy.precision import bits_labels_used, is_bits_label


def test_only_the_bits_of_the_networks_own_layers_count():
    torch.manual_seed(0)
    supernet = UBoost(bits=(2, 8), sampling="single-path", seed=0).mutate_model(darts_cifar(width=4, cells=3))
    choices, nodes = choice_groups(supernet)
    arch = indices_to_arch(choices, nodes, argmax_indices(choices, nodes))
    bits = sorted(k for k in arch if is_bits_label(k))
    used = bits_labels_used(supernet, arch)
    assert used and set(bits) > used  # the cells' unkept candidates have bits labels too
    flip = {2: 8, 8: 2}
    unused = next(k for k in bits if k not in used)
    assert distinct_choices({**arch, unused: flip[arch[unused]]}, arch, supernet) == 0
    assert distinct_choices({**arch, unused: flip[arch[unused]]}, arch) == 1  # without the supernet: every label
    mine = next(iter(sorted(used)))
    assert distinct_choices({**arch, mine: flip[arch[mine]], unused: flip[arch[unused]]}, arch, supernet) == 1

"""darts-cifar with channel search: the supernet at a chosen width is the frozen network.

A width choice masks the channels past the chosen width and the next layer reads a prefix of its
input; a cell joined its node outputs node-major, so at a narrow width the next layer read node 2
and part of node 3 only (the later nodes' edges changed nothing) and the supernet trained, priced
and measured (``uboost predict``) another network than the one exported.
"""

import re

import pytest
import torch

from uboost.predict.network import network_indices
from uboost.predict.supernet import pinned
from uboost.search_spaces import create
from uboost.strategy import UBoost
from uboost.strategy.architecture import choice_groups

NODES = 4


def genotype() -> dict:
    """Distinct inputs per node; the reduction cell's skip_connect from input 0 is a FactorizedReduce, and
    both cells' last node reads a conv_3x3 (the edge the tests perturb)."""
    rows = {2: ("skip_connect", 0, "sep_conv_3x3", 1), 3: ("max_pool_3x3", 1, "conv_5x5", 2),
            4: ("conv_3x3", 0, "sep_conv_5x5", 3), 5: ("conv_3x3", 4, "skip_connect", 2)}
    arch = {}
    for label in ("normal", "reduce"):
        for i, (op0, j0, op1, j1) in rows.items():
            arch.update({f"{label}/op_{i}_0": op0, f"{label}/input_{i}_0": [j0],
                         f"{label}/op_{i}_1": op1, f"{label}/input_{i}_1": [j1]})
    return arch


def build(sampling: str, derived: bool, widths: tuple[int, int, int]):
    """``(supernet, frozen network, arch)``: stage ``s`` at entry ``widths[s]`` of ``channels=4:12:4``."""
    torch.manual_seed(0)
    space = create("darts-cifar", width=4, cells=3, nodes=NODES, channels="4:12:4",
                   cell_arch=genotype() if derived else None, input_shape=(3, 8, 8))
    arch = {} if derived else genotype()
    arch.update({f"width_{s}": space.simplify()[f"width_{s}"].values[k] for s, k in enumerate(widths)})
    frozen = space.freeze(arch)
    supernet = UBoost(sampling=sampling, seed=0).mutate_model(space)
    return supernet, frozen, arch


def supernet_name(name: str, arch: dict, derived: bool) -> str:
    """The supernet tensor a frozen network's tensor is a prefix of."""
    match = re.fullmatch(r"stages\.(\d+)\.(\d+)\.(.*)", name)
    if match is None or derived:  # stem, classifier; a derived cell's names are the frozen ones
        return name
    stage, index, rest = match.groups()
    cell = f"stages.{stage}.blocks.{index}"
    edge = re.fullmatch(r"ops\.(\d+)\.(\d+)\.(.*)", rest)
    if edge is None:
        return f"{cell}.{rest}"
    node, k, tail = int(edge.group(1)) + 2, edge.group(2), edge.group(3)
    label = "reduce" if stage != "0" and index == "0" else "normal"
    j, op = arch[f"{label}/input_{node}_{k}"][0], arch[f"{label}/op_{node}_{k}"]
    return f"{cell}.ops.{node - 2}.{j}.{op}.{tail}"


def slice_into(supernet, frozen, arch, derived) -> None:
    """The supernet's weights and statistics, sliced to the frozen network's shapes, copied into it."""
    source = supernet.state_dict()
    state = {}
    for name, tensor in frozen.state_dict().items():
        full = source[supernet_name(name, arch, derived)]
        state[name] = full[tuple(slice(0, n) for n in tensor.shape)].clone() if tensor.dim() else full.clone()
    frozen.load_state_dict(state)


def last_edge(net, arch, derived, frozen: bool):
    """The conv_3x3 on the first input of the last node of the first (normal) cell."""
    if derived:
        return net.stages[0][0].nodes[-1][0]
    if frozen:
        return net.stages[0][0].ops[-1][0]
    return net.stages[0].blocks[0].ops[-1][arch["normal/input_5_0"][0]]["conv_3x3"]


CASES = [(sampling, derived) for sampling in ("single-path", "mixture") for derived in (False, True)]


@pytest.mark.parametrize("sampling,derived", CASES)
@pytest.mark.parametrize("widths", [(0, 0, 0), (1, 2, 0), (2, 2, 2)])
def test_the_pinned_supernet_computes_the_frozen_network(sampling, derived, widths):
    """Before the fix, at any width but the widest the outputs differed by ~1 (exactly 0 at the widest)."""
    supernet, frozen, arch = build(sampling, derived, widths)
    slice_into(supernet, frozen, arch, derived)
    choices, nodes = choice_groups(supernet)
    x = torch.randn(6, 3, 8, 8)
    supernet.train()
    frozen.train()  # batch statistics in both
    with torch.no_grad(), pinned(choices, network_indices(choices, nodes, arch), supernet):
        torch.testing.assert_close(supernet(x), frozen(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sampling,derived", CASES)
def test_an_edge_into_the_last_node_changes_the_output_at_the_narrowest_width(sampling, derived):
    """The reviewer's case: at the narrowest widths the supernet's logits moved by exactly 0.0."""
    supernet, frozen, arch = build(sampling, derived, (0, 0, 0))
    choices, nodes = choice_groups(supernet)
    x = torch.randn(6, 3, 8, 8)
    supernet.train()
    frozen.train()
    with torch.no_grad(), pinned(choices, network_indices(choices, nodes, arch), supernet):
        before_supernet = supernet(x)
        slice_into(supernet, frozen, arch, derived)
        before_frozen = frozen(x)
        for p in last_edge(supernet, arch, derived, frozen=False).parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
        slice_into(supernet, frozen, arch, derived)
        moved_frozen = float((frozen(x) - before_frozen).abs().max())
        moved_supernet = float((supernet(x) - before_supernet).abs().max())
    assert moved_frozen > 1e-2  # the edge is part of the exported network
    assert moved_supernet == pytest.approx(moved_frozen, rel=1e-4, abs=1e-5)


def test_without_channel_search_the_cells_keep_nni_s_layout():
    """Only a searched width changes how a cell joins its nodes (the other darts-cifar runs are unchanged)."""
    from nni.nas.hub.pytorch.nasnet import CellPostprocessor, FactorizedReduce

    from uboost.search_spaces.darts import ChannelMajorConcat, ChannelMajorFactorizedReduce

    for channels in (None, "8:8:2"):
        net = create("darts-cifar", width=4, cells=3, channels=channels, input_shape=(3, 8, 8))
        kinds = {type(m) for m in net.modules()}
        assert CellPostprocessor in kinds and FactorizedReduce in kinds
        assert not kinds & {ChannelMajorConcat, ChannelMajorFactorizedReduce}
    net = create("darts-cifar", width=4, cells=3, channels="4:8:4", input_shape=(3, 8, 8))
    assert {ChannelMajorConcat, ChannelMajorFactorizedReduce} <= {type(m) for m in net.modules()}


def test_weights_trained_with_the_old_node_major_cells_are_refused_not_loaded_into_another_function():
    """Same tensor names and shapes either way: the layout's marker is what tells them apart."""
    from uboost import runs

    _, frozen, _ = build("single-path", False, (0, 0, 0))
    state = frozen.state_dict()
    markers = [k for k in state if k.endswith("postprocessor.channel_major")]
    assert len(markers) == 3  # one per cell
    old = {k: v for k, v in state.items() if k not in markers}
    with pytest.raises(RuntimeError, match="channel_major"):
        frozen.load_state_dict(old)
    assert {key for key, *_ in runs.tensors_differ(state, old)} == set(markers)

"""Single-path sampling (``UBoost(sampling="single-path")``): only the sampled path runs."""

import pytest
import torch
from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule
from nni.nas.oneshot.pytorch.supermodule.operation import MixedConv2d

from uboost.exceptions import ConfigError
from uboost.hardware import create
from uboost.strategy import HardwareLoss, UBoost, run_experiment
from uboost.strategy.single_path import (
    PathSampler,
    SinglePathMixedCell,
    SinglePathMixedLayer,
    SinglePathMixedRepeat,
    find_sampler,
    sampled_cost,
)

from tests.strategy.spaces import CellSpace, MixedSpace
from tests.strategy.test_uboost import evaluator

MODEL = dict(cost_model="systolic", hardware=dict(rows=8, cols=8))


def supernet(space, seed=0, **kwargs):
    strategy = UBoost(**MODEL, sampling="single-path", seed=seed, **kwargs)
    net = strategy.mutate_model(space)
    net.train()
    return strategy, net


def resample(net):
    """What the one-shot module does before each step: every supermodule's ``resample``."""
    for m in net.modules():
        if isinstance(m, BaseSuperNetModule):
            m.resample({})


def count_calls(modules):
    counts = {m: 0 for m in modules}

    def hook(module, args, output):
        counts[module] += 1

    handles = [m.register_forward_hook(hook) for m in modules]
    return counts, handles


def sampled_value(sampler, alpha, values):
    return values[sampler.index(alpha)]


def test_supermodules_are_single_path_and_share_one_sampler():
    strategy, net = supernet(CellSpace())
    kinds = {type(m) for m in net.modules()}
    assert {SinglePathMixedLayer, SinglePathMixedCell, SinglePathMixedRepeat, MixedConv2d} <= kinds
    samplers = {id(m) for m in net.modules() if isinstance(m, PathSampler)}
    assert len(samplers) == 1 and find_sampler(net) is strategy._sampler
    # every alpha the architecture optimizer trains is sampled by it
    alphas = {id(p) for m in net.modules() if hasattr(m, "arch_parameters") for p in m.arch_parameters()}
    assert alphas == {id(a) for a in strategy._sampler.alphas}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_only_the_sampled_candidates_run(seed):
    strategy, net = supernet(CellSpace(), seed=seed)
    sampler = strategy._sampler
    layer = next(m for m in net.modules() if isinstance(m, SinglePathMixedLayer))
    cell = next(m for m in net.modules() if isinstance(m, SinglePathMixedCell))
    repeat = next(m for m in net.modules() if isinstance(m, SinglePathMixedRepeat))
    edges = {
        (i, j): list(cell.ops[i - cell.num_predecessors][j].values())
        for i in range(cell.num_predecessors, cell.num_predecessors + cell.num_nodes) for j in range(i)
    }
    watched = [layer[n] for n in layer.names] + list(repeat.blocks) + [op for ops in edges.values() for op in ops]
    counts, handles = count_calls(watched)
    seen_layer, seen_edges = set(), set()
    try:
        for _ in range(6):  # several steps: the sample changes, only ever one candidate runs
            resample(net)
            for m in counts:
                counts[m] = 0
            net(torch.randn(2, 1, 8, 8))
            k = sampler.index(layer._arch_alpha)
            seen_layer.add(k)
            assert [counts[layer[n]] for n in layer.names] == [int(i == k) for i in range(len(layer.names))]
            depth = sampled_value(sampler, repeat._arch_alpha["cdepth"], [1, 2])
            assert [counts[b] for b in repeat.blocks] == [int(i < depth) for i in range(len(repeat.blocks))]
            for (i, j), ops in edges.items():
                e = sampler.index(cell._arch_alpha[f"{cell.label}/{i}_{j}"])  # == len(ops): "none"
                seen_edges.add(e)
                assert [counts[op] for op in ops] == [int(e == o) for o in range(len(ops))], (i, j, e)
    finally:
        for h in handles:
            h.remove()
    assert len(seen_layer) > 1 or len(seen_edges) > 1  # the path did change between steps


def test_unsampled_weights_get_no_gradient_and_a_width_is_one_mask():
    strategy, net = supernet(MixedSpace(), seed=3)
    sampler = strategy._sampler
    layer = next(m for m in net.modules() if isinstance(m, SinglePathMixedLayer))
    resample(net)
    net(torch.randn(2, 1, 8, 8)).sum().backward()
    k = sampler.index(layer._arch_alpha)
    for i, name in enumerate(layer.names):
        grads = [p.grad for p in layer[name].parameters()]
        if i == k:
            assert all(g is not None and g.abs().sum() > 0 for g in grads)
        else:
            assert all(g is None for g in grads)
    # the stem's width: output channels beyond the sampled width are exactly zero, and their
    # weights get no gradient (one mask, not a weighted mixture of masks)
    stem = net.stem
    w = sampled_value(sampler, stem._arch_alpha["w"], [8, 16, 24])
    assert stem.forward_argument("out_channels").keys() == {w}
    out = stem(torch.randn(2, 1, 8, 8))
    assert out.shape[1] == 24 and out[:, w:].abs().sum() == 0 and out[:, :w].abs().sum() > 0
    assert stem.weight.grad[w:].abs().sum() == 0 and stem.weight.grad[:w].abs().sum() > 0


def test_eval_mode_runs_the_mixture():
    _, net = supernet(MixedSpace())
    layer = next(m for m in net.modules() if isinstance(m, SinglePathMixedLayer))
    counts, handles = count_calls([layer[n] for n in layer.names])
    net.eval()
    with torch.no_grad():
        net(torch.randn(1, 1, 8, 8))
    for h in handles:
        h.remove()
    assert all(c == 1 for c in counts.values())  # what tracing the supernet's cost needs


def test_alphas_get_gradients_from_the_task_and_from_the_hardware_term():
    strategy, net = supernet(CellSpace(), seed=0)
    sampler = strategy._sampler
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,))
    hw = HardwareLoss(create("systolic", rows=8, cols=8), latency_weight=1.0, utilization_weight=1.0)
    hw.attach(net, x)
    net.train()
    alphas = sampler.alphas

    resample(net)
    torch.nn.functional.cross_entropy(net(x), y).backward()
    task = {id(a): a.grad for a in alphas}
    layer = next(m for m in net.modules() if isinstance(m, SinglePathMixedLayer))
    g = task[id(layer._arch_alpha)]
    assert g is not None and g.abs().sum() > 0  # the task reaches the sampled path's alphas (ST)
    reached = [a for a in alphas if task[id(a)] is not None and task[id(a)].abs().sum() > 0]
    assert len(reached) >= 3

    for a in alphas:
        a.grad = None
    hw().loss.backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in alphas)  # expected cost: every alpha


def test_sampled_cost_is_the_exact_cost_of_the_sampled_network():
    strategy, net = supernet(MixedSpace(), seed=4)
    model = create("systolic", rows=8, cols=8)
    x = torch.randn(1, 1, 8, 8)
    hw = HardwareLoss(model)
    hw.attach(net, x)
    net.train()
    space = MixedSpace()
    values = {label: list(spec.values) for label, spec in space.simplify().items()}
    seen = set()
    for _ in range(5):
        resample(net)
        net(x)
        arch = {label: values[label][strategy._sampler.index(strategy._arch_parameters[label])] for label in values}
        seen.add(tuple(arch.values()))
        expected = model.evaluate(MixedSpace().freeze(arch), (1, 8, 8)).cycles
        assert float(sampled_cost(hw.supernet_cost, strategy._sampler).cycles) == pytest.approx(expected, rel=1e-9)
    assert len(seen) > 1


def test_fixed_seed_fixes_the_sampled_paths():
    def paths(seed):
        strategy, net = supernet(MixedSpace(), seed=seed)
        out = []
        for _ in range(8):
            resample(net)
            net(torch.randn(1, 1, 8, 8))
            out.append(tuple(strategy._sampler.index(a) for a in strategy._sampler.alphas))
        return out

    assert paths(7) == paths(7)
    assert paths(7) != paths(8)


def test_sampler_state_travels_with_the_state_dict():
    strategy, net = supernet(MixedSpace(), seed=5)
    sampler = strategy._sampler
    resample(net)
    net(torch.randn(1, 1, 8, 8))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    assert any(k.endswith("rng_state") for k in state)

    def next_paths(n=4):
        out = []
        for _ in range(n):
            resample(net)
            net(torch.randn(1, 1, 8, 8))
            out.append(tuple(sampler.index(a) for a in sampler.alphas))
        return out

    first = next_paths()
    _, other = supernet(MixedSpace(), seed=99)
    other.load_state_dict(state)  # a fresh supernet continues the same noise sequence
    net.load_state_dict(state)
    assert next_paths() == first


@pytest.mark.parametrize("sampling", ["single-path", "mixture"])
def test_cells_layerchoice_width_repeat_search_end_to_end(sampling, tmp_path):
    torch.manual_seed(0)
    ev = evaluator(epochs=2)
    strategy = UBoost(**MODEL, sampling=sampling, latency_weight=1.0)
    arch = run_experiment(CellSpace(), ev, strategy, workdir=tmp_path)
    assert set(arch) == set(CellSpace().simplify())
    frozen = CellSpace().freeze(arch)
    assert frozen(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    metrics = ev.trainer.callback_metrics
    for key in ("hw/latency_ms", "hw/utilization", "hw/loss", "train_loss"):
        assert key in metrics and torch.isfinite(metrics[key]), key
    assert ("hw/sampled_latency_ms" in metrics) == (sampling == "single-path")
    if sampling == "single-path":
        assert float(metrics["hw/sampled_latency_ms"]) > 0


def test_resume_restores_the_sampler_state(tmp_path):
    """A single-path search resumed from its end-of-epoch checkpoint draws the same noise and
    the same paths as an uninterrupted one."""
    import pytorch_lightning as pl
    from nni.nas.evaluator.pytorch import Classification, DataLoader
    from torch.utils.data import TensorDataset

    class Recorder(pl.Callback):
        def __init__(self):
            self.paths = []

        def on_train_batch_end(self, trainer, pl_module, *args):
            sampler = find_sampler(pl_module)
            self.paths.append(tuple(sampler.index(a) for a in sampler.alphas))

    def search(epochs, name, resume_from=None):
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(0)
        data = TensorDataset(torch.randn(48, 1, 8, 8, generator=g), torch.randint(0, 10, (48,), generator=g))
        recorder = Recorder()
        ev = Classification(
            train_dataloaders=DataLoader(data, batch_size=16), val_dataloaders=DataLoader(data, batch_size=16),
            num_classes=10, max_epochs=epochs, enable_progress_bar=False, enable_model_summary=False, logger=False,
            callbacks=[recorder, pl.callbacks.ModelCheckpoint(dirpath=tmp_path / name, filename="last", every_n_epochs=1)],
        )
        if resume_from is not None:
            ev.fit_kwargs["ckpt_path"] = str(resume_from)
        strategy = UBoost(**MODEL, sampling="single-path", seed=3, data_split=None)
        run_experiment(MixedSpace(), ev, strategy, workdir=tmp_path / f"nni-{name}")
        return recorder.paths, strategy._sampler.generator.get_state()

    full, full_state = search(2, "full")
    first, first_state = search(1, "first")
    resumed, resumed_state = search(2, "resumed", resume_from=tmp_path / "first" / "last.ckpt")
    assert len(first) == len(resumed) == 3 and first == full[:3]
    assert torch.equal(resumed_state, full_state) and not torch.equal(first_state, full_state)
    assert resumed == full[3:]
    assert resumed != first  # a sampler restarted from its seed would have repeated these


def test_bad_sampling_mode():
    with pytest.raises(ConfigError, match="sampling"):
        UBoost(sampling="two-path")


def test_export_probs_are_the_plain_softmax():
    strategy, net = supernet(MixedSpace())
    layer = next(m for m in net.modules() if isinstance(m, SinglePathMixedLayer))
    with torch.no_grad():
        layer._arch_alpha.copy_(torch.tensor([1.0, 0.0, -1.0]))
    probs = layer.export_probs({})["op"]
    assert list(probs.values()) == pytest.approx(torch.softmax(torch.tensor([1.0, 0.0, -1.0]), -1).tolist())


def test_constant_alphas_give_the_same_straight_through_weights_without_a_graph():
    """The search's weight step samples inside ``constant_alphas()``: the same numbers (and the
    same weight gradients), no gradient to the alphas; outside it the alphas learn again."""
    strategy, net = supernet(MixedSpace(), seed=3)
    sampler = strategy._sampler
    resample(net)
    x = torch.randn(2, 1, 8, 8)
    net(x)
    with sampler.constant_alphas():
        const = {id(a): sampler.sample(a)[1] for a in sampler.alphas}
        out = net(x)
    learn = {id(a): sampler.sample(a)[1] for a in sampler.alphas}
    for key, st in const.items():
        assert torch.equal(st, learn[key]) and st.grad_fn is None and learn[key].grad_fn is not None
    weights = [p for p in net.parameters() if not any(p is a for a in sampler.alphas)]
    out.sum().backward()
    grads = [None if p.grad is None else p.grad.clone() for p in weights]
    assert all(a.grad is None for a in sampler.alphas)
    net.zero_grad()
    net(x).sum().backward()  # the same path, the same numbers, now with the alphas' graph
    assert all(a.grad is not None for a in sampler.alphas)
    assert all((g is None and p.grad is None) or torch.equal(g, p.grad) for g, p in zip(grads, weights))


def test_the_draw_reads_a_host_mirror_in_any_alpha_order():
    """The path draw gathers the alphas from the mirror's flat buffer: a mirror taken in another order
    (the search's is in module order, the sampler's in registration order) gives the same draw."""
    from uboost.strategy.host_mirror import HostMirror

    g = torch.Generator().manual_seed(3)
    alphas = [torch.nn.Parameter(torch.randn(n, generator=g)) for n in (3, 2, 4, 3, 3)]
    draws = []
    for order in (alphas, alphas[::-1], alphas[1:] + alphas[:1]):
        sampler = PathSampler(seed=5)
        sampler.register(*alphas)
        sampler.use(HostMirror(order))
        draws.append(([sampler.index(a) for a in alphas], sampler._typed.clone()))
    for indices, typed in draws[1:]:
        assert indices == draws[0][0] and torch.equal(typed, draws[0][1])


def test_straight_through_weights_made_together_are_the_same_numbers():
    """Alphas joined with ``together`` (the bits choices') get their straight-through weights from one
    stacked computation: the same values and gradients as one by one; an alpha not used in the pass
    gets a zero gradient instead of none (the bits' alphas get one from the hardware term anyway)."""
    g = torch.Generator().manual_seed(4)
    alphas = [torch.randn(3, generator=g) for _ in range(6)] + [torch.randn(2, generator=g) for _ in range(3)]
    results = []
    for join in (False, True):
        params = [torch.nn.Parameter(a.clone()) for a in alphas]
        sampler = PathSampler(seed=2)
        sampler.tau = 0.7
        (sampler.together if join else sampler.register)(*params)
        used = params[::2]
        loss = sum((sampler.sample(a)[1] * torch.arange(1.0, a.numel() + 1)).sum() for a in used)
        loss.backward()
        results.append(([sampler.sample(a)[1].detach() for a in params], [p.grad for p in params]))
    (values, grads), (values_joined, grads_joined) = results
    assert all(torch.equal(a, b) for a, b in zip(values, values_joined))
    for k, (a, b) in enumerate(zip(grads, grads_joined)):
        if k % 2 == 0:
            assert torch.equal(a, b)
        else:
            assert a is None and torch.equal(b, torch.zeros_like(b))

"""No host synchronisation in a steady-state search step (issue 25, item 5), counted on a CPU.

:mod:`uboost.host_syncs` models an accelerator: every tensor lives on the device except what the
host made itself. The search's step reads nothing on the host: the path draws and the commit
phase's projection use a host copy of the alphas taken a step earlier without waiting
(:mod:`uboost.strategy.host_mirror`), the projection is solved on a worker thread
(:mod:`uboost.strategy.background`), the derived network, the multipliers and the non-finite-loss
check stay tensors (the check is read every ``log_every_n_steps`` steps and at the epoch's end).
"""

import pytest
import pytorch_lightning as pl
import torch

from uboost.hardware import create
from uboost.host_syncs import is_host, new_counter
from uboost.strategy import HardwareLoss, UBoost, run_experiment
from uboost.strategy.architecture import argmax_indices, argmax_one_hot, choice_groups, one_hot
from uboost.strategy.dual_ascent import dual_step, dual_step_
from uboost.strategy.host_mirror import HostMirror
from uboost.strategy.single_path import PathSampler, find_sampler

from tests.strategy.spaces import CellSpace, TaskNeutralSpace
from tests.strategy.test_budget import window_with_one_expensive_op
from tests.strategy.test_uboost import evaluator

MODEL = dict(cost_model="systolic", hardware=dict(rows=8, cols=8))


# -- the counter -----------------------------------------------------------------------------
def test_counter_counts_reads_of_device_tensors_and_not_of_host_made_ones():
    device = torch.nn.Parameter(torch.randn(4))  # stands for a tensor on the accelerator
    with new_counter() as counter:
        y = (device * 2).sum()
        float(y), y.item(), device.tolist(), bool(y > 0), int(device.argmax()), device.cpu(), device.to("cpu", torch.float64)
        _ = device[device > 0]  # boolean-mask indexing: the output's shape is read on the host
        assert counter.total == 8
        counter.reset()
        g = torch.Generator().manual_seed(0)
        noise = torch.rand(4, generator=g, dtype=torch.float64)  # made on the host
        index = int((noise + torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)).argmax())
        step = torch.tensor(0.0, device="cpu")
        step += 1
        buffer = torch.empty(4)
        buffer.copy_(device.detach(), non_blocking=True)  # asynchronous: not a wait
        assert is_host(noise) and is_host(buffer) and not is_host(device * 2)
        float(step), float(buffer[index]), noise.tolist()
        moved = noise.to(device.device, non_blocking=True)  # host to device without waiting
        _ = device * torch.tensor(2.0) + torch.full((), 3.0, device=device.device)  # a 0-dim host scalar; a fill
        assert not is_host(moved) and moved is not noise  # on a GPU the copy is another tensor
        assert counter.total == 0
        buffer.copy_(device.detach())  # a blocking copy to the host
        assert counter.total == 1 and "test_host_syncs.py" in next(iter(counter.sites))
        noise.to(device.device), torch.tensor([1.0, 2.0], device=device.device)  # blocking copies to the device
        _ = device * noise  # a host vector meets a device tensor: an implicit copy (an error on a GPU)
        assert counter.total == 4


def test_torch_adam_keeps_its_step_counters_on_the_host():
    p = torch.nn.Parameter(torch.randn(3))
    opt = torch.optim.Adam([p], lr=0.1)
    with new_counter() as counter:
        for _ in range(3):
            p.grad = torch.ones_like(p)  # made from the parameter: on its device
            opt.step()
    assert counter.total == 0


# -- the pieces ------------------------------------------------------------------------------
def test_tensor_dual_step_is_the_float_one():
    for floor in (None, 0.8):
        for mu in (-1.0, -0.2, 0.0, 0.3, 2.0):
            for derived in (0.1, 0.79, 0.8, 0.9, 1.0, 1.01, 3.0):
                buffer = torch.tensor(mu, dtype=torch.float64)
                dual_step_(buffer, torch.tensor(derived, dtype=torch.float64), 1.0, floor, 0.5)
                assert float(buffer) == dual_step(mu, derived, 1.0, floor, 0.5), (floor, mu, derived)


def test_argmax_one_hot_is_the_exported_network_with_ties_broken_the_same_way():
    strategy = UBoost(**MODEL)
    net = strategy.mutate_model(CellSpace())
    choices, nodes = choice_groups(net)
    for seed in range(4):
        torch.manual_seed(seed)
        with torch.no_grad():
            for c in choices:
                c.alpha.copy_(torch.randn_like(c.alpha) if seed < 2 else torch.zeros_like(c.alpha))  # seeds 2, 3: all ties
        expected = one_hot(choices, argmax_indices(choices, nodes))
        got = argmax_one_hot(choices, nodes)
        assert set(got) == set(expected)
        assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_both_draws_of_a_step_read_the_alphas_it_started_with():
    """The behaviour change: the weight step's path is drawn from the alphas before that step's
    architecture update (noise fresh as before), not after it."""
    strategy = UBoost(**MODEL, sampling="single-path", seed=4)
    net = strategy.mutate_model(CellSpace())
    net.train()
    sampler: PathSampler = find_sampler(net)
    net(torch.zeros(2, 1, 8, 8))  # registers every alpha
    alphas = sampler.alphas
    start = HostMirror(alphas)
    sampler.use(start)
    with torch.no_grad():  # the architecture update between the two draws
        for a in alphas:
            a.add_(10 * torch.randn_like(a))
    state = sampler.generator.get_state()
    sampler.invalidate()
    drawn = [sampler.index(a) for a in alphas]
    replay = torch.Generator().manual_seed(0)
    replay.set_state(state)
    sizes = [a.numel() for a in alphas]
    u = torch.rand(sum(sizes), generator=replay, dtype=torch.float64)
    gumbel = (-torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-12)))).split(sizes)
    at_start = [int((start.values()[id(a)] + g).argmax()) for a, g in zip(alphas, gumbel)]
    live = [int((a.detach().double().reshape(-1) + g).argmax()) for a, g in zip(alphas, gumbel)]
    assert drawn == at_start and drawn != live  # the live alphas (moved by 10 sigma) would draw other paths
    sampler.use(None)  # without a mirror: the live alphas, as before
    sampler.generator.set_state(state)
    sampler.invalidate()
    assert [sampler.index(a) for a in alphas] == live


def test_prepared_commit_is_the_projection_of_the_same_alphas():
    model = create("systolic", rows=8, cols=8)
    strategy = UBoost(cost_model=model, target_latency_ms=window_with_one_expensive_op(model), budget_floor=0.9)
    net = strategy.mutate_model(TaskNeutralSpace())
    hook: HardwareLoss = strategy.hardware_loss
    hook.attach(net, torch.zeros(1, 1, 8, 8))
    alphas = [c.alpha for c in hook.choices]
    torch.manual_seed(1)
    with torch.no_grad():
        for a in alphas:
            a.copy_(torch.randn_like(a))
    hook.prepare_commit(HostMirror(alphas), step=7)
    with torch.no_grad():  # the live alphas move on (the weight step would not, but the worker must not care)
        for a in alphas:
            a.neg_()
    prepared = hook.commit_to_budget(7).indices
    moved = hook.commit_to_budget().indices  # solved now, on the moved alphas
    with torch.no_grad():
        for a in alphas:
            a.neg_()
    assert prepared == hook.commit_to_budget().indices != moved
    hook.prepare_commit(HostMirror(alphas), step=8)
    assert hook.commit_to_budget(9).indices == prepared  # prepared for another step: solved here instead


# -- the search step -------------------------------------------------------------------------
class Watch(pl.Callback):
    """Counts syncs per step; checks that the host copy taken in a step is the alphas the next
    step starts with, and that a prepared commit is what a solve at the step's start gives."""

    def __init__(self):
        from uboost.host_syncs import step_callback

        self.syncs = step_callback()
        self.mirrors_checked = self.commits_checked = 0

    def on_train_start(self, trainer, pl_module):
        self.syncs.on_train_start(trainer, pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.syncs.on_train_batch_start(trainer, pl_module, batch, batch_idx)
        self.syncs.counter.enabled = False  # the checks below read on the host on purpose
        mirror = pl_module._next_mirror
        if mirror is not None:
            live = {id(a): a.detach().double().reshape(-1) for a in pl_module.arch_parameters()}
            assert all(torch.equal(v, live[k]) for k, v in mirror.values().items())
            self.mirrors_checked += 1
        pending = pl_module.hardware_loss._commits
        if pending._future is not None and pending._step == pl_module._schedule_step(batch_idx):
            assert pending._future.result().indices == pl_module.hardware_loss._project_for_commit().indices
            self.commits_checked += 1
        self.syncs.counter.enabled = True

    def on_train_end(self, trainer, pl_module):
        self.syncs.on_train_end(trainer, pl_module)

    def on_exception(self, trainer, pl_module, exception):
        self.syncs.on_exception(trainer, pl_module, exception)


@pytest.mark.parametrize("sampling", ["single-path", "mixture"])
def test_a_steady_state_search_step_makes_no_host_sync(sampling, tmp_path):
    model = create("systolic", rows=8, cols=8)
    watch = Watch()
    torch.manual_seed(0)
    ev = evaluator(n=16 * 12, epochs=1, callbacks=[watch])
    strategy = UBoost(cost_model=model, sampling=sampling, data_split=None, log_prob_every_n_step=5,
                      target_latency_ms=window_with_one_expensive_op(model), budget_commit=0.5)
    run_experiment(TaskNeutralSpace(), ev, strategy, workdir=tmp_path)
    per_step = watch.syncs.totals()
    assert len(per_step) == 12
    logged = {i for i in range(12) if i % 5 == 0}  # export_probs logged (NNI's log_probs reads them on the host)
    steady = [n for i, n in enumerate(per_step[1:-1], start=1) if i not in logged]
    assert steady == [0] * len(steady), watch.syncs.steps
    assert per_step[-1] <= 1  # the end of the epoch: the one read of the non-finite-loss flag
    assert watch.commits_checked == 6  # steps 6..11 commit, each prepared by the step before
    assert watch.mirrors_checked == (11 if sampling == "single-path" else 0)
    assert strategy.hardware_loss.commit_indices is not None


def test_the_worker_prices_projections_on_the_host_exactly_as_on_the_device():
    strategy = UBoost(**MODEL)
    net = strategy.mutate_model(CellSpace())
    hook: HardwareLoss = strategy.hardware_loss
    hook.attach(net, torch.zeros(1, 1, 8, 8))
    projector = hook.projector()
    choices, nodes = hook.choices, hook.nodes
    for seed in range(5):
        torch.manual_seed(seed)
        with torch.no_grad():
            for c in choices:
                c.alpha.copy_(torch.randn_like(c.alpha))
        for indices in (argmax_indices(choices, nodes), projector.cheapest().indices, projector.unconstrained().indices):
            assert projector._price(indices, host=True) == projector._price(indices)


def test_derived_values_at_the_chosen_operating_point_are_the_host_pricing():
    from uboost.hardware import HardwareSpec
    from uboost.hardware.energy import PRESETS

    spec = HardwareSpec(rows=8, cols=8, sram_kb=16, energy=sorted(PRESETS)[0], operating_points="rk356x-gpu", clock_hz=2e8)
    hook = HardwareLoss(create("systolic", spec=spec), target_latency_ms=1.0, auto_point=True)
    strategy = UBoost(**MODEL)
    net = strategy.mutate_model(CellSpace())
    hook.attach(net, torch.zeros(1, 1, 8, 8))
    assert int(hook.point_index) >= 0
    for seed in range(3):
        torch.manual_seed(seed)
        with torch.no_grad():
            for c in hook.choices:
                c.alpha.copy_(torch.randn_like(c.alpha))
        for point in range(len(hook.point_projectors())):
            hook.point_index.fill_(point)
            latency, energy = hook.derived_values(hook.derived_cost())
            host = hook.point_projectors()[point].cost_of(hook.derived_indices())  # the host pricing it replaced
            assert float(latency) == pytest.approx(host[0], rel=1e-12) and float(energy) == pytest.approx(host[1], rel=1e-12)


def test_with_the_operating_point_chosen_with_the_network_a_step_makes_no_host_sync(tmp_path):
    from uboost.hardware import HardwareSpec
    from uboost.hardware.energy import PRESETS
    from uboost.host_syncs import step_callback

    spec = HardwareSpec(rows=8, cols=8, sram_kb=16, energy=sorted(PRESETS)[0], operating_points="rk356x-gpu", clock_hz=2e8)
    syncs = step_callback()
    torch.manual_seed(0)
    strategy = UBoost(cost_model=create("systolic", spec=spec), operating_point="auto", target_latency_ms=0.01,
                      budget_commit=0.5, data_split=None, log_prob_every_n_step=100)
    run_experiment(CellSpace(), evaluator(n=16 * 12, epochs=1, callbacks=[syncs]), strategy, workdir=tmp_path)
    assert syncs.totals()[1:-1] == [0] * 10 and syncs.totals()[-1] <= 1

import pytest
import torch
from nni.nas.evaluator.pytorch import Classification, DataLoader
from torch.utils.data import TensorDataset

from uboost.exceptions import ConfigError
from uboost.hardware import create
from uboost.strategy import HardwareLoss, UBoost, run_experiment

from tests.strategy.spaces import MixedSpace, TaskNeutralSpace


def evaluator(n=64, epochs=1, seed=0, **trainer_kwargs):
    g = torch.Generator().manual_seed(seed)
    data = TensorDataset(torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g))
    return Classification(
        train_dataloaders=DataLoader(data, batch_size=16),
        val_dataloaders=DataLoader(data, batch_size=16),
        num_classes=10,
        max_epochs=epochs,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
        **trainer_kwargs,
    )


def tiny_darts_cifar():
    from uboost.search_spaces import create as create_space

    return create_space("darts-cifar", width=4, cells=3, nodes=2, input_shape=(1, 8, 8))


DROP_IN_SPACES = {"users-space": MixedSpace, "darts-cifar": tiny_darts_cifar}


@pytest.mark.parametrize("sampling", ["mixture", "single-path"])
@pytest.mark.parametrize("space", sorted(DROP_IN_SPACES))
def test_drop_in_nas_experiment_on_a_users_space(tmp_path, space, sampling):
    torch.manual_seed(0)
    ev = evaluator()
    make = DROP_IN_SPACES[space]
    strategy = UBoost(cost_model="systolic", hardware=dict(rows=8, cols=8), latency_weight=1.0, sampling=sampling)
    arch = run_experiment(make(), ev, strategy, workdir=tmp_path)
    assert set(arch) == set(make().simplify())
    if space == "users-space":
        assert set(arch) == {"w", "k", "op", "depth"}
    frozen = make().freeze(arch)
    assert frozen(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    metrics = ev.trainer.callback_metrics
    for key in ("hw/latency_ms", "hw/utilization", "hw/cycles", "hw/loss", "hw/latency_ref_ms"):
        assert key in metrics and torch.isfinite(metrics[key]), key
    # single-path also prices the path it sampled, exactly
    assert ("hw/sampled_latency_ms" in metrics) == (sampling == "single-path")
    assert strategy.latency_ref_ms == pytest.approx(float(metrics["hw/latency_ref_ms"]))
    # per-step Gumbel annealing reached its end value within one epoch
    assert float(metrics["gumbel_tau"]) == pytest.approx(0.1, abs=1e-6)


def test_hook_gives_alphas_a_gradient_the_task_does_not():
    model = create("systolic", rows=8, cols=8)
    supernet = UBoost(cost_model=model).mutate_model(TaskNeutralSpace())
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,))
    alphas = [m._arch_alpha for m in supernet.modules() if hasattr(m, "_arch_alpha") and isinstance(m._arch_alpha, torch.nn.Parameter)]
    assert len(alphas) == 6

    def alpha_grads(latency_weight):
        hook = HardwareLoss(model, latency_weight=latency_weight, utilization_weight=0.0)
        hook.attach(supernet, x)
        for a in alphas:
            a.grad = None
        task = torch.nn.functional.cross_entropy(supernet(x), y)
        (task + hook().loss).backward()
        return torch.stack([a.grad for a in alphas])

    without = alpha_grads(0.0)
    assert without.abs().max() < 1e-6  # the ops are indistinguishable to the task
    with_hw = alpha_grads(1.0)
    assert with_hw.abs().min() > 1e-4
    assert (with_hw[:, 0] > 0).all() and (with_hw[:, 1] < 0).all()  # descent moves towards the cheap op


def test_large_latency_weight_exports_a_cheaper_network(tmp_path):
    model = create("systolic", rows=8, cols=8)
    costs = {}
    for weight in (0.0, 50.0):
        torch.manual_seed(3)
        strategy = UBoost(cost_model=model, latency_weight=weight, utilization_weight=0.0, arch_lr=0.05)
        arch = run_experiment(TaskNeutralSpace(), evaluator(epochs=2), strategy, workdir=tmp_path / str(weight))
        costs[weight] = model.evaluate(TaskNeutralSpace().freeze(arch), (1, 8, 8)).cycles
        if weight:
            assert all(v == 1 for v in arch.values()), arch  # every choice is the cheap 1x1
    assert costs[50.0] < costs[0.0]


def test_data_split_is_disjoint_and_seeded():
    data = TensorDataset(torch.arange(100).float().view(100, 1), torch.zeros(100, dtype=torch.long))
    loader = torch.utils.data.DataLoader(data, batch_size=10)
    strategy = UBoost(data_split=0.8, seed=5)
    loaders = strategy.train_dataloader(lambda: loader, lambda: loader)
    train = {int(v) for xb, _ in loaders["train"] for v in xb.view(-1)}
    arch = {int(v) for xb, _ in loaders["val"] for v in xb.view(-1)}
    assert len(train) == 80 and len(arch) == 20 and not train & arch
    again = UBoost(data_split=0.8, seed=5).train_dataloader(lambda: loader, lambda: loader)
    assert {int(v) for xb, _ in again["val"] for v in xb.view(-1)} == arch


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(latency_weight=-1.0), "latency_weight"),
        (dict(cost_mode="fast"), "unknown cost mode"),
        (dict(data_split=1.5), "data_split"),
        (dict(target_latency_ms=0.0), "target_latency_ms"),
        (dict(gumbel_temperature=(0.1, 1.0)), "gumbel_temperature"),
        (dict(cost_model="nope"), "unknown cost model"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        UBoost(**kwargs)


def test_plain_budget_multiplier_rises_over_budget_and_falls_to_zero_under_it():
    model = create("systolic", rows=8, cols=8)
    supernet = UBoost(cost_model=model).mutate_model(MixedSpace())
    x = torch.zeros(1, 1, 8, 8)
    hook = HardwareLoss(model, utilization_weight=0.0, target_latency_ms=1.0, budget_lr=0.5, budget_floor=0.0)
    hook.attach(supernet, x)
    assert float(hook().loss) == 0.0  # multiplier starts at 0: no pressure before a violation
    assert hook.update_multiplier(3.0) == pytest.approx(1.0)  # 0 + 0.5 * (3 / 1 - 1)
    assert float(hook().loss) == pytest.approx(float(hook().cost.latency_ms) / 1.0)  # mu * E[latency] / target
    assert hook.update_multiplier(0.5) == pytest.approx(0.75)
    assert hook.update_multiplier(0.0) == pytest.approx(0.25)
    assert hook.update_multiplier(0.0) == 0.0  # never negative
    assert "multiplier" in hook.state_dict()  # checkpointed with the search


@pytest.mark.parametrize("kwargs, fragment", [
    ({"log_prob_every_n_step": 0}, "log_prob_every_n_step"),  # was a ZeroDivisionError mid-fit
    ({"sharpen": "no"}, "sharpen must be True or False"),  # bool("no") is True
    ({"bogus_kw": 1}, "unknown keyword argument 'bogus_kw'"),  # NNI's raw TypeError
    # QA: "no" was read as True; a clip of -1 flipped the gradients, of nan blamed the learning rate, of "x" was a
    # Lightning TypeError mid-fit; a data split of "0.5" a raw TypeError
    ({"utilization_on_bits": "no"}, "utilization_on_bits must be True, False or None"),
    ({"gradient_clip_val": -1.0}, "gradient_clip_val must be a positive finite number"),
    ({"gradient_clip_val": float("nan")}, "gradient_clip_val must be a positive finite number"),
    ({"gradient_clip_val": "x"}, "gradient_clip_val must be a positive finite number"),
    ({"data_split": "0.5"}, "data_split must be between 0 and 1"),
])
def test_bad_strategy_arguments_are_one_config_error(kwargs, fragment):
    from uboost.exceptions import ConfigError

    with pytest.raises(ConfigError, match=fragment):
        UBoost(**kwargs)


@pytest.mark.parametrize("name, kwargs, fragment", [
    ("lenet", {"widths": ()}, "non-empty list"),  # NNI's AssertionError
    ("lenet", {"widths": (0, 4)}, "positive whole numbers"),  # accepted
    ("lenet", {"num_classes": 0}, "num_classes"),  # accepted
    ("lenet", {"bogus": 1}, "no option 'bogus' (its options: widths, kernels, hidden)"),  # a bare TypeError
    ("darts-cifar", {"bogus": 1}, "no option 'bogus' (its options: width, cells"),
])
def test_bad_space_options_are_one_config_error(name, kwargs, fragment):
    from uboost.exceptions import ConfigError
    from uboost.search_spaces import create as create_space

    with pytest.raises(ConfigError) as error:
        create_space(name, **kwargs)
    assert fragment in str(error.value)


def test_a_train_loader_data_split_cannot_keep_is_refused_in_one_line():
    """A batch_sampler loader was rebuilt with batch_size=None (a collate TypeError mid-fit); a user's sampler was
    replaced without a word."""
    from torch.utils.data import BatchSampler, DataLoader, SequentialSampler, TensorDataset, WeightedRandomSampler

    from uboost.exceptions import ConfigError

    data = TensorDataset(torch.zeros(8, 1, 8, 8), torch.zeros(8, dtype=torch.long))
    strategy = UBoost()
    for loader in (DataLoader(data, batch_sampler=BatchSampler(SequentialSampler(data), 4, False)),
                   DataLoader(data, batch_size=4, sampler=WeightedRandomSampler([1.0] * 8, 8))):
        with pytest.raises(ConfigError, match="data_split=None"):
            strategy.train_dataloader(lambda loader=loader: loader, lambda: None)
    split = strategy.train_dataloader(lambda: DataLoader(data, batch_size=4, shuffle=True), lambda: None)
    assert {k: v.batch_size for k, v in split.items()} == {"train": 4, "val": 4}

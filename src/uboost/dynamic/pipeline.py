"""``uboost exits``: from a retrained run to a Pareto set of exit policies, as library calls.

:func:`prepare` checks everything (the run, its retrained model, the positions, the energy and
operating-point tables, the output) before any work or file. :func:`calibrate` trains the heads
on the training data minus a validation split and searches the policies on that split: it never
receives the test set. :func:`run_exits` then scores the Pareto points on the test set and writes
the output directory.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uboost import runs
from uboost.dynamic.search import DEFAULT_GRID, METHODS, check_grid
from uboost.dynamic.training import MODES
from uboost.exceptions import ConfigError, RunDirError

logger = logging.getLogger(__name__)
EXITS = "exits"
OUTPUTS = ("heads.pt", "exits.json", "pareto.png", "dynamic.onnx", "study.journal")
POINTS = "points"
DEFAULT_POINTS = "rk3576-npu"  # the DVFS table searched when neither the options nor the run give one


@dataclass(frozen=True, kw_only=True)
class ExitsConfig:
    positions: tuple[str, ...] | None = None  # module names or indices; None: after each cell/stage
    head_width: int = 0  # pool + linear: a 3x3 conv head costs about as much as the backbone before it here (RESULTS.md)
    head_pool: int = 2  # grid side a head pools to; 2x2 (SDN-like) beats global pooling by far on narrow maps (RESULTS.md)
    training: str = "distill"
    epochs: int = 30
    learning_rate: float = 0.01
    validation: float = 0.2
    grid: tuple[float, ...] = DEFAULT_GRID
    energy: str | None = None  # None: the run's own energy table
    operating_points: str | None = None  # None: the run's own DVFS table, else DEFAULT_POINTS
    max_worst_latency_ms: float | None = None
    method: str = "auto"
    trials: int = 200
    batch_size: int = 64
    max_samples: int | None = None  # at most this many training images (heads and validation)
    seed: int = 0

    def settings(self) -> dict:
        """The fields as ``exits.json`` keeps them (tuples as lists), what a later call compares with."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}

    def __post_init__(self) -> None:
        if self.training not in MODES:
            raise ConfigError(f"unknown exit training {self.training!r}; expected one of: {', '.join(MODES)}")
        if self.method not in METHODS:
            raise ConfigError(f"unknown search method {self.method!r}; expected one of: {', '.join(METHODS)}")
        for name in ("head_width", "head_pool", "epochs", "trials", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "head_width" else 1):
                kind = "a whole number >= 0 (0: no convolution)" if name == "head_width" else "a positive integer"
                raise ConfigError(f"{name.replace('_', ' ')} must be {kind}, got {value!r}")
        if self.max_samples is not None and (not isinstance(self.max_samples, int) or self.max_samples < 2):
            raise ConfigError(f"max samples must be an integer >= 2, got {self.max_samples!r}")
        if not (isinstance(self.learning_rate, (int, float)) and math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ConfigError(f"learning rate must be positive, got {self.learning_rate!r}")
        if not (isinstance(self.validation, (int, float)) and 0 < self.validation < 1):
            raise ConfigError(f"validation fraction must be in (0, 1), got {self.validation!r}")
        object.__setattr__(self, "grid", check_grid(self.grid))
        if self.max_worst_latency_ms is not None and not (
                isinstance(self.max_worst_latency_ms, (int, float)) and math.isfinite(self.max_worst_latency_ms)
                and self.max_worst_latency_ms > 0):
            raise ConfigError(f"the worst-case latency bound must be a positive number of ms, got {self.max_worst_latency_ms!r}")


@dataclass
class Prepared:
    """A run checked and loaded: its frozen, retrained network, positions and hardware."""

    root: Path
    out: Path
    owner_root: Path
    owner: str
    search_config: Any
    retrain_settings: dict
    module: Any
    input_shape: tuple[int, ...]
    positions: list  # uboost.dynamic.segments.Position
    spec: Any
    points: Any  # OperatingPoints
    config: ExitsConfig = field(default_factory=ExitsConfig)


def model_path(run: Path) -> Path:
    return Path(run) / runs.RETRAIN / "model.pt"


def prepare(run: str | os.PathLike, config: ExitsConfig, *, out: str | os.PathLike | None = None, reading: bool = False) -> Prepared:
    """Everything checked, nothing written (see the module docstring). ``reading``: for loading earlier exits
    (:func:`~uboost.dynamic.pipeline_io.load_dynamic`), not for writing ``out``: its folder is not checked."""
    from dataclasses import replace

    from uboost.dynamic.segments import candidate_positions, resolve_positions
    from uboost.hardware.energy import resolve_energy
    from uboost.hardware.operating import load_operating_points
    from uboost.networks import load_frozen_network

    root = Path(run)
    if not root.is_dir():
        raise RunDirError(f"expected a retrained run directory, got {root}")
    weights = model_path(root)
    if not weights.is_file():
        raise RunDirError(f"{root} has no retrained model ({weights}): {_retrain_hint(root)}")
    table = None if config.energy is None else resolve_energy(config.energy)  # a bad option refused before any loading
    points = None if config.operating_points is None else load_operating_points(config.operating_points)
    loaded = load_frozen_network(root)
    state = runs.safe_load(weights, "retrained model")
    differ = runs.tensors_differ(loaded.module.state_dict(), state if isinstance(state, dict) else {})
    if differ:
        raise RunDirError(f"{weights} does not fit the run's architecture ({len(differ)} tensors differ, e.g. {differ[0][0]})")
    loaded.module.load_state_dict(state)
    loaded.module.eval()
    candidates = candidate_positions(loaded.module, loaded.input_shape)
    positions = resolve_positions(config.positions, candidates)
    out = Path(out) if out is not None else root / EXITS
    if out.exists() and not out.is_dir():
        raise RunDirError(f"output {out} exists and is not a directory")
    held = runs.run_files_held(out)
    if held:  # its own model.onnx would be taken for an export of earlier exits, and the run's files mixed with ours
        raise RunDirError(f"--out {out} is a run directory (it holds {held[0]}); the exits need their own folder, "
                          f"e.g. the default {root / EXITS}")
    if not reading and out.is_dir() and not runs.holds_only_bookkeeping(out) and not any((out / n).exists() for n in OUTPUTS):
        # another command's folder (a frontier, an export, the run's checkpoints) or the user's: exits beside its
        # files would be read as its own (switch over a frontier) or cleared with them (exits --force)
        raise RunDirError(f"--out {out} already holds files that are not exits; the exits need an empty folder or an "
                          f"earlier exits folder, e.g. the default {root / EXITS}")
    owner_root = runs.owner_root(out, root)
    rel = out.resolve().relative_to(owner_root.resolve()).as_posix()
    owner = EXITS if rel == "." else f"{EXITS}:{rel}"
    # a user's own policy named like ours (p00.json) would be replaced by the new front's
    points_now = [] if reading or not (out / POINTS).is_dir() else sorted((out / POINTS).glob("p[0-9][0-9].json"))
    runs.refuse_foreign(owner_root, [out.resolve() / n for n in OUTPUTS] + [p.resolve() for p in points_now], owner)
    settings = runs.read_json(root / runs.RETRAIN / "retrain.json", "retrain result").get("config", {})
    settings = settings if isinstance(settings, dict) else {}
    # the images the heads train on are the retrain's, at most: as used, and stored (a larger --max-samples is the
    # same heads as the default)
    config = replace(config, max_samples=_capped(config.max_samples, settings.get("max_samples")))
    own = loaded.search_config.hardware_spec()  # unset options: the run's own tables (they were always the presets)
    points = points or own.operating_points or load_operating_points(DEFAULT_POINTS)
    spec = replace(own, energy=table or own.energy, operating_points=points, clock_hz=points.points[-1].freq_hz)
    return Prepared(root, out, owner_root, owner, loaded.search_config, settings,
                    loaded.module, tuple(loaded.input_shape), positions, spec, points, config)


def load_data(prepared: Prepared):
    """``(train, validation, test)`` datasets: the retrain's split and seed, no augmentation; the
    validation split is carved from the training data the retrain used."""
    import torch

    from uboost.data import load_datasets
    from uboost.dynamic.training import split_validation

    c, s = prepared.search_config, prepared.retrain_settings
    train, test = load_datasets(s.get("dataset") or c.dataset, data_dir=s.get("data_dir") or c.data_dir, augment=False,
                                image_size=c.image_size, channels=prepared.input_shape[0], seed=c.seed)  # the retrain's split
    limit = min(x for x in (s.get("max_samples"), prepared.config.max_samples, len(train)) if x is not None)
    if limit < len(train):
        train = torch.utils.data.Subset(train, range(limit))
    fit, val = split_validation(train, prepared.config.validation, seed=prepared.config.seed)
    return fit, val, test


def build_network(prepared: Prepared):
    from uboost.dynamic.heads import build_heads
    from uboost.dynamic.model import DynamicNetwork
    from uboost.dynamic.segments import SegmentedBackbone

    import torch

    torch.manual_seed(prepared.config.seed)
    names = [p.name for p in prepared.positions]
    heads = build_heads([p.feature_shape for p in prepared.positions], _num_classes(prepared), width=prepared.config.head_width,
                        pool=prepared.config.head_pool)
    return DynamicNetwork(SegmentedBackbone(prepared.module, names), heads)


def _num_classes(prepared: Prepared) -> int:
    import torch

    with torch.no_grad():
        return int(prepared.module(torch.zeros(1, *prepared.input_shape)).shape[-1])


def scores(network, dataset, batch_size: int):
    """``(confidence (N, K), correct (N, K + 1))`` of every exit on ``dataset`` (numpy)."""
    import numpy as np
    from torch.utils.data import DataLoader

    from uboost.dynamic.policy import softmax_confidence
    from uboost.dynamic.training import collect

    logits, labels = collect(network, DataLoader(dataset, batch_size=batch_size))
    conf, pred = zip(*(softmax_confidence(l.numpy()) for l in logits))
    return np.stack(conf[:-1], 1), np.stack(pred, 1) == labels.numpy()[:, None]


@dataclass
class Calibrated:
    network: Any
    costs: Any  # ExitCosts
    candidates: list[dict]
    front: list[dict]
    losses: list[float]


def calibrate(prepared: Prepared, fit, validation, *, study_dir: Path | None = None) -> Calibrated:
    """Train the heads on ``fit``, price the exits and search the policies on ``validation``."""
    from torch.utils.data import DataLoader

    from uboost.dynamic.pricing import price_exits
    from uboost.dynamic.search import pareto, search_policies
    from uboost.dynamic.training import train_heads

    import torch

    c = prepared.config
    network = build_network(prepared)
    loader = DataLoader(fit, batch_size=c.batch_size, shuffle=True, generator=torch.Generator().manual_seed(c.seed))
    losses = train_heads(network, loader, mode=c.training, epochs=c.epochs, learning_rate=c.learning_rate, seed=c.seed)
    costs = price_exits(network.backbone.graph_module, network.heads, prepared.input_shape, network.backbone.positions,
                        [p.feature_shape for p in prepared.positions], cost_model=prepared.search_config.cost_model,
                        spec=prepared.spec, points=prepared.points)
    confidence, correct = scores(network, validation, c.batch_size)
    found = search_policies(confidence, correct, costs, grid=c.grid, max_worst_latency_ms=c.max_worst_latency_ms,
                            method=c.method, trials=c.trials, out=study_dir, seed=c.seed)
    if not found:
        raise ConfigError(f"no policy meets the worst-case latency bound {c.max_worst_latency_ms:g} ms")
    return Calibrated(network, costs, found, pareto(found), losses)


def measure(network, dataset, thresholds, batch_size: int) -> tuple[float, list[float]]:
    """Test accuracy and the exit shares *measured* by running the dynamic network itself."""
    import torch
    from torch.utils.data import DataLoader

    network.set_thresholds(thresholds)
    network.eval()
    right, counts, total = 0, torch.zeros(network.exits + 1), 0
    with torch.no_grad():
        for x, y in DataLoader(dataset, batch_size=batch_size):
            logits, taken = network.forward_with_exits(x)
            right += int((logits.argmax(1) == y).sum())
            counts += torch.bincount(taken, minlength=network.exits + 1)
            total += len(y)
    return right / max(1, total), (counts / max(1, total)).tolist()


def score_on_test(calibrated: Calibrated, test, batch_size: int) -> None:
    """Add ``test_*`` metrics to every Pareto point: accuracy and exit shares measured with the
    dynamic network on the test set, and the expected costs at those shares."""
    for point in calibrated.front:
        accuracy, shares = measure(calibrated.network, test, point["thresholds"], batch_size)
        kept = [t is not None for t in point["thresholds"]]
        latency, energy = calibrated.costs.expected(shares, kept, point["point"])
        point.update(test_accuracy=accuracy, test_shares=shares, test_expected_latency_ms=latency, test_expected_energy_uj=energy)
    calibrated.network.set_thresholds([None] * calibrated.network.exits)


def check_bound(prepared: Prepared) -> None:
    """Refuse, before any training or file, a worst-case latency bound that even the network without exits misses."""
    from uboost.dynamic.pricing import price_exits

    bound = prepared.config.max_worst_latency_ms
    if bound is None:
        return
    network = build_network(prepared)
    costs = price_exits(network.backbone.graph_module, network.heads, prepared.input_shape, network.backbone.positions,
                        [p.feature_shape for p in prepared.positions], cost_model=prepared.search_config.cost_model,
                        spec=prepared.spec, points=prepared.points)
    fastest = min(costs.worst([False] * costs.exits, p)[0] for p in range(len(costs.freq_hz)))
    if fastest > bound * (1 + 1e-12):
        raise ConfigError(f"--max-worst-latency-ms {bound:g}: the network without exits already needs {fastest:.6g} ms "
                          "at the fastest operating point")


def static_rows(calibrated: Calibrated, confidence, correct) -> list[dict]:
    """The network without exits at every operating point (the reference a policy is compared with)."""
    from uboost.dynamic.search import evaluate

    none = [None] * calibrated.costs.exits
    return [evaluate(none, p, confidence, correct, calibrated.costs) for p in range(len(calibrated.costs.freq_hz))]


def run_exits(run: str | os.PathLike, config: ExitsConfig, *, out: str | os.PathLike | None = None, onnx: bool = False,
              prepared: Prepared | None = None, force: bool = False) -> dict:
    """Prepare, calibrate on validation data, score the Pareto points on the test set and write
    ``OUT/heads.pt``, ``OUT/exits.json``, ``OUT/points/pNN.json`` (one :class:`ExitPolicy` each),
    ``OUT/pareto.png`` (when matplotlib is there) and, with ``onnx``, ``OUT/dynamic.onnx``. Exits
    trained in ``OUT`` with other settings are replaced only with ``force`` (:func:`refuse_other_heads`)."""
    prepared = prepared or prepare(run, config, out=out)
    out = prepared.out
    check_bound(prepared)  # every check before anything in OUT changes: a refused call leaves it as it was
    if onnx:
        from uboost.dynamic.export import refuse_quantized

        refuse_quantized(prepared.root)
    refuse_other_heads(prepared, config, force=force)
    with runs.run_lock(prepared.owner_root):
        fit, validation, test = load_data(prepared)
        runs.record(prepared.owner_root, dirs=[d for d in (out.resolve(), (out / POINTS).resolve())
                                               if d != prepared.owner_root.resolve() and not d.exists()])
        runs.record(prepared.owner_root, out.resolve() / "study.journal", owner=prepared.owner)
        out.mkdir(parents=True, exist_ok=True)
        if force:  # the heads are replaced: an optuna study of the old ones (other exits or thresholds) starts afresh
            journal = out / "study.journal"
            if journal.is_file() and runs.may_overwrite(prepared.owner_root, journal):
                journal.unlink()
        calibrated = calibrate(prepared, fit, validation, study_dir=out)
        score_on_test(calibrated, test, config.batch_size)
        from uboost.dynamic.pipeline_io import write_outputs

        return write_outputs(prepared, calibrated, scores(calibrated.network, test, config.batch_size), onnx=onnx)


SEARCH_ONLY = ("trials", "method", "max_worst_latency_ms")
"""Settings a call may change over earlier exits in the same folder: they search the same heads again."""


def _capped(value, cap):
    """The training images a ``max_samples`` means: the retrain's (``cap``) at most; None where neither sets one."""
    values = [v for v in (value, cap) if isinstance(v, int)]
    return min(values) if values else None


def refuse_other_heads(prepared: Prepared, config: ExitsConfig, *, force: bool = False) -> None:
    """Heads trained with other settings are not replaced without ``force`` (the same settings continue
    an optuna study, or repeat the same heads); with it, :func:`run_exits` removes an optuna study of the
    old heads too, once every check has passed and it holds the run lock. Removes nothing itself."""
    import json

    out = prepared.out
    if force:
        return
    try:
        summary = json.loads((out / "exits.json").read_text())
        stored = summary.get("settings")
    except (OSError, ValueError, AttributeError):
        return  # none there (or unreadable: the pipeline's own checks say so)
    if not isinstance(stored, dict):
        return
    now = {**config.settings(), "max_samples": prepared.config.max_samples}  # capped at the retrain's, as trained
    stored = {**stored, "max_samples": _capped(stored.get("max_samples"), prepared.retrain_settings.get("max_samples"))}
    # the exits the positions resolve to, not how they were typed (pool,gap / gap,pool / 2,5 / the default: one set)
    had = [p.get("name") for p in summary.get("positions") or [] if isinstance(p, dict)]
    stored, now = {**stored, "positions": had or stored.get("positions")}, {**now, "positions": [p.name for p in prepared.positions]}
    differ = [k for k in now if k not in SEARCH_ONLY and k in stored and stored[k] != now[k]]
    if differ:
        k = differ[0]
        raise ConfigError(f"{out} holds exits trained with other settings ({k.replace('_', ' ')}: {stored[k]!r} -> {now[k]!r}"
                          f"{f' and {len(differ) - 1} more' if len(differ) > 1 else ''}); pass --force to replace them, "
                          "or --out another folder")


def list_positions(run: str | os.PathLike) -> list[tuple[Any, bool]]:
    """``(position, is a default)`` for every possible exit position of a run's network."""
    from uboost.dynamic.segments import candidate_positions, default_positions
    from uboost.networks import load_frozen_network

    loaded = load_frozen_network(run)
    candidates = candidate_positions(loaded.module, loaded.input_shape)
    defaults = set(default_positions(candidates))
    return [(p, p.name in defaults) for p in candidates]


def _retrain_hint(root: Path) -> str:
    """What to run when ``root`` has no retrained model, by what ``root`` is."""
    source = runs.retrain_source(root)  # a retrain's output: RUN/retrain, or one written with retrain --out
    if source is not None and source.resolve() != root.resolve():
        inside = root.resolve() == (source / runs.RETRAIN).resolve()
        if inside:
            return f"give the search run, `uboost exits {source}` (its retrain is {root})"
        own = "`uboost exits " + str(source) + "`" if model_path(source).is_file() else \
            f"`uboost retrain {source}`, then `uboost exits {source}`"
        return f"{root} is a retrain of {source} written elsewhere (retrain --out); exits train on the run's own retrain: {own}"
    if (root / "retrain.json").is_file() or (root.name == runs.RETRAIN and (root.parent / runs.CONFIG).is_file()):
        return f"give the search run, `uboost exits {root.parent}` (its retrain is {root})"
    if (root / "exits.json").is_file():
        return "this is an exits folder: give the retrained search run it came from"
    if not (root / runs.ARCH).is_file():
        return runs.unfinished_hint(root) if (root / runs.CONFIG).is_file() else "not a uboost search run"
    from uboost._lock import in_use

    holder = in_use(root)  # a retrain locks its run
    if holder is not None:
        return f"it is in use by {holder} (a retrain running?); wait for it to finish"
    return f"run `uboost retrain {root}` first"

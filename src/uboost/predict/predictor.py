"""Build, save and load a run's accuracy predictor (``predictor.json``), and use it.

:func:`build_predictor` measures ``samples`` sub-networks of a finished search with inherited
weights (:mod:`uboost.predict.supernet`), fits the block-additive table
(:mod:`uboost.predict.table`) with the search's argmax as the base network, and writes the
table to ``RUN/predictor.json`` (atomically, listed in the run's manifest, so ``search --force``
removes it). :func:`load_predictor` reads it back in milliseconds; a table built from other
alphas than the run's current ones is refused (rebuild it).

A :class:`Predictor` predicts the accuracy of any architecture of the space (NNI's dict, as in
``arch.json``) and hands the projection its objective: one coefficient per (choice, value),
the table's deltas -- the additive model is linear in the choices, so the exact MILP of
:mod:`uboost.strategy.projection` maximizes it under the budgets.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from uboost import runs
from uboost.exceptions import ConfigError, RunDirError
from uboost.predict.table import AdditiveTable, fit_additive

logger = logging.getLogger(__name__)

PREDICTOR = "predictor.json"
OWNER = "predict"  # the manifest owner of predictor.json
FORMAT = 1  # predictor.json's layout; a file without the field is an older format 1 (the same layout)
MODEL = "block-additive"  # the one kind of table there is (every predictor.json names it)
DEFAULT_FINE_TUNE_EPOCHS = 1  # uniform-path epochs before measuring (RESULTS.md: 0 ranked retrained lenet networks at tau -0.08, 1 at 0.37)
DEFAULT_SAMPLES = 120  # sub-networks measured by default (RESULTS.md: held-out error against K on lenet and darts-cifar)


@dataclass(frozen=True)
class Prediction:
    accuracy: float  # the table's sum, clipped to [0, 1]
    uncertainty: float  # the table's leave-one-out RMSE
    unseen: tuple[str, ...]  # labels whose value no measured network had (their term is 0: less certain)
    raw: float  # the table's sum as it is (a maximized additive table can extrapolate past 1)


def alphas_digest(root: Path) -> str:
    """What the table was built from: the run's final alphas (a resumed or new search changes them)."""
    try:
        return hashlib.sha256((Path(root) / runs.ALPHAS).read_bytes()).hexdigest()[:16]
    except OSError as exc:
        raise RunDirError(f"cannot read {Path(root) / runs.ALPHAS}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class Predictor:
    table: AdditiveTable
    meta: dict  # how it was built: seed, samples, seconds, alphas digest, measured accuracies

    def check_space(self, choices: list) -> None:
        labels = {c.label: [str(v) for v in c.values] for c in choices}
        if labels != self.table.values:
            raise RunDirError(f"{PREDICTOR} does not describe this run's space; rebuild it with uboost predict --rebuild")

    def predict(self, network: dict[str, int]) -> Prediction:
        """The network that takes entry ``network[label]`` (an index) of every label."""
        raw = self.table.predict(network)
        return Prediction(min(1.0, max(0.0, raw)), self.table.loo_rmse, tuple(self.table.unseen(network)), raw)

    def predict_arch(self, arch: dict) -> Prediction:
        """The network of an architecture dict (label -> value: a search's ``arch.json``, ``run_experiment``'s result)."""
        return self.predict(self.table.indices_of(arch))

    def objective(self, choices: list, nodes: list) -> dict:
        """The projection's objective: ``id(alpha) -> coefficient per entry`` (the table's deltas)."""
        import torch

        self.check_space(choices)
        return {id(c.alpha): torch.tensor(self.table.delta[c.label], dtype=torch.float64) for c in choices}

    def to_dict(self) -> dict:
        return {"format": FORMAT, "model": MODEL, **self.meta, "table": self.table.to_dict()}


def _value_names(choices: list) -> dict[str, list[str]]:
    return {c.label: [str(v) for v in c.values] for c in choices}


def build_predictor(run: str | os.PathLike, *, samples: int = DEFAULT_SAMPLES, seed: int = 0,
                    recalibration_images: int = 256, fine_tune_epochs: int = DEFAULT_FINE_TUNE_EPOCHS,
                    save: bool = True, progress=None) -> Predictor:
    """Measure ``samples`` sub-networks of the run's trained supernet and fit the table.

    ``fine_tune_epochs`` first trains the supernet's weights that many epochs with uniformly drawn
    sub-networks (the search trained mostly the paths it preferred; nothing is written back).
    ``progress(done, total)`` is called after each measured network. With ``save`` the table is
    written to ``RUN/predictor.json`` (everything is checked and measured first)."""
    from uboost.predict.sampling import sample_networks
    from uboost.predict.supernet import check_search_run, load_trained_supernet
    from uboost.strategy.architecture import argmax_indices

    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
        raise ConfigError(f"samples must be an integer >= 2 (sub-networks to measure), got {samples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(fine_tune_epochs, bool) or not isinstance(fine_tune_epochs, int) or fine_tune_epochs < 0:
        raise ConfigError(f"fine_tune_epochs must be a non-negative integer, got {fine_tune_epochs!r}")
    if isinstance(recalibration_images, bool) or not isinstance(recalibration_images, int) or recalibration_images < 1:
        raise ConfigError(f"recalibration_images must be an integer >= 1 (images the batch norms are recalibrated "
                          f"on), got {recalibration_images!r}")
    root = Path(run)
    check_search_run(root)
    if save:
        runs.refuse_foreign(root, [(root / PREDICTOR).resolve()], owner=OWNER)
    started = time.perf_counter()
    digest = alphas_digest(root)  # of the search measured: checked again before the table is saved
    net = load_trained_supernet(root, recalibration_images=recalibration_images, seed=seed)
    net.fine_tune_uniform(fine_tune_epochs, seed=seed)
    by_id = argmax_indices(net.choices, net.nodes)
    center = {c.label: by_id[id(c.alpha)] for c in net.choices}
    networks = sample_networks(net.choices, net.nodes, center, samples, seed)
    accuracies = []
    for i, network in enumerate(networks):
        accuracies.append(net.accuracy(network))
        if progress is not None:
            progress(i + 1, len(networks))
    table = fit_additive(_value_names(net.choices), center, networks, accuracies)
    seconds = time.perf_counter() - started
    logger.info("predictor of %s: %d sub-networks in %.1f s, leave-one-out RMSE %.4f", root, len(networks), seconds,
                table.loo_rmse)
    predictor = Predictor(table, {
        "seed": seed, "samples": len(networks), "samples_asked": samples, "fine_tune_epochs": fine_tune_epochs, "recalibration_images": int(net.recal_x.shape[0]),
        "validation_images": int(net.val_x.shape[0]), "seconds": seconds, "alphas": digest,
        "measured": [{"network": n, "accuracy": a} for n, a in zip(networks, accuracies)],
    })
    if save:
        save_predictor(root, predictor)
    return predictor


def save_predictor(root: Path, predictor: Predictor) -> Path:
    from uboost.io import write_json

    path = Path(root) / PREDICTOR
    runs.refuse_foreign(root, [path.resolve()], owner=OWNER)
    with runs.run_lock(root):
        if alphas_digest(root) != predictor.meta.get("alphas"):  # a search --force replaced the run while it measured
            from uboost.exceptions import RunDirError

            raise RunDirError(f"the search in {root} changed while its sub-networks were measured: the table would describe "
                              f"the replaced one; run uboost predict {root} again")
        runs.record(root, PREDICTOR, owner=OWNER)  # listed before written: search --force removes it
        write_json(path, predictor.to_dict())
    return path


def load_predictor(run: str | os.PathLike) -> Predictor | None:
    """The run's saved predictor; ``None`` when there is none. A corrupt table, or one built from
    other alphas than the run's, is one :class:`RunDirError` line."""
    root = Path(run)
    path = root / PREDICTOR
    if not path.is_file():
        return None
    data = runs.read_json(path, "predictor table")
    if not isinstance(data, dict) or not isinstance(data.get("table"), dict):
        raise RunDirError(f"{path} is corrupt (no table); delete it or rebuild it with uboost predict --rebuild")
    if data.get("format", FORMAT) != FORMAT or isinstance(data.get("format"), bool):
        raise RunDirError(f"{path} has format {data['format']!r}; this uboost reads format {FORMAT}: rebuild it with "
                          "uboost predict --rebuild")
    if data.get("model") != MODEL:
        raise RunDirError(f"{path} holds a {data.get('model')!r} model, not a {MODEL!r} table; rebuild it with "
                          "uboost predict --rebuild")
    table = AdditiveTable.from_dict(data["table"], str(path))
    meta = {k: v for k, v in data.items() if k not in ("table", "model", "format")}
    if meta.get("alphas") != alphas_digest(root):
        raise RunDirError(f"{path} was built from other alphas than {root / runs.ALPHAS} (the search ran again); "
                          "rebuild it with uboost predict --rebuild")
    return Predictor(table, meta)


def load_or_build(run: str | os.PathLike, *, rebuild: bool = False, **build) -> Predictor:
    """The saved predictor, or a new one (built and saved) when there is none or ``rebuild``."""
    predictor = None if rebuild else load_predictor(run)
    return predictor if predictor is not None else build_predictor(run, **build)

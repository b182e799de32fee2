"""The local search's trials: price a neighbor, retrain it, add it to the study (:mod:`~uboost.tuning.local_search`)."""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uboost.exceptions import ConfigError, UBoostError
from uboost.tuning import inner_accelerator as inner_choice
from uboost.tuning import local_bits
from uboost.tuning import local_search as ls
from uboost.tuning import objectives as objs
from uboost.tuning.accelerator_space import AREA_CONSTRAINT
from uboost.tuning.objective import BUDGET_CONSTRAINT, check_inner_options, study_metrics
from uboost.tuning.report import completed
from uboost.tuning.storage import safe_name

if TYPE_CHECKING:
    import optuna

    from uboost.search_config import SearchConfig
    from uboost.tuning.space import TuneSpace

logger = logging.getLogger(__name__)


MAX_SUBSETS = 64
"""A choice of several inputs (NNI's ``CategoricalMultiple`` without ``n_chosen``) with more subsets than this is not varied."""


def space_choices(config: "SearchConfig") -> dict[str, list]:
    """Every architecture choice of ``config``'s space: label -> the values an architecture dict can give it. A
    ``CategoricalMultiple`` (a cell's choice of inputs) takes lists: its ``n_chosen``-subsets (every subset when
    ``n_chosen`` is unset, up to :data:`MAX_SUBSETS`; above that the label is left as it is)."""
    import itertools

    from nni.mutable import CategoricalMultiple

    from uboost.search import build_space

    space, _, _ = build_space(config)
    out: dict[str, list] = {}
    for label, choice in space.simplify().items():
        values = list(choice.values)
        if isinstance(choice, CategoricalMultiple):
            sizes = [choice.n_chosen] if choice.n_chosen is not None else range(len(values) + 1)
            if choice.n_chosen is None and 2 ** len(values) > MAX_SUBSETS:
                continue
            values = [list(c) for n in sizes for c in itertools.combinations(values, n)]
        out[label] = values
    return out


def layers_of(config: "SearchConfig", arch: dict, built: tuple | None = None, warned: set[str] | None = None) -> list:
    """The layer shapes of ``arch`` frozen in ``config``'s space (``built``: that space and its input shape, built
    already -- freezing leaves a space as it is, so one build serves every network of a study; ``warned``: the
    unpriced module kinds named already, :func:`~uboost.hardware.layers.extract_layers`)."""
    from uboost import runs
    from uboost.hardware.layers import extract_layers
    from uboost.search import build_space

    space, shape = built if built is not None else build_space(config)[:2]
    return extract_layers(runs.freeze_arch(space, arch), shape, warned=warned)


class Pricer:
    """Neighbors priced once each (``screen``: :data:`~uboost.tuning.local_search.SCREENS`). ``cost(arch, parent)`` screens, ``attrs(arch,
    parent)`` gives the trial attributes of the neighbor that is retrained: on the best accelerator of the space
    (``inner`` is ``"exhaustive"``, the same for every parent) or, without the inner choice, on its parent's."""

    def __init__(self, base: "SearchConfig", tune_space: "TuneSpace", names: list[str], inner: str, screen: str = "best",
                 bits: local_bits.BitsMoves | None = None):
        if screen not in ls.SCREENS:
            raise ConfigError(f"unknown local-search screen {screen!r} (--local-search-screen); expected one of: {', '.join(ls.SCREENS)}")
        self.base, self.tune_space, self.names, self.inner, self.screen = base, tune_space, names, inner, screen
        self.bits = bits  # a bits study: networks are genomes (local_bits), priced at their layers' widths
        self.objective = inner_choice.hardware_objective(names)
        self._memo: dict[tuple, dict | None] = {}
        self._layers: dict[str, list] = {}
        self._warned: set[str] = set()  # unpriced module kinds named already: once per study
        self._built: tuple | None = None
        self.priced = 0
        self.seconds = 0.0

    def layers(self, arch: dict) -> list:
        """``arch``'s layer shapes, frozen from one build of the study's space (every parent has the same); in a bits
        study ``arch`` is a genome and each layer carries its width (a layer it does not name: the default)."""
        import dataclasses

        arch, precision = self.bits.split(arch) if self.bits is not None else (arch, None)
        shapes = self._shapes(arch)
        if precision is None:
            return shapes
        widths = {s.name: precision.get(s.name) or self.bits.default(s.name) for s in shapes}
        return [dataclasses.replace(s, weight_bits=widths[s.name][0], act_bits=widths[s.name][1]) for s in shapes]

    def _shapes(self, arch: dict) -> list:
        """The layer shapes of the architecture ``arch`` (no widths in it), built once each."""
        from uboost.search import build_space

        name = ls.key(arch)
        if name not in self._layers:
            if self._built is None:
                self._built = build_space(self.base)[:2]
            self._layers[name] = layers_of(self.base, arch, self._built, self._warned)
        return self._layers[name]

    def moves(self, choices: dict[str, list]):
        """``moves(genome)`` for :func:`~uboost.tuning.local_search.promising`: one architecture choice, or (a bits
        study) one layer's width; after an architecture change the layers are settled (:meth:`~uboost.tuning.local_bits.BitsMoves.settle`)."""
        if self.bits is None:
            return lambda arch: ls.neighbors(arch, choices)

        def moves(genome: dict) -> list:
            out = []
            for found, label, old, new in ls.neighbors(genome, {**choices, **self.bits.choices(genome)}):
                if not local_bits.is_bits_label(label):
                    try:
                        found = self.bits.settle(found, [s.name for s in self._shapes(self.bits.split(found)[0])])
                    except UBoostError as exc:  # a network that cannot be built cannot be priced either
                        logger.info("local search: %s cannot be built: %s", found, exc)
                        continue
                out.append((found, label, old, new))
            return out

        return moves

    def prepare(self, pairs: list[tuple[dict, ls.Record]]) -> None:
        """Screening on the best accelerators: the layer shapes of every neighbor not priced yet, priced on every
        accelerator structure in one batch (:func:`~uboost.tuning.inner_accelerator.prime`)."""
        from uboost.exceptions import UBoostError

        if self.inner != "exhaustive" or self.screen != "best":
            return
        started = time.perf_counter()
        networks = []
        for arch, _ in pairs:
            if (ls.key(arch), None) in self._memo:
                continue
            try:
                networks.append(self.layers(arch))
            except UBoostError:
                continue  # _price says why
        primed = inner_choice.prime(networks, self.tune_space, self.base, area=inner_choice.prices_area(self.names))
        self.seconds += time.perf_counter() - started
        logger.info("local search: %d layer shapes of %d neighbors primed in %.1f s", primed, len(networks),
                    time.perf_counter() - started)

    def config_of(self, parent: ls.Record | None) -> "SearchConfig":
        """The parent trial's configuration (its seed, its accelerator); ``None``: the study's base."""
        from uboost.search import SearchConfig

        return self.base if parent is None else SearchConfig.from_dict(parent.trial.user_attrs["config"])

    def attrs(self, arch: dict, parent: ls.Record | None, *, best: bool | None = None) -> dict | None:
        """``arch`` priced on its best accelerator (``best``; default: with the inner choice) or on ``parent``'s."""
        best = self.inner == "exhaustive" if best is None else best
        memo_key = (ls.key(arch), None if best or parent is None else parent.trial.number)
        if memo_key not in self._memo:
            started = time.perf_counter()
            self._memo[memo_key] = self._price(arch, parent, best)
            self.priced += 1
            self.seconds += time.perf_counter() - started
        return self._memo[memo_key]

    def _price(self, arch: dict, parent: ls.Record | None, best: bool) -> dict | None:
        from uboost.exceptions import UBoostError
        from uboost.search import build_cost_model

        config = self.config_of(parent)
        try:
            shapes = self.layers(arch)
            if best:
                choice = inner_choice.choose(shapes, self.tune_space, self.base, objective=self.objective,
                                             area=inner_choice.prices_area(self.names))
                attrs = choice.attrs()
                attrs["config"] = choice.config.replace(seed=config.seed).to_dict()  # the parent's seed: its retrain
                attrs["_choice"] = choice
            else:
                attrs = inner_choice.report_attrs(build_cost_model(config).evaluate(shapes), config)
                if parent.trial.user_attrs.get("area_mm2") is not None:  # the parent's accelerator: its area
                    attrs["area_mm2"] = parent.trial.user_attrs["area_mm2"]
        except UBoostError as exc:
            logger.info("local search: %s cannot be priced: %s", arch, exc)
            return None
        return attrs

    def cost(self, arch: dict, parent: ls.Record) -> tuple[float | None, float | None] | None:
        """``(cost, MACs)`` of ``arch`` as the screen prices it (:func:`~uboost.tuning.local_search.promising`'s ``price``)."""
        attrs = self.attrs(arch, parent, best=self.inner == "exhaustive" and self.screen == "best")
        return None if attrs is None else (ls.cost_of(attrs, self.objective), attrs.get("macs"))


def neighbor_dir(out_root: str | Path, study_name: str, arch: dict) -> Path:
    """Where a neighbor's retrain lives: one folder per network of the study."""
    digest = hashlib.sha1(ls.key(arch).encode()).hexdigest()[:16]
    return Path(out_root).resolve() / ls.FOLDER / safe_name(study_name) / digest


def _retrained(run_dir: Path, neighbor: ls.Neighbor, attrs: dict, retrain_epochs: int,
               bits: local_bits.BitsMoves | None = None) -> dict:
    """Retrain ``neighbor`` in ``run_dir`` (or read the retrain an interrupted local search finished there)."""
    from uboost import runs
    from uboost.io import write_json
    from uboost.retrain import RetrainConfig, retrain
    from uboost.search import SearchConfig

    done = run_dir / ls.DONE
    if done.is_file():
        kept = runs.read_json(done, "local search record")
        if kept.get("arch") == neighbor.arch:
            return kept
    if run_dir.exists():
        shutil.rmtree(run_dir)  # ours, unfinished: start it again
    run_dir.mkdir(parents=True)
    config = SearchConfig.from_dict(attrs["config"])
    arch, precision = local_bits.parts(bits, neighbor.arch)
    write_json(run_dir / runs.CONFIG, attrs["config"])
    if precision:  # retrained quantization-aware at these widths (uboost.quant.apply_run_precision)
        write_json(run_dir / runs.PRECISION, precision)
    if "_choice" in attrs:
        inner_choice.write_choice(run_dir, attrs["_choice"], SearchConfig.from_dict(neighbor.parent.trial.user_attrs["config"]))
    write_json(run_dir / runs.ARCH, arch)  # last: a directory with it is read as a whole network
    result = retrain(run_dir, RetrainConfig(epochs=retrain_epochs, batch_size=config.batch_size, max_samples=config.max_samples,
                                            seed=config.seed, accelerator=config.accelerator, devices=config.devices),
                     out=run_dir / runs.RETRAIN)
    kept = {"arch": neighbor.arch, "test_acc": result.test_acc, "retrain_seconds": result.seconds}
    write_json(done, kept)  # last: the mark that this neighbor is finished
    return kept


def _add(study: "optuna.Study", neighbor: ls.Neighbor, attrs: dict, kept: dict, run_dir: Path, names: list[str],
         budget_ms: float | None, tune_space: "TuneSpace", pricer: Pricer) -> "optuna.trial.FrozenTrial":
    import optuna

    parent = neighbor.parent.trial
    user = {k: v for k, v in attrs.items() if not k.startswith("_")}
    arch, precision = local_bits.parts(pricer.bits, neighbor.arch)
    if precision:  # the widths it was priced and retrained at: export writes them as precision.json
        user["precision"] = precision
    user.update(arch=arch, run_dir=str(run_dir), test_acc=kept["test_acc"], accuracy=kept["test_acc"],
                retrain_seconds=kept["retrain_seconds"], search_config=parent.user_attrs.get("search_config", parent.user_attrs["config"]))
    user[ls.ATTR] = {"parent": parent.number, "label": neighbor.label, "from": neighbor.old, "to": neighbor.new,
                     "estimated_gain": neighbor.gain, "macs_kept": neighbor.kept, "screen": pricer.screen,
                     "screened_cost": neighbor.cost, "priced": pricer.priced, "pricing_seconds": pricer.seconds}
    constraints = {}
    if tune_space.accelerator is not None and "area_mm2" in user:
        over = tune_space.accelerator.area_violation_mm2(user["area_mm2"])
        if over is not None:
            user[AREA_CONSTRAINT] = constraints[AREA_CONSTRAINT] = over
    if budget_ms is not None:
        user[BUDGET_CONSTRAINT] = constraints[BUDGET_CONSTRAINT] = user["latency_ms"] - budget_ms
    frozen = optuna.trial.create_trial(params=dict(parent.params), distributions=dict(parent.distributions),
                                       values=objs.values_from(user, names), user_attrs=user, constraints=constraints or None)
    study.add_trial(frozen)
    return study.get_trials(deepcopy=False)[-1]


def tried_twins(study: "optuna.Study") -> set[tuple[str, str]]:
    """:func:`~uboost.tuning.local_search.twin` of every local-search trial of ``study``, as it was screened."""
    out = set()
    for trial in study.get_trials(deepcopy=False):
        move = trial.user_attrs.get(ls.ATTR)
        if move and move.get("screened_cost") is not None:
            out.add(ls.twin(move["screened_cost"], trial.user_attrs.get("macs")))
    return out


def run_local_search(study: "optuna.Study", n: int, *, base: "SearchConfig", tune_space: "TuneSpace", out_root: str | Path,
                     retrain_epochs: int, objectives: Any = None, inner_accelerator: str | None = None,
                     budget_ms: float | None = None, progress: Callable[[Any], None] | None = None,
                     screen: str = "best") -> list:
    """Up to ``n`` local-search trials added to the Pareto ``study`` (:mod:`~uboost.tuning.local_search`); the
    added trials. ``progress(trial)`` sees each one as it is added; ``screen``: :data:`~uboost.tuning.local_search.SCREENS`."""
    ls.check_local_search(n, mode="pareto", retrain_epochs=retrain_epochs, screen=screen)
    names, _ = study_metrics("pareto", objectives)
    tune_space = tune_space.for_cost_mode(base.cost_mode)
    inner, _ = check_inner_options(inner_accelerator, None, tune_space, base, "area_mm2" in names)
    bits = local_bits.BitsMoves.for_config(base)
    pricer = Pricer(base, tune_space, names, inner, screen, bits)
    choices = space_choices(base)
    moves = pricer.moves(choices)
    added, failed = [], set()
    for _ in range(n):
        recs = ls.records(completed(study), pricer.objective, None if bits is None else bits.genome)
        if not recs:
            raise ConfigError(f"study {study.study_name!r} has no finished trial with a network to start a local search from")
        found = ls.promising(recs, choices, pricer.cost, prepare=pricer.prepare, exclude=failed, tried=tried_twins(study),
                             moves=moves)
        if not found:
            logger.info("local search: no neighbor of the front is promising; stopping after %d", len(added))
            break
        best = found[0]
        run_dir = neighbor_dir(out_root, study.study_name, best.arch)
        try:
            attrs = pricer.attrs(best.arch, best.parent)
            if attrs is None:
                raise ConfigError("no accelerator of the space can price it")
            kept = _retrained(run_dir, best, attrs, retrain_epochs, bits)
        except UBoostError as exc:  # a neighbor that cannot be priced or retrained (it counts as a try): the next one
            logger.warning("local search: trial %d's network with %s %s -> %s failed: %s", best.parent.trial.number,
                           best.label, best.old, best.new, exc)
            failed.add(ls.key(best.arch))
            continue
        trial = _add(study, best, attrs, kept, run_dir, names, budget_ms, tune_space, pricer)
        added.append(trial)
        logger.info("local search: trial %d = trial %d with %s %s -> %s: accuracy %.4f, cost %.4g (%d priced, %.1f s)",
                    trial.number, best.parent.trial.number, best.label, best.old, best.new, kept["test_acc"], best.cost,
                    pricer.priced, pricer.seconds)
        if progress is not None:
            progress(trial)
    return added

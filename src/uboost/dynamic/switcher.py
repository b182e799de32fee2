"""Switching networks at run time (MathNAS's "dynamic running"): the most accurate point that fits.

A :class:`Switcher` holds points (a name, an accuracy, a latency in ms and optionally an energy
in uJ) from a frontier directory (:meth:`Switcher.from_frontier`: ``p00``, ``p01``... with their
``result.json``/``hardware.json``) or from the Pareto points of ``uboost exits``
(:meth:`Switcher.from_exits`). :meth:`Switcher.select` returns the most accurate point whose
latency (and energy) is within the budget. The points are sorted by latency once; a query is a
binary search for the points under the latency budget plus a lookup in a prefix table of the
best point so far (latency alone), or a scan of that prefix for an energy budget -- microseconds
for any frontier. It never returns a point over budget and raises :class:`NoPointFits` when none
fits. Pure Python: no torch, no numpy.
"""

from __future__ import annotations

import bisect
import math
import os
import reprlib
from dataclasses import dataclass
from pathlib import Path

from uboost.exceptions import ConfigError, RunDirError


class NoPointFits(ConfigError):
    """No point of the switcher is within the budget."""


@dataclass(frozen=True)
class SwitchPoint:
    name: str
    accuracy: float
    latency_ms: float
    energy_uj: float | None = None
    source: str = ""


def _budget(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise ConfigError(f"{name} budget must be a non-negative number, got {value!r}")
    return float(value)


class Switcher:
    """The most accurate point within a latency (and energy) budget; see the module docstring."""

    def __init__(self, points: list[SwitchPoint], *, accuracy_name: str = "accuracy") -> None:
        if not points:
            raise ConfigError("a switcher needs at least one point")
        odd = next((p for p in points if not isinstance(p, SwitchPoint)), None)
        if odd is not None:  # a tuple was an AttributeError
            raise ConfigError(f"a switcher's points are SwitchPoint(name, accuracy, latency_ms, energy_uj=None), got {odd!r}")
        for p in points:  # a NaN would break the sort and the bisection: a point over budget could come back
            for what, value in (("accuracy", p.accuracy), ("latency_ms", p.latency_ms), ("energy_uj", p.energy_uj)):
                if value is None and what == "energy_uj":
                    continue
                if not _finite(value) or (
                        value < 0 and what != "accuracy"):  # (the accuracy may be a log-probability: below 0)
                    raise ConfigError(f"point {p.name!r}: {what} must be a finite number"
                                      f"{'' if what == 'accuracy' else ' >= 0'}, got {value!r}")
        names = [p.name for p in points]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:  # select() answers with a name: two points of one name could not be told apart
            raise ConfigError(f"two points are named {twice[0]!r}: give every point its own name")
        scores = [p.accuracy for p in points]
        if any(a > 1 for a in scores) and any(0 <= a <= 1 for a in scores):  # 91 beside 0.95 would always win
            raise ConfigError("the points' accuracies mix percentages (above 1) and fractions (0..1): give them on one scale")
        self.accuracy_name = accuracy_name
        self.points = sorted(points, key=lambda p: (p.latency_ms, -p.accuracy))
        self._latency = [p.latency_ms for p in self.points]
        best, self._best = -1, []
        for i, p in enumerate(self.points):  # index of the most accurate point among the first i + 1
            if best < 0 or p.accuracy > self.points[best].accuracy:
                best = i
            self._best.append(best)

    def __len__(self) -> int:
        return len(self.points)

    def select(self, *, latency_ms: float | None = None, energy_uj: float | None = None) -> SwitchPoint:
        """The most accurate point with latency <= ``latency_ms`` and energy <= ``energy_uj`` (each optional)."""
        latency_ms, energy_uj = _budget("latency", latency_ms), _budget("energy", energy_uj)
        end = len(self.points) if latency_ms is None else bisect.bisect_right(self._latency, latency_ms)
        if energy_uj is None:
            if end:
                return self.points[self._best[end - 1]]
        else:
            if any(p.energy_uj is None for p in self.points[:end]):
                raise ConfigError("an energy budget needs every point's energy; these points have none (made before energy was priced)")
            fitting = [p for p in self.points[:end] if p.energy_uj <= energy_uj]
            if fitting:
                return max(fitting, key=lambda p: (p.accuracy, -p.latency_ms))
        wanted = ", ".join(f"{n} <= {v:g} {u}" for n, v, u in (("latency", latency_ms, "ms"), ("energy", energy_uj, "µJ")) if v is not None)
        fastest = min(self.points, key=lambda p: p.latency_ms)
        said = f"the fastest, {fastest.name}, needs {fastest.latency_ms:.6g} ms" + (
            f" and {fastest.energy_uj:.6g} µJ" if fastest.energy_uj is not None else "")
        priced = [p for p in self.points if p.energy_uj is not None]
        if energy_uj is not None and priced:  # the budget that failed may be the energy one: say the least energy too
            frugal = min(priced, key=lambda p: (p.energy_uj, p.latency_ms))
            if frugal is not fastest:
                said += f"; the least energy, {frugal.name}, needs {frugal.energy_uj:.6g} µJ and {frugal.latency_ms:.6g} ms"
        raise NoPointFits(f"no point fits {wanted}: {said}")

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    def from_frontier(cls, directory: str | os.PathLike) -> "Switcher":
        """Points ``p*/`` of a ``uboost frontier`` directory. Accuracy: ``test_acc`` of each point's
        ``retrain/retrain.json`` (the model on disk), else of its ``result.json`` (a frontier made with
        ``--retrain-epochs`` copied without its retrain folders); a frontier without any uses the
        predicted accuracy where every point has one (``frontier --objective predicted-accuracy``), else the
        search's preference (log-probability)."""
        from uboost.runs import HARDWARE, RESULT, read_json

        root = Path(directory)
        if not root.is_dir():
            if root.is_file() and root.suffix == ".json" and root.parent.name == "points":  # one exit policy
                raise RunDirError(f"{root} is one point of the exits in {root.parent.parent}: switch on that folder, "
                                  f"`uboost switch {root.parent.parent}`")
            why = "it does not exist" if not root.exists() else "it is not a folder"
            make = (f"`uboost frontier RUN --out {root}` or `uboost exits RUN --out {root}`" if not root.exists()
                    else "`uboost frontier RUN --out DIR`")
            raise RunDirError(f"expected a frontier or exits directory, got {root} ({why}; make one with {make})")
        from uboost.runs import check_complete

        check_complete(root)  # some points, or old ones with new
        dirs = sorted(d for d in root.glob("p[0-9]*") if (d / RESULT).is_file())
        if not dirs:
            if (root / "config.json").is_file():  # a search run: switch on its frontier or exits, made or to make
                made = [root / name for name in ("frontier", "exits") if (root / name / "exits.json").is_file()
                        or any((root / name).glob("p[0-9]*/result.json"))]
                if made:
                    raise RunDirError(f"{root} is a search run, not a frontier: switch on "
                                      + " or ".join(f"`uboost switch {m}`" for m in made))
                raise RunDirError(f"{root} is a search run, not a frontier: make one with `uboost frontier {root}` (into "
                                  f"{root / 'frontier'}) and switch on that")
            if (root / "study.journal").is_file() and not (root / "exits.json").is_file():  # (uboost.dynamic.search)
                raise RunDirError(f"{root} holds an interrupted `uboost exits` (its study.journal, no exits.json yet): run "
                                  "that command again to finish it, then switch on this folder")
            raise RunDirError(f"{root} holds no frontier points (p00/result.json, ...): run `uboost frontier RUN --out {root}`")
        rows = []
        for d in dirs:
            result = _object(read_json(d / RESULT, "frontier point result"), d / RESULT)
            accuracy = _test_accuracy(d, result)
            hardware = _object(read_json(d / HARDWARE, "hardware report"), d / HARDWARE) if (d / HARDWARE).is_file() else {}
            energy = (hardware.get("total") or {}).get("energy_uj") if isinstance(hardware.get("total"), dict) else None
            rows.append((d.name, accuracy, _number(result.get("preference"), d / RESULT, "preference", optional=True),
                         _number(result.get("latency_ms"), d / RESULT, "latency_ms"), energy,
                         _number(result.get("predicted_accuracy"), d / RESULT, "predicted_accuracy", optional=True)))
        if all(r[1] is not None for r in rows):
            return cls([SwitchPoint(n, float(a), l, e, str(root / n)) for n, a, _, l, e, _ in rows], accuracy_name="test accuracy")
        if any(r[1] is not None for r in rows):
            missing = [r[0] for r in rows if r[1] is None]
            raise RunDirError(f"{root}: points {', '.join(missing)} have no test accuracy while others do; retrain them "
                              f"(uboost retrain {root / missing[0]})")
        if any(r[5] is not None for r in rows) and not all(r[5] is not None for r in rows):
            missing = [r[0] for r in rows if r[5] is None]
            raise RunDirError(f"{root}: points {', '.join(missing)} have no predicted_accuracy in result.json while others do; "
                              f"make the frontier again (uboost frontier RUN --out {root} --force)")
        if all(r[5] is not None for r in rows):  # the frontier chose by the predictor: so does the switch
            return cls([SwitchPoint(n, float(q), l, e, str(root / n)) for n, _, _, l, e, q in rows], accuracy_name="predicted accuracy")
        return cls([SwitchPoint(n, float(p), l, e, str(root / n)) for n, _, p, l, e, _ in rows], accuracy_name="search preference")

    @classmethod
    def from_exits(cls, directory: str | os.PathLike, *, test: bool = False) -> "Switcher":
        """The Pareto points of ``uboost exits`` (``points/pNN.json``); budgets apply to the
        *expected* latency and energy, accuracy is the validation one (``test``: the test one)."""
        root = Path(directory)
        from uboost.runs import check_complete

        check_complete(root)
        if (root / "exits.json").is_file():  # points of heads trained on a model replaced since: refused
            from uboost.dynamic.pipeline_io import check_same_model, read_summary

            check_same_model(root, read_summary(root), run_needed=False)
        files = sorted((root / "points").glob("p*.json")) if (root / "points").is_dir() else []
        if not files:
            raise RunDirError(f"{root} holds no exit policies (points/p00.json, ...): run `uboost exits RUN` first")
        points = [_exit_point(f, "test_" if test else "", exits_again(root)) for f in files]
        return cls(points, accuracy_name=("test" if test else "validation") + " accuracy")

    @classmethod
    def from_directory(cls, directory: str | os.PathLike) -> "Switcher":
        """A frontier directory, or an exits directory (it has ``points/``)."""
        root = Path(directory)
        if (root / "points").is_dir() and (root / "exits.json").is_file():
            return cls.from_exits(root)
        return cls.from_frontier(root)


def _test_accuracy(point: Path, result: dict) -> float | None:
    """The test accuracy of the model in ``point/retrain``: its ``retrain.json`` first, because ``uboost
    retrain --force`` replaces the model and that file but leaves the ``test_acc`` that ``frontier
    --retrain-epochs`` copied into ``result.json`` (the replaced model's); ``result.json``'s otherwise."""
    from uboost.runs import RESULT, RETRAIN, read_json

    retrained = point / RETRAIN / "retrain.json"
    if retrained.is_file():
        accuracy = _number(_object(read_json(retrained, "retrain result"), retrained).get("test_acc"), retrained,
                           "test_acc", optional=True)
        if accuracy is not None:
            return accuracy
    return _number(result.get("test_acc"), point / RESULT, "test_acc", optional=True)


def _exit_point(path: Path, prefix: str, again: str) -> SwitchPoint:
    """One exit policy file as a point: its (``prefix``: test) accuracy, expected latency and energy (the
    energy may be missing: an energy budget then says so), each checked, so a damaged file is one line."""
    from uboost.dynamic.policy import ExitPolicy

    metrics = ExitPolicy.load(path).metrics

    def number(key: str, optional: bool = False) -> float | None:
        return _number(metrics.get(prefix + key), path, f"metrics.{prefix}{key}", optional=optional, again=again)

    return SwitchPoint(path.stem, number("accuracy"), number("expected_latency_ms"),
                       number("expected_energy_uj", optional=True), str(path))


def exits_again(root: Path) -> str:
    """The command that writes an exits directory's files anew, for a refusal of a damaged one."""
    return f"train the exits again with `uboost exits RUN --out {root} --force`"


_AGAIN = "export that point again"  # what makes a frontier point's files; exits files name their own command


def _object(data, path, *, again: str = _AGAIN) -> dict:
    """``data`` when it is a JSON object, else one line naming the file."""
    if not isinstance(data, dict):
        raise RunDirError(f"{path} must hold a JSON object, got {type(data).__name__}; {again}")
    return data


def _number(value, path, key: str, *, optional: bool = False, again: str = _AGAIN) -> float | None:
    """``value`` as a finite number (``None`` allowed when ``optional``), else one line naming the file and key."""
    if value is None and optional:
        return None
    if not _finite(value):
        raise RunDirError(f"{path}: {key} must be a number, got {reprlib.repr(value)}; {again}")  # (short: 10**400)
    return float(value)


def _finite(value) -> bool:
    """A finite number a float holds: JSON's ints are unbounded, and 10**400 overflowed in isfinite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False

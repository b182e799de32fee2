"""Write a trial as a run directory that ``uboost retrain`` accepts."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from uboost import _manifest, runs
from uboost._owners import TUNE_EXPORT, refuse_others
from uboost.exceptions import ConfigError, RunDirError
from uboost.io import write_json
from uboost.tuning.inner_accelerator import INNER_FILE
from uboost.tuning.report import best_trial, completed, pareto_front

if TYPE_CHECKING:
    import optuna


def find_trial(study: "optuna.Study", which: int | str, *, budget_ms: float | None = None,
               area_budget_mm2: float | None = None):
    """Trial ``which`` (a number, or ``"best"``), checked to be finished with a result."""
    import optuna

    if isinstance(which, str) and which.strip().lower() == "best":
        trial = best_trial(study, budget_ms=budget_ms, area_budget_mm2=area_budget_mm2)
        if trial is None:
            within = " within the latency budget" if completed(study) else ""
            raise ConfigError(f"study {study.study_name!r} has no finished trial{within}")
        return trial
    try:
        number = int(which)
    except (TypeError, ValueError):
        raise ConfigError(f"trial must be a trial number or 'best', got {which!r}") from None
    trials = study.get_trials(deepcopy=False)
    match = [t for t in trials if t.number == number]
    if not match:
        span = f"0..{max(t.number for t in trials)}" if trials else "none yet"
        raise ConfigError(f"study {study.study_name!r} has no trial {number} (trials: {span})")
    trial = match[0]
    if trial.user_attrs.get("skipped"):  # an accelerator over the area budget: recorded (worst values), never searched
        reason = trial.user_attrs.get("fail_reason") or "its accelerator is over the area budget"
        raise ConfigError(f"trial {number} is infeasible ({reason}): an over-budget trial is never searched, so it "
                          f"cannot be exported; {_feasible_choices(study, budget_ms, area_budget_mm2)}")
    if trial.state != optuna.trial.TrialState.COMPLETE or "arch" not in trial.user_attrs:
        reason = trial.user_attrs.get("fail_reason")
        raise ConfigError(f"trial {number} is {trial.state.name}{f' ({reason})' if reason else ''}; only finished trials can be exported")
    return trial


def check_within_budgets(study: "optuna.Study", trial, budget_ms: float | None, area_budget_mm2: float | None) -> None:
    """Refuse trial ``trial``, asked for by number, when it is over a budget the user gave with the export: the
    budgets an export takes (``--budget-ms``, ``--area-budget-mm2``) apply to trial N as to ``best``."""
    from uboost.tables import latency_text

    attrs = trial.user_attrs
    latency, area = attrs.get("latency_ms"), attrs.get("area_mm2")
    over = None
    if budget_ms is not None and (latency is None or latency > budget_ms):
        over = f"its latency {latency_text(latency) if latency is not None else '(not recorded)'} is over --budget-ms {budget_ms:g}"
    elif area_budget_mm2 is not None and area is not None and area > area_budget_mm2:
        over = f"its area {area:.4g} mm² is over --area-budget-mm2 {area_budget_mm2:g}"
    if over is not None:
        raise ConfigError(f"trial {trial.number} is outside the budgets given ({over}): drop the budget to export it "
                          f"anyway, or {_feasible_choices(study, budget_ms, area_budget_mm2)}")


def _feasible_choices(study: "optuna.Study", budget_ms: float | None, area_budget_mm2: float | None) -> str:
    """What can be exported instead: ``--export best`` and the Pareto front's trial numbers (within the budgets)."""
    front = pareto_front(study, budget_ms=budget_ms, area_budget_mm2=area_budget_mm2)
    if not front:
        return f"study {study.study_name!r} has no feasible finished trial to export yet"
    best = best_trial(study, budget_ms=budget_ms, area_budget_mm2=area_budget_mm2)
    numbers = sorted(t.number for t in front)
    shown = ", ".join(str(n) for n in numbers[:10]) + (f" (and {len(numbers) - 10} more)" if len(numbers) > 10 else "")
    return f"export a feasible one: --export best (trial {best.number}) or a trial of the Pareto front: {shown}"


_SKIP = {runs.CHECKPOINTS, "nni"}
PRICED = ("latency_ms", "cycles", "utilization", "macs", "energy_uj", "energy_breakdown_uj")
"""``result.json`` fields of the derived network's cost, re-priced on an inner-chosen accelerator at export."""
RETRAIN_PRICED = ("cycles", "latency_ms", "utilization", "macs")
"""``retrain/retrain.json`` fields of the retrained network's cost, likewise re-priced."""
SEARCH_ESTIMATES = ("expected_latency_ms", "argmax_latency_ms", "expected_energy_uj", "argmax_energy_uj")
"""``result.json`` fields of the search's own estimates, kept apart (``on_searched_accelerator``) at that export."""


STAGING = ".uboost-export."
"""Prefix of the folder in the output an export is staged in (moved into place file by file)."""


def _drop_staging(out: Path) -> None:
    """Remove the staging folders of exports killed before their ``finally`` ran: the caller holds ``out``'s lock,
    so no export is staging there now (they are in no manifest: --force would never remove them)."""
    for folder in out.glob(f"{STAGING}*"):
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)


def _priced_on(chosen: dict) -> str:
    spec = chosen.get("hardware", {})
    return f"{spec.get('rows')}x{spec.get('cols')}" if "rows" in spec else "the chosen accelerator"


def _on_chosen_accelerator(folder: Path, trial) -> None:
    """Re-price an inner-choice trial's files in ``folder`` (a copy of its run directory) on the chosen accelerator:
    ``hardware.json`` is its report, ``result.json``'s cost and a retrain's (``retrain/``) are its numbers. Its
    search and retrain ran on the searched accelerator, so they priced the network there."""
    chosen = json.loads((folder / INNER_FILE).read_text())["hardware"]
    total = chosen.get("total", {})
    write_json(folder / runs.HARDWARE, chosen)
    if (folder / runs.RESULT).is_file():
        result = json.loads((folder / runs.RESULT).read_text())
        # the search's own estimates (supernet, argmax) were priced on the searched accelerator: kept apart,
        # so every top-level number is the chosen accelerator's
        searched = {k: result.pop(k) for k in SEARCH_ESTIMATES if k in result}
        if searched:
            result["on_searched_accelerator"] = {**searched, "array": trial.user_attrs.get("search_array")}
        result.update({k: total[k] for k in PRICED if k in total}, priced_on=_priced_on(chosen))
        write_json(folder / runs.RESULT, result)
    retrained = folder / runs.RETRAIN / "retrain.json"
    if retrained.is_file():  # its weights do not depend on the accelerator; its price does, as `uboost retrain` prices it
        write_json(folder / runs.RETRAIN / runs.HARDWARE, chosen)
        info = json.loads(retrained.read_text())
        spec = chosen.get("hardware", {})
        info.update({k: total[k] for k in RETRAIN_PRICED if k in total}, cost_model=chosen.get("cost_model", info.get("cost_model")))
        if "rows" in spec:
            info.update(array=_priced_on(chosen), dataflow=spec.get("dataflow", info.get("dataflow")))
        write_json(retrained, info)


def export_trial(study: "optuna.Study", which: int | str, out: str | os.PathLike | None = None, *,
                 out_root: str | os.PathLike = "runs/tune", force: bool = False, budget_ms: float | None = None) -> Path:
    """Write trial ``which`` (number or ``"best"``) as a run directory ``uboost retrain`` accepts.

    Files of the trial's own run directory are copied when it is on this machine (without
    checkpoints); ``config.json``, ``arch.json``, ``tune.json`` and (after a bits search)
    ``precision.json`` come from the storage, so export also works for trials run elsewhere. Default ``out``:
    ``out_root/export-NUMBER`` (``export-STUDY-NUMBER`` for a study other than the default one). The
    config is the trial's resolved one, its co-searched accelerator included (buffers, bandwidth,
    clock, PE mode, area table), so ``retrain``, ``export`` and ``profile RUN`` price on it; after an
    inner accelerator choice that is the chosen accelerator, and ``hardware.json`` its report
    (:mod:`~uboost.tuning.inner_accelerator`; the searched one stays in ``inner-accelerator.json``).
    """
    trial = find_trial(study, which, budget_ms=budget_ms)
    if out is None:  # one folder per study and trial (the default study keeps the short name)
        from uboost.tuning.storage import safe_name
        from uboost.tuning.objective import DEFAULT_STUDY

        named = "" if study.study_name == DEFAULT_STUDY else f"{safe_name(study.study_name)}-"
        out = Path(out_root) / f"export-{named}{trial.number}"
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"output {out} exists and is not a directory")
    source = Path(trial.user_attrs["run_dir"]) if trial.user_attrs.get("run_dir") else None
    # every trial's own run directory stays: --force never clears one (the study points at it)
    keep = [out_root, *sorted({t.user_attrs["run_dir"] for t in study.get_trials(deepcopy=False) if t.user_attrs.get("run_dir")})]
    # a search run, a retrain or the study folder is not an earlier export: never cleared, --force or not
    refuse_others(out, TUNE_EXPORT, directory=True)
    with runs.run_lock(out):
        _drop_staging(out)
        refuse_others(out, TUNE_EXPORT, directory=True)  # again, under the lock
        if not _manifest.is_empty(out):
            if not force:
                raise RunDirError(f"output {out} already exists; pass --force to replace it")
            _manifest.guard(out, *keep)
        tmp = Path(tempfile.mkdtemp(dir=out, prefix=STAGING))
        try:
            if source is not None and source.is_dir():
                for item in source.iterdir():
                    if item.name in _SKIP or item.name.startswith("."):
                        continue
                    if item.is_dir():  # a retrain's own checkpoints stay behind too (a finished retrain needs none)
                        shutil.copytree(item, tmp / item.name, ignore=shutil.ignore_patterns(runs.CHECKPOINTS))
                    else:
                        shutil.copy2(item, tmp / item.name)
            write_json(tmp / runs.CONFIG, trial.user_attrs["config"])
            write_json(tmp / runs.ARCH, trial.user_attrs["arch"])
            if trial.user_attrs.get("precision"):  # searched bits: retrain, export and profile run the network at them
                write_json(tmp / runs.PRECISION, trial.user_attrs["precision"])
            if "inner_accelerator" in trial.user_attrs and (tmp / INNER_FILE).is_file():
                _on_chosen_accelerator(tmp, trial)
            keys = ("accuracy", "val_acc", "test_acc", "latency_ms", "energy_uj", "area_mm2", "cycles", "utilization", "macs",
                    "array", "dataflow", "run_dir", "inner_accelerator", "search_array", "search_dataflow")
            write_json(tmp / "tune.json", {
                "study": study.study_name, "trial": trial.number, "params": trial.params, "values": trial.values,
                **{k: trial.user_attrs[k] for k in keys if k in trial.user_attrs},
            })
            # result.json, then arch.json last: a directory with arch.json is read as a finished run (as search and
            # frontier write it), so an export killed while moving files into place never looks usable
            files = sorted((p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file()),
                           key=lambda f: (f == runs.ARCH, f == runs.RESULT, f))
            _manifest.refuse_foreign(out, files)  # never overwrite a file uboost did not write
            if force:
                _manifest.clear(out, *keep)
            folders = sorted({parent.as_posix() for f in files for parent in Path(f).parents
                              if parent != Path(".") and not (out / parent).is_dir()})
            # the trial's retrain comes along as part of the export (a copy, not a retrain the user ran here):
            # `uboost retrain OUT --force` replaces it in its own folder; once it has, that retrain is the user's
            _manifest.record(out, *files, dirs=folders, owner=TUNE_EXPORT)
            for name in files:
                try:
                    (out / name).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp / name, out / name)
                except OSError as exc:
                    raise RunDirError(f"cannot write {out / name}: {exc.strerror or exc}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out

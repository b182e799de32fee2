"""`uboost tune --export` killed part way: no staging folder stays in the output for good, and a directory whose
result.json is there holds every other file of the export."""

from __future__ import annotations

import json
import os

import optuna

from tests.reliability.test_tune_storage import BASE
from uboost import runs
from uboost.tuning import create_study, export_trial
from uboost.tuning import export as export_module


def _study_with_a_trial(tmp_path):
    study = create_study(tmp_path / "tune")  # (first: a new study refuses a folder holding another's trial runs)
    run_dir = tmp_path / "tune" / "trials" / "uboost" / "0000"
    run_dir.mkdir(parents=True)
    for name in (runs.RESULT, runs.HARDWARE, runs.ARCH, runs.CONFIG, runs.PRECISION, "alphas.json"):
        (run_dir / name).write_text(json.dumps({"from": "the search"}))
    study.add_trial(optuna.trial.create_trial(values=[0.5, 0.01], user_attrs={
        "accuracy": 0.5, "latency_ms": 0.01, "arch": {"a": 1}, "config": BASE.to_dict(), "run_dir": str(run_dir),
        "precision": {"c": [4, 4]}}))
    return study


def test_a_killed_exports_staging_folder_is_removed_by_the_next_export(tmp_path):
    study = _study_with_a_trial(tmp_path)
    out = tmp_path / "export"
    for force in (False, True):  # into a folder holding only the staging, then over a finished export
        stale = out / f"{export_module.STAGING}k1ll3d"  # SIGKILL: the export's `finally` never ran
        (stale / "nested").mkdir(parents=True)
        (stale / runs.CONFIG).write_text("{}")
        export_trial(study, 0, out, force=force)
        assert not list(out.glob(".uboost-export.*")) and (out / runs.RESULT).is_file()


def test_result_json_then_arch_json_are_the_last_files_an_export_places(tmp_path, monkeypatch):
    """A directory with arch.json is read as a finished run: a kill before precision.json was a network at 8 bits."""
    study = _study_with_a_trial(tmp_path)
    placed = []
    real = os.replace

    def replace(src, dst):
        placed.append(os.path.basename(dst))
        real(src, dst)

    monkeypatch.setattr(export_module.os, "replace", replace)
    export_trial(study, 0, tmp_path / "export")
    assert placed[-2:] == [runs.RESULT, runs.ARCH] and {runs.CONFIG, runs.PRECISION, runs.HARDWARE} <= set(placed[:-2])

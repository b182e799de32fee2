"""The tuning package is split along its seams: sizes bounded, no import circles, public API unchanged."""

from __future__ import annotations

import ast
from pathlib import Path

import uboost.tuning

PACKAGE = Path(uboost.tuning.__file__).parent
PUBLIC = {
    "BUDGET_CONSTRAINT", "DEFAULT_STUDY", "METRIC_NAMES", "MODES", "TrialFailed", "TuneSpace", "best_trial", "check_mode",
    "completed", "create_study", "describe_storage", "export_trial", "feasible", "find_trial", "load_study", "objective",
    "pareto_front", "resolve_storage", "run_study", "safe_name", "trial_dir",
}


def _internal_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("uboost.tuning."):
            found.add(node.module.removeprefix("uboost.tuning."))
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("uboost.tuning.") for a in node.names if a.name.startswith("uboost.tuning."))
    return found


def test_public_names_are_unchanged():
    assert PUBLIC <= set(uboost.tuning.__all__)
    for name in uboost.tuning.__all__:
        assert getattr(uboost.tuning, name) is not None


def test_modules_are_small_and_import_no_circle():
    modules = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert {"space", "child", "storage", "study", "report", "export"} <= set(modules)
    for name, path in modules.items():
        assert len(path.read_text().splitlines()) <= 400, name
    graph = {name: _internal_imports(path) & set(modules) for name, path in modules.items()}
    state: dict[str, int] = {}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        assert state.get(name) != 1, f"import circle: {' -> '.join((*trail, name))}"
        if state.get(name) == 2:
            return
        state[name] = 1
        for dep in graph[name]:
            visit(dep, (*trail, name))
        state[name] = 2

    for name in graph:
        visit(name, ())

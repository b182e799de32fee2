import subprocess
import sys

import pytest

import uboost


def test_import_is_cheap_and_lazy():
    code = "import sys, uboost; print('torch' in sys.modules, 'nni' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_public_names_resolve():
    assert uboost.create_cost_model("systolic", rows=8, cols=8).spec.pes == 64
    assert "darts-cifar" in uboost.list_spaces()
    assert issubclass(uboost.UBoostError, Exception)
    with pytest.raises(AttributeError):
        uboost.not_a_name


def test_importing_the_strategy_prints_no_nni_import_warnings_and_leaves_logging_alone():
    # NNI warns once per torch class it does not know while it is imported (torch 2.14 has several);
    # uboost.strategy filters exactly those, and does not touch NNI's loggers (a user's NNI experiment keeps them)
    code = ("import logging, uboost.strategy, nni; "
            "print(logging.getLogger('nni').level, logging.getLogger('lightning.pytorch').level)")
    out = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, check=True)
    assert "is found to be not a nn.Module" not in out.stderr
    assert out.stdout.split()[0] != str(__import__("logging").CRITICAL)


def test_the_python_floor_covers_the_standard_library_the_code_imports():
    """tomllib is 3.11's: a package that reads TOML files must not claim 3.10."""
    import re
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    floor = tomllib.loads((root / "pyproject.toml").read_text())["project"]["requires-python"]
    minor = int(re.fullmatch(r">=3\.(\d+)", floor.strip()).group(1))
    if any("tomllib" in p.read_text() for p in (root / "src" / "uboost").rglob("*.py")):
        assert minor >= 11, floor

"""Every Python block of README.md runs as written (in a fresh process, in a scratch directory).

The long ones (the Optuna study: ten searches) are slow-marked; the README's text is never edited
to make a test pass.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
SLOW = ("optuna",)  # blocks that run whole studies


def _params():
    for i, code in enumerate(BLOCKS):
        marks = [pytest.mark.slow] if any(word in code for word in SLOW) else []
        yield pytest.param(code, id=f"block{i}", marks=marks)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("code", list(_params()))
def test_readme_python_block_runs_as_written(code, tmp_path):
    script = tmp_path / "block.py"
    script.write_text(code)
    env = {**os.environ, "HOME": str(tmp_path), "OMP_WAIT_POLICY": "PASSIVE"}
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]

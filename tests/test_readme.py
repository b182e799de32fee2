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


SHELL_BLOCKS = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_shell_blocks():
    assert len(SHELL_BLOCKS) >= 3 and any("uboost search" in b for b in SHELL_BLOCKS)


@pytest.mark.slow
def test_readme_shell_blocks_run_as_written(tmp_path):
    """All ```bash blocks, in order, in one scratch copy of the repository (later blocks use the
    runs earlier ones made). Long: the main job, the test suite, a 20-trial tune. `pip install`
    is the one command answered by a shim (the package is installed already; re-pointing the
    editable install at a scratch copy would break the environment running the test)."""
    import shutil

    repo = README.parent
    work = tmp_path / "repo"
    files = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (repo / name).is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / name, work / name)
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "pip").write_text("#!/bin/sh\necho \"(test) pip $*: already installed\"\n")
    (shim / "pip").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}", "HOME": str(tmp_path), "OMP_WAIT_POLICY": "PASSIVE"}
    for i, block in enumerate(SHELL_BLOCKS):
        out = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block], cwd=work, env=env, capture_output=True, text=True)
        assert out.returncode == 0, f"block {i}:\n{block}\n{out.stderr[-3000:]}"

"""A library search is quiet (no NNI/Lightning warnings, tips or banners) and keeps NNI's files in the run."""

import os
import subprocess
import sys

SCRIPT = """
from uboost.search import SearchConfig, run_search
config = SearchConfig(space="lenet", dataset="digits", image_size=8, epochs=1, max_samples=64, batch_size=32)
run_search(config, "run")
print("DONE")
"""


def test_library_search_is_quiet_and_writes_nothing_to_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS",)}
    env.update(HOME=str(home), OMP_WAIT_POLICY="PASSIVE")
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "DONE", out.stdout
    noise = [l for l in out.stderr.splitlines() if l.strip()]
    assert noise == [], "\n".join(noise[:20])
    assert not (home / "nni-experiments").exists()
    assert (tmp_path / "run" / "nni" / ".experiment").is_file()  # NNI's experiment list, in the run

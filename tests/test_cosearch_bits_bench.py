"""benchmarks/_cosearch_bits.py: the uniform-bits fairness rows retrain the cell's reference network, not a stale one."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _cosearch_bits  # noqa: E402


def _run(folder: Path, arch: dict, config: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "arch.json").write_text(json.dumps(arch))
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_a_kept_retrain_is_reused_only_for_the_same_network(tmp_path):
    source = _run(tmp_path / "trial", {"conv1_kernel": 3}, {"seed": 0})
    assert _cosearch_bits.same_network(_run(tmp_path / "same", {"conv1_kernel": 3}, {"seed": 0}), source)
    assert not _cosearch_bits.same_network(_run(tmp_path / "other", {"conv1_kernel": 5}, {"seed": 0}), source)
    assert not _cosearch_bits.same_network(_run(tmp_path / "reseeded", {"conv1_kernel": 3}, {"seed": 1}), source)
    assert not _cosearch_bits.same_network(tmp_path / "missing", source)

"""Issue 25: one search over several processes (Lightning DDP, gloo on 127.0.0.1)."""

import json

import pytest

from tests.distributed.conftest import TINY


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """A 2-process single-path search with a latency budget (multiplier and commit phase move)."""
    from tests.distributed.conftest import Run

    tmp = tmp_path_factory.mktemp("ddp")
    config = {**TINY, "epochs": 2, "batch_size": 16, "devices": 2, "target_latency_ms": 0.00018, "budget_commit": 0.5}
    run = Run(tmp / "run", tmp / "report", config)
    code, _, err = run.wait(timeout=240)
    assert code == 0, err[-3000:]
    return run


def test_alphas_weights_multiplier_and_path_are_identical_on_every_rank_after_every_step(two_ranks):
    ranks = [two_ranks.rank(0), two_ranks.rank(1)]
    assert [r["world"] for r in ranks] == [2, 2]
    records = ranks[0]["records"]
    assert len(records) == 2 * 4 == len(ranks[1]["records"])  # 64 weight samples per rank / 16, 2 epochs
    for record in records:
        assert record["alphas"] and record["weights"] and record["multiplier"] and record["path"], record
    assert ranks[0]["arch"] == ranks[1]["arch"] == json.loads((two_ranks.out / "arch.json").read_text())
    assert ranks[0]["arch"]["conv_width"] == 4  # the only width under the budget


def test_only_rank_zero_writes_the_run_directory(two_ranks):
    assert two_ranks.rank(1)["written"] == []
    written = " ".join(two_ranks.rank(0)["written"])
    for name in ("config.json", "arch.json", "alphas.json", "result.json", "metrics.csv"):
        assert name in written, name  # the audit sees rank 0 write them ...
    assert (two_ranks.out / "checkpoints" / "last.ckpt").is_file()  # (Lightning saves through fsspec)
    nni = two_ranks.out / "nni"
    assert nni.is_dir() and not any("uboost-rank-" in p.name for p in two_ranks.out.rglob("*"))
    metrics = (two_ranks.out / "metrics.csv").read_text().splitlines()
    assert "train_loss" in metrics[0] and len(metrics) > 8  # one writer: no rows lost or doubled by a second rank


@pytest.mark.slow
@pytest.mark.parametrize("sampling", ["single-path", "mixture"])
def test_two_ranks_at_batch_b_equal_one_process_at_batch_2b(tmp_path, launch, sampling):
    """On a space without batch norm a step's gradient is the mean over its samples: 2 x 16 = 1 x 32."""
    alphas, archs = [], []
    for devices in (1, 2):
        config = {**TINY, "epochs": 2, "batch_size": 32 // devices, "devices": devices, "strategy": "ddp", "sampling": sampling}
        run = launch(tmp_path / f"run{devices}", tmp_path / f"report{devices}", config)
        code, _, err = run.wait(timeout=180)
        assert code == 0, err[-3000:]
        alphas.append(json.loads((run.out / "alphas.json").read_text()))
        archs.append(json.loads((run.out / "arch.json").read_text()))
    assert archs[0] == archs[1]
    for label, values in alphas[0].items():
        assert values == pytest.approx(alphas[1][label], abs=1e-5), label
    assert alphas[0] != {k: [0.0] * len(v) for k, v in alphas[0].items()}  # the alphas moved

"""Issue 25 on a GPU machine (marker ``gpu``; skipped without CUDA): NCCL, bf16-mixed, the same checks."""

import pytest

from tests.distributed.conftest import TINY

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_gpu_ranks_stay_identical_after_every_step(tmp_path, launch, precision):
    devices = min(2, torch.cuda.device_count())
    config = {**TINY, "accelerator": "gpu", "epochs": 2, "batch_size": 16, "devices": devices, "strategy": "ddp",
              "precision": precision, "target_latency_ms": 0.00018}
    run = launch(tmp_path / "run", tmp_path / "report", config)
    code, _, err = run.wait(timeout=300)
    assert code == 0, err[-3000:]
    records = run.rank(0)["records"]
    assert records and all(r["alphas"] and r["weights"] and r["multiplier"] and r["path"] for r in records)
    assert run.rank(0)["world"] == devices

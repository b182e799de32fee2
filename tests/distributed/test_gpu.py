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


@pytest.mark.parametrize("sampling", ["single-path", "mixture"])
def test_a_steady_state_search_step_makes_no_cuda_sync(tmp_path, sampling):
    """What tests/strategy/test_host_syncs.py counts on the CPU, checked by CUDA itself: with
    ``torch.cuda.set_sync_debug_mode("warn")`` no synchronizing CUDA call inside a step (commit phase)."""
    import warnings

    import pytorch_lightning as pl

    from uboost.hardware import create
    from uboost.strategy import UBoost, run_experiment

    from tests.strategy.spaces import TaskNeutralSpace
    from tests.strategy.test_budget import window_with_one_expensive_op
    from tests.strategy.test_uboost import evaluator

    class Debug(pl.Callback):
        def __init__(self):
            self.caught, self.record = [], None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if 2 <= batch_idx < 10 and batch_idx % 5:  # steady state; not the steps that log export_probs
                self.record = warnings.catch_warnings(record=True)
                self.caught.append(self.record.__enter__())
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")

        def on_train_batch_end(self, trainer, *args):
            if self.record is not None:
                torch.cuda.set_sync_debug_mode("default")
                self.record.__exit__(None, None, None)
                self.record = None

    model = create("systolic", rows=8, cols=8)
    debug = Debug()
    ev = evaluator(n=16 * 12, epochs=1, callbacks=[debug], accelerator="gpu", devices=1)
    strategy = UBoost(cost_model=model, sampling=sampling, data_split=None, log_prob_every_n_step=5,
                      target_latency_ms=window_with_one_expensive_op(model), budget_commit=0.5)
    run_experiment(TaskNeutralSpace(), ev, strategy, workdir=tmp_path)
    syncs = [str(w.message) for step in debug.caught for w in step if "synchroniz" in str(w.message)]
    assert len(debug.caught) == 7 and not syncs, syncs[:5]

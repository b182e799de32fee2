"""Issue 13, items 7 and 9: --resume never silently changes or loses a run."""

import json

from tests.reliability.conftest import TINY, one_line_error, tree


def test_resume_finishes_a_run_killed_after_its_last_checkpoint(cli, run_copy, fits):
    arch = json.loads((run_copy / "arch.json").read_text())
    alphas = json.loads((run_copy / "alphas.json").read_text())
    val_acc = json.loads((run_copy / "result.json").read_text())["val_acc"]
    for name in ("arch.json", "alphas.json", "result.json", "hardware.json", "hardware.txt"):
        (run_copy / name).unlink(missing_ok=True)  # a kill after the last epoch's checkpoint, before the results
    result = cli("search", "--out", run_copy, "--resume")
    assert result.code == 0, result.err
    assert sum(entry["batches"] for entry in fits) == 0  # every epoch was trained: nothing again
    assert json.loads((run_copy / "alphas.json").read_text()) == alphas  # the checkpoint's, not a new start's
    assert json.loads((run_copy / "arch.json").read_text()) == arch
    assert json.loads((run_copy / "result.json").read_text())["val_acc"] == val_acc
    assert (run_copy / "hardware.txt").is_file()


def test_resume_refuses_changed_settings_in_one_line(cli, run_copy):
    before = tree(run_copy)
    one_line_error(cli("search", "--out", run_copy, "--resume", "--epochs", "3", "--array", "8x8"),
                   "epochs 1 -> 3", "array '16x16' -> '8x8'", "--force")
    one_line_error(cli("search", "--out", run_copy, "--resume", "--space", "darts-cifar", "--width", "4"), "space 'lenet'")
    assert tree(run_copy) == before
    # repeating the stored values is fine
    result = cli("search", "--out", run_copy, "--resume", "--epochs", "1", "--space", "lenet")
    assert "differ" not in result.err


def test_resume_with_a_checkpoint_of_another_space_is_one_line_and_keeps_the_run(cli, run_copy, tmp_path):
    other = tmp_path / "other"
    assert cli("search", "--space", "darts-cifar", "--width", "4", "--cells", "3", "--dataset", "digits", "--image-size", "8",
               "--epochs", "1", "--max-samples", "64", "--batch-size", "32", "--out", other).code == 0
    for name in ("arch.json", "result.json"):
        (run_copy / name).unlink()  # an unfinished lenet run ...
    for ckpt in (run_copy / "checkpoints").glob("*.ckpt"):
        ckpt.write_bytes((other / "checkpoints" / "last.ckpt").read_bytes())  # ... whose checkpoint came from darts-cifar
    before = tree(run_copy)
    one_line_error(cli("search", "--out", run_copy, "--resume"), "does not belong to this run's lenet supernet", "--force")
    assert tree(run_copy) == before  # no exception checkpoint, nothing else written


def test_a_resume_with_nothing_left_to_train_exports_what_the_uninterrupted_run_did(tmp_path, fits):
    """Killed after the last epoch's checkpoint, before the results: the resume trains no step, so nothing attached
    the hardware loss, and the run got NNI's plain argmax (no budget projection, no bits) and no alphas.json or
    probabilities.json (a frontier of it was refused)."""
    from uboost.frontier import load_projector
    from uboost.search import SearchConfig, run_search

    config = SearchConfig(space="lenet", dataset="digits", image_size=8, epochs=1, max_samples=64, batch_size=32,
                          bits=(2, 8), seed=1)
    run_search(config, tmp_path / "free")
    cheapest = load_projector(tmp_path / "free").projector.cheapest().latency_ms
    config = config.replace(target_latency_ms=1.2 * cheapest)
    run_search(config, tmp_path / "whole")
    run_search(config, tmp_path / "cut")
    kept = ("arch.json", "alphas.json", "probabilities.json", "precision.json", "result.json")
    for name in (*kept, "hardware.json", "hardware.txt"):
        (tmp_path / "cut" / name).unlink(missing_ok=True)
    start = len(fits)
    run_search(config, tmp_path / "cut", resume=True)
    assert sum(entry["batches"] for entry in fits[start:]) == 0
    for name in kept:
        whole, cut = (json.loads((tmp_path / run / name).read_text()) for run in ("whole", "cut"))
        if name == "result.json":
            whole, cut = ({k: v for k, v in r.items() if "seconds" not in k} for r in (whole, cut))
        assert cut == whole, name
    assert json.loads((tmp_path / "cut" / "result.json").read_text())["projected"]  # the budget moved the argmax


def test_a_search_killed_while_writing_its_results_is_unfinished_not_a_network(cli, tmp_path, monkeypatch):
    """arch.json was written first: a search killed before its precision.json was read as a finished 8-bit network
    (profile priced it 38 % too high, retrain trained it in floating point and called it done)."""
    import uboost.search
    from uboost import io

    def killed_at_result(path, *args, **kwargs):
        if path.name == "result.json":
            raise KeyboardInterrupt  # as a kill between the result files
        return io.write_json(path, *args, **kwargs)

    monkeypatch.setattr(uboost.search, "write_json", killed_at_result)
    out = tmp_path / "bits"
    assert cli("search", *TINY, "--bits", "4,8", "--out", out).code == 130
    monkeypatch.undo()
    assert (out / "precision.json").is_file() and not (out / "arch.json").exists()
    for command in (("profile", out), ("retrain", out, "--epochs", "1"), ("export", out)):
        one_line_error(cli(*command), "did not finish", "--resume")
    result = cli("search", "--out", out, "--resume")
    assert result.code == 0, result.err
    assert (out / "arch.json").is_file() and (out / "result.json").is_file()
    assert cli("profile", out).code == 0


def test_an_export_killed_while_writing_its_results_is_not_a_network(cli, tiny_run, tmp_path, monkeypatch):
    """The same for a budget export (a frontier point): arch.json is its last file."""
    import uboost.frontier
    from uboost import io

    def killed_at_result(path, *args, **kwargs):
        if path.name == "result.json":
            raise KeyboardInterrupt
        return io.write_json(path, *args, **kwargs)

    cheapest = uboost.frontier.load_projector(tiny_run).projector.cheapest().latency_ms
    monkeypatch.setattr(uboost.frontier, "write_json", killed_at_result)
    out = tmp_path / "point"
    assert cli("export", tiny_run, "--target-latency-ms", cheapest * 1.5, "--out", out).code != 0
    monkeypatch.undo()
    assert (out / "hardware.json").is_file() and not (out / "arch.json").exists()
    one_line_error(cli("profile", out), "did not finish")


def test_resume_may_name_the_accelerator_as_it_may_the_devices(cli, run_copy, fits):
    """`--accelerator cpu` on a run started with auto was refused ("accelerator 'auto' -> 'cpu'"): where a run
    trains is a launch setting, as the number of devices (the stored settings stay)."""
    stored = json.loads((run_copy / "config.json").read_text())["accelerator"]
    other = "cpu" if stored != "cpu" else "auto"
    for name in ("arch.json", "alphas.json", "result.json", "hardware.json", "hardware.txt"):
        (run_copy / name).unlink(missing_ok=True)
    result = cli("search", "--out", run_copy, "--resume", "--accelerator", other)
    assert result.code == 0, result.err
    assert (run_copy / "arch.json").is_file()
    assert json.loads((run_copy / "config.json").read_text())["accelerator"] == stored

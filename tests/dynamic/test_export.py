"""``uboost export --format onnx`` of a dynamic network: onnxruntime reproduces the torch model's decisions."""

import numpy as np
import pytest
import torch

from tests.cli.conftest import one_line_error
from uboost.dynamic.pipeline import ExitsConfig, run_exits
from uboost.dynamic.pipeline_io import load_dynamic
from uboost.exceptions import RunDirError
from uboost.dynamic.policy import ExitPolicy, decide_outputs, softmax_confidence
from uboost.io import write_json

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exits_dir(retrained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "exits"
    run_exits(retrained_run, ExitsConfig(epochs=2, max_samples=128, grid=(0.5, 0.9)), out=out, onnx=True)
    return out


def inputs(n=40):
    from uboost.data import load_datasets

    _, test = load_datasets("digits", augment=False, image_size=8, channels=1)
    return torch.stack([test[i][0] for i in range(n)])


def mixed_point(exits_dir, x) -> ExitPolicy:
    """A policy whose thresholds send some of ``x`` out at each head and the rest to the end, written as a point."""
    network = load_dynamic(exits_dir)
    with torch.no_grad():
        *heads, _ = network.all_exits(x)
    conf = [softmax_confidence(h.numpy())[0] for h in heads]
    thresholds = [float(np.quantile(c, 0.7)) for c in conf]  # the 30 % most confident leave at each head
    base = ExitPolicy.load(exits_dir / "points" / "p00.json")
    policy = ExitPolicy(positions=base.positions, thresholds=thresholds, freq_hz=base.freq_hz, voltage_v=base.voltage_v)
    write_json(exits_dir / "points" / "p90.json", policy.to_dict())
    return policy


def test_the_exits_directory_exports_one_graph_whose_outputs_give_the_torch_decisions(exits_dir, tmp_path, cli):
    x = inputs()
    policy = mixed_point(exits_dir, x)
    result = cli("export", exits_dir, "--format", "onnx")
    assert result.code == 0, result.err + result.out
    session = ort.InferenceSession(str(exits_dir / "model.onnx"))
    outputs = session.run(None, {"input": x.numpy()})
    network = load_dynamic(exits_dir, policy)
    assert [o.name for o in session.get_outputs()] == [f"exit{k}" for k in range(network.exits)] + ["final"]
    with torch.no_grad():
        every = network.all_exits(x)
        logits, taken = network.forward_with_exits(x)
    for got, want in zip(outputs, every):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)
    preds, exits = decide_outputs(outputs, policy.thresholds)
    assert exits.tolist() == taken.tolist() and len(set(exits.tolist())) > 1  # some leave early, some do not
    assert preds.tolist() == logits.argmax(1).tolist()
    # `uboost exits --onnx` writes the same graph
    again = ort.InferenceSession(str(exits_dir / "dynamic.onnx")).run(None, {"input": x.numpy()})
    for a, b in zip(again, outputs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_point_exports_per_segment_graphs_that_onnxruntime_runs_like_the_torch_model(exits_dir, cli):
    from uboost.dynamic.export import run_exported

    x = inputs()
    policy = mixed_point(exits_dir, x)
    result = cli("export", exits_dir / "points" / "p90.json", "--format", "onnx")
    assert result.code == 0, result.err + result.out
    target = exits_dir / "onnx-p90"
    kept = sum(policy.kept)
    assert sorted(p.name for p in target.iterdir()) == ["policy.json"] + [f"segment{s}.onnx" for s in range(kept + 1)]
    preds, exits, ran = run_exported(target, x.numpy())
    network = load_dynamic(exits_dir, policy)
    with torch.no_grad():
        logits, taken = network.forward_with_exits(x)
    assert exits.tolist() == taken.tolist() and preds.tolist() == logits.argmax(1).tolist()
    assert ran == kept + 1
    confident = x[taken == 0]  # inputs that all leave at the first head: the later graphs never run
    assert len(confident) and run_exported(target, confident.numpy())[2] == 1
    again = cli("export", exits_dir / "points" / "p90.json", "--format", "onnx")
    assert again.code == 0, again.err  # its own earlier export is replaced without --force


def test_bad_dynamic_exports_are_one_line_and_write_nothing(exits_dir, tmp_path, cli):
    one_line_error(cli("export", exits_dir / "points" / "p77.json", "--format", "onnx"), "p77.json is not a point", "p00")
    assert not (exits_dir / "onnx-p77").exists()
    one_line_error(cli("export", exits_dir, "--out", tmp_path / "m.json"), "ONNX only", "--format onnx")
    one_line_error(cli("export", exits_dir, "--format", "onnx", "--target-latency-ms", "1"), "already chosen")
    (tmp_path / "taken.onnx").write_text("someone else's")
    one_line_error(cli("export", exits_dir, "--format", "onnx", "--out", tmp_path / "taken.onnx"), "already exists", "--force")
    assert (tmp_path / "taken.onnx").read_text() == "someone else's"
    assert not (tmp_path / "m.json").exists()


def test_a_head_pools_to_a_grid_no_larger_than_its_feature_map():
    from uboost.dynamic.heads import build_heads

    heads = build_heads([(4, 4, 4), (6, 1, 1)], 10, width=0, pool=2)
    assert [h[-1].in_features for h in heads] == [4 * 2 * 2, 6]  # 2x2 grid; a 1x1 map keeps its one cell
    assert heads[0](torch.randn(3, 4, 4, 4)).shape == (3, 10)
    conv = build_heads([(4, 4, 4)], 10, width=8, pool=2)[0]
    assert conv[-1].in_features == 8 * 4


def test_a_jointly_trained_backbone_is_saved_and_exported_with_its_heads(retrained_run, tmp_path):
    """``--training joint`` moves the backbone: the exported network must be that backbone, not the retrained one."""
    from uboost.dynamic.pipeline import measure

    out = tmp_path / "joint"
    summary = run_exits(retrained_run, ExitsConfig(epochs=2, max_samples=128, grid=(0.5,), training="joint", learning_rate=0.05),
                        out=out)
    saved = torch.load(out / "heads.pt", weights_only=False)
    retrained = torch.load(retrained_run / "retrain" / "model.pt", weights_only=False)
    assert any(not torch.equal(saved["backbone_state_dict"][k], v) for k, v in retrained.items())
    network = load_dynamic(out)
    loaded = network.backbone.graph_module.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in saved["backbone_state_dict"].items() if k in loaded)
    from uboost.data import load_datasets

    _, test = load_datasets("digits", augment=False, image_size=8, channels=1)
    accuracy, _ = measure(network, test, [None] * network.exits, 64)
    assert accuracy == pytest.approx(summary["static_test"][0]["accuracy"])  # the static row was scored with that backbone


def test_exits_again_without_onnx_removes_the_earlier_graph_of_other_heads(retrained_run, tmp_path):
    out = tmp_path / "exits"
    run_exits(retrained_run, ExitsConfig(epochs=1, max_samples=64, grid=(0.5,)), out=out, onnx=True)
    assert (out / "dynamic.onnx").is_file()
    from uboost.exceptions import ConfigError

    with pytest.raises(ConfigError, match="other settings"):  # the API refuses as the CLI does (it replaced them)
        run_exits(retrained_run, ExitsConfig(epochs=1, max_samples=64, grid=(0.5,), seed=1), out=out)
    assert (out / "dynamic.onnx").is_file()
    run_exits(retrained_run, ExitsConfig(epochs=1, max_samples=64, grid=(0.5,), seed=1), out=out, force=True)
    assert not (out / "dynamic.onnx").exists() and (out / "heads.pt").is_file()


def test_exits_again_removes_the_graphs_exported_from_the_earlier_heads(retrained_run, tmp_path, cli):
    """`uboost export` wrote model.onnx and onnx-pNN/ from the heads being replaced: kept, they decided otherwise
    than the new heads (247 of 360 exits) while README says model.onnx reproduces every point."""
    out = tmp_path / "exits"
    run_exits(retrained_run, ExitsConfig(epochs=1, max_samples=64, grid=(0.5,)), out=out)
    assert cli("export", out, "--format", "onnx").code == 0
    assert cli("export", out / "points" / "p00.json", "--format", "onnx").code == 0
    assert (out / "model.onnx").is_file() and (out / "onnx-p00").is_dir()
    (out / "mine.onnx").write_bytes(b"a user's file")
    run_exits(retrained_run, ExitsConfig(epochs=1, max_samples=64, grid=(0.5,), seed=1), out=out, force=True)
    assert not (out / "model.onnx").exists() and not (out / "onnx-p00").exists()
    assert (out / "mine.onnx").read_bytes() == b"a user's file"


def test_exits_of_a_model_retrained_since_are_refused_by_every_reader(retrained_run, tmp_path, cli):
    """A `retrain --force` replaced the model the heads were trained on: switch, export and load_dynamic
    used the old heads and points on the new backbone (32.8 % measured where p00 said 88.1 %)."""
    import shutil

    from uboost.dynamic import Switcher
    from uboost.exceptions import RunDirError

    run = tmp_path / "run"
    shutil.copytree(retrained_run, run)
    out = run / "exits"
    run_exits(run, ExitsConfig(epochs=1, max_samples=64, grid=(0.5,)), out=out)
    load_dynamic(out)  # the model it was trained on: fine
    Switcher.from_directory(out)
    state = torch.load(run / "retrain" / "model.pt", weights_only=False)
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = state[first] + 1.0
    torch.save(state, run / "retrain" / "model.pt")  # what a retrain --force leaves
    for call in (lambda: load_dynamic(out), lambda: Switcher.from_directory(out)):
        with pytest.raises(RunDirError, match="earlier retrain"):
            call()
    one_line_error(cli("export", out, "--format", "onnx"), "earlier retrain", "--force")
    assert not (out / "model.onnx").exists()
    one_line_error(cli("switch", out, "--latency-ms", "1"), "earlier retrain")


def test_exits_of_a_network_with_searched_bits_refuse_onnx_in_one_line_before_writing(retrained_run, tmp_path, cli):
    """It was a 168 kB traceback (ONNX's QuantizeLinear range) after exits.json and the points were written."""
    import shutil

    from uboost.dynamic.export import refuse_quantized
    from uboost.exceptions import ConfigError

    run = tmp_path / "run"
    shutil.copytree(retrained_run, run)
    out = run / "exits"
    run_exits(run, ExitsConfig(epochs=1, max_samples=64, grid=(0.5,)), out=out)
    (run / "precision.json").write_text('{"conv1": {"weight_bits": 4, "act_bits": 4}}')
    with pytest.raises(ConfigError, match="searched bits"):
        refuse_quantized(run)
    one_line_error(cli("export", out, "--format", "onnx"), "searched bits", "uboost export RUN --format onnx")
    one_line_error(cli("export", out / "points" / "p00.json", "--format", "onnx"), "searched bits")
    assert not (out / "model.onnx").exists() and not (out / "onnx-p00").exists()


def test_exits_keep_the_runs_own_static_export(retrained_run, tmp_path, cli):
    """`exits RUN --out RUN` deleted RUN/model.onnx (the static network's export) as a graph of earlier heads,
    and a later `export RUN --format onnx` wrote the all-exits graph in its place."""
    import shutil

    from tests.reliability.conftest import tree

    run = tmp_path / "run"
    shutil.copytree(retrained_run, run)
    assert cli("export", run, "--format", "onnx").code == 0 and (run / "model.onnx").is_file()
    before = tree(run)
    for out in (run, run / "retrain"):
        one_line_error(cli("exits", run, "--epochs", "1", "--max-samples", "64", "--out", out), "is a run directory",
                       f"default {run / 'exits'}")
    assert tree(run) == before
    # an export in a folder without earlier exits is another network's: exits are not written beside it (a later
    # `exits --force` there would clear them together, and `switch` would read a folder of two commands' results)
    static = run / "static" / "model.onnx"
    assert cli("export", run, "--format", "onnx", "--out", static).code == 0
    graph = static.read_bytes()
    with pytest.raises(RunDirError, match="already holds files that are not exits"):
        run_exits(run, ExitsConfig(epochs=1, max_samples=64, grid=(0.5,)), out=static.parent)
    assert static.read_bytes() == graph and not (static.parent / "exits.json").exists()


def test_exits_refuse_a_folder_of_other_results_or_a_users_policy_file(retrained_run, tmp_path, cli):
    """QA: `exits --out DIR` replaced a user's DIR/points/p00.json, and wrote exits into a frontier folder (switch then
    read the exits instead of the frontier) or into an export folder (a later `exits --force` deleted both)."""
    from tests.reliability.conftest import tree

    mine = tmp_path / "mine"
    (mine / "points").mkdir(parents=True)
    (mine / "points" / "p00.json").write_text("mine\n")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("notes\n")
    for out in (mine, other):
        before = tree(out)
        one_line_error(cli("exits", retrained_run, "--epochs", "1", "--max-samples", "64", "--out", out),
                       "already holds files that are not exits")
        assert tree(out) == before
    kept = tmp_path / "kept"  # a folder kept in version control (.gitkeep) or with an empty subfolder is empty enough
    (kept / "empty").mkdir(parents=True)
    (kept / ".gitkeep").write_text("")
    assert cli("exits", retrained_run, "--epochs", "1", "--max-samples", "64", "--out", kept).code == 0
    assert (kept / "exits.json").is_file() and (kept / ".gitkeep").is_file()


def test_exits_made_with_relative_paths_catch_a_replaced_model_from_any_directory(retrained_run, tmp_path, cli, monkeypatch):
    """exits.json kept the run as typed ("run"): from another directory the run was not found and the
    fingerprint check skipped, so `switch` served points of heads trained on a replaced model (rc 0)."""
    import json
    import shutil

    shutil.copytree(retrained_run, tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    run_exits("run", ExitsConfig(epochs=1, max_samples=64, grid=(0.5,)), out="dex")
    dex, summary_path = tmp_path / "dex", tmp_path / "dex" / "exits.json"
    assert json.loads(summary_path.read_text())["run"] == str((tmp_path / "run").resolve())
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert cli("switch", dex, "--latency-ms", "1").code == 0  # the same model: served from anywhere
    state = torch.load(tmp_path / "run" / "retrain" / "model.pt", weights_only=False)
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = state[first] + 1.0
    torch.save(state, tmp_path / "run" / "retrain" / "model.pt")  # what a retrain --force leaves
    one_line_error(cli("switch", dex, "--latency-ms", "1"), "earlier retrain")
    one_line_error(cli("export", dex, "--format", "onnx"), "earlier retrain")
    summary = json.loads(summary_path.read_text())
    summary_path.write_text(json.dumps({**summary, "run": "run"}))  # an older exits.json, relative to where it was made
    one_line_error(cli("switch", dex, "--latency-ms", "1"), "earlier retrain")
    summary_path.write_text(json.dumps({**summary, "run": str(tmp_path / "gone")}))  # a run not found: refused, not skipped
    one_line_error(cli("switch", dex, "--latency-ms", "1"), "has no retrained model", "uboost exits RUN --out")
    one_line_error(cli("export", dex, "--format", "onnx"), "has no retrained model")
    assert not (dex / "model.onnx").exists()


def test_a_points_export_never_replaces_a_run_nor_a_folder_of_runs(exits_dir, retrained_run, tmp_path, cli):
    """A point exports to a directory that --force replaced whole: a search run, or a folder holding one, went."""
    import shutil

    from tests.reliability.conftest import tree

    runs_folder = tmp_path / "runs"
    shutil.copytree(retrained_run, runs_folder / "run")
    before = tree(runs_folder)
    point = exits_dir / "points" / "p00.json"
    one_line_error(cli("export", point, "--format", "onnx", "--out", runs_folder / "run", "--force"),
                   "holds the results of uboost search")
    one_line_error(cli("export", point, "--format", "onnx", "--out", runs_folder, "--force"), "holds the results of uboost")
    assert tree(runs_folder) == before


def test_a_points_export_with_force_keeps_the_users_files_in_its_folder(exits_dir, tmp_path, cli):
    """--force clears only what uboost's earlier export of that point wrote there: a user's files stay; a symbolic
    link as --out is refused in one line."""
    point = exits_dir / "points" / "p00.json"
    for out in (tmp_path / "mine", exits_dir / "onnx-p00"):  # outside the run, and the default inside it
        out.mkdir(parents=True, exist_ok=True)
        (out / "notes.txt").write_text("precious")
        (out / "keep.onnx").write_bytes(b"mine")
        for _ in range(2):  # the second replaces the first's graphs
            result = cli("export", point, "--format", "onnx", "--out", out, "--force")
            assert result.code == 0, result.err + result.out
            assert (out / "notes.txt").read_text() == "precious" and (out / "keep.onnx").read_bytes() == b"mine"
            assert (out / "policy.json").is_file() and (out / "segment0.onnx").is_file()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "mine")
    one_line_error(cli("export", point, "--format", "onnx", "--out", link, "--force"), "symbolic link")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"


def test_a_points_export_with_force_never_clears_the_runs_retrain(retrained_run, tmp_path, cli):
    """The retrain's own ONNX export (uboost's, beside it) does not make RUN/retrain a folder a point may clear."""
    import json
    import shutil

    from tests.reliability.conftest import tree

    run = tmp_path / "e1"
    shutil.copytree(retrained_run, run)
    info = json.loads((run / "retrain" / "retrain.json").read_text())
    info.update(source=str(run), source_path=str(run))  # the retrain of this run, where it is
    (run / "retrain" / "retrain.json").write_text(json.dumps(info))
    run_exits(run, ExitsConfig(epochs=1, max_samples=64, grid=(0.5,), seed=1), out=run / "exits")
    assert cli("export", run / "retrain", "--format", "onnx").code == 0
    before = tree(run / "retrain")
    point = sorted((run / "exits" / "points").glob("p*.json"))[0]
    one_line_error(cli("export", point, "--format", "onnx", "--out", run / "retrain", "--force"),
                   "holds the results of uboost retrain")
    assert tree(run / "retrain") == before


def test_a_copied_run_reads_its_own_exits_not_the_originals(retrained_run, tmp_path, cli):
    """exits.json named the original run (absolute): in a copy, `export` refused the copy's own heads as "not
    written by uboost", and after the copy was retrained `switch` still accepted its stale heads (the original's
    model matched them)."""
    import shutil

    from uboost.dynamic.pipeline_io import read_summary, run_of

    run = tmp_path / "run"
    shutil.copytree(retrained_run, run)
    run_exits(run, ExitsConfig(epochs=1, max_samples=64, grid=(0.5,)), out=run / "exits")
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    assert run_of(copy / "exits", read_summary(copy / "exits")) == copy.resolve()
    result = cli("export", copy / "exits", "--format", "onnx", "--out", tmp_path / "copy.onnx")
    assert result.code == 0, result.err
    assert (tmp_path / "copy.onnx").is_file()
    state = torch.load(copy / "retrain" / "model.pt", weights_only=False)
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = state[first] + 1.0
    torch.save(state, copy / "retrain" / "model.pt")  # the copy retrained since; the original still fits its heads
    one_line_error(cli("switch", copy / "exits", "--latency-ms", "1"), "earlier retrain", str(copy))
    assert cli("switch", run / "exits", "--latency-ms", "1").code == 0

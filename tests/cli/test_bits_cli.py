"""Mixed precision from the command line: search --bits, retrain quantization-aware, profile --pe/--bits,
export ONNX (frozen layers on their integer codes) equal to the fake-quantized torch model, and bad input."""

import json
import shutil

import pytest
import torch

from tests.cli.conftest import TINY, one_line_error

BITS = [*TINY, "--bits", "2,4,8", "--pe", "bitfusion", "--array", "8x8", "--pin-bits", "fc2=8"]


@pytest.fixture(scope="module")
def bits_run(tmp_path_factory):
    from uboost.cli import main

    out = tmp_path_factory.mktemp("bits") / "run"
    try:
        main(["search", *BITS, "--out", str(out)])
    except SystemExit as exc:
        assert not exc.code
    return out


def test_search_writes_the_bits_per_layer_and_prices_them(bits_run):
    precision = json.loads((bits_run / "precision.json").read_text())
    arch = json.loads((bits_run / "arch.json").read_text())
    assert not any(":" in k for k in arch)  # NNI's architecture only
    assert set(precision) == {"conv1", "conv2", "fc1", "fc2"} and precision["fc2"] == {"weight_bits": 8, "act_bits": 8}
    assert all(v["weight_bits"] == v["act_bits"] in (2, 4, 8) for v in precision.values())
    layers = json.loads((bits_run / "hardware.json").read_text())["layers"]
    assert {l["name"]: {"weight_bits": l["weight_bits"], "act_bits": l["act_bits"]} for l in layers} == precision
    config = json.loads((bits_run / "config.json").read_text())
    assert config["bits"] == [2, 4, 8] and config["pe"] == "bitfusion" and config["pin_bits"] == {"fc2": 8}


def test_profile_prices_the_run_at_its_bits_or_at_bits(cli, bits_run):
    precision = json.loads((bits_run / "precision.json").read_text())
    own = json.loads(cli("profile", bits_run, "--array", "8x8", "--pe", "bitfusion", "--json").out)["reports"][0]
    assert {l["name"]: l["weight_bits"] for l in own["layers"]} == {k: v["weight_bits"] for k, v in precision.items()}
    searched = json.loads((bits_run / "hardware.json").read_text())
    assert own["total"]["cycles"] == searched["total"]["cycles"]
    assert json.loads(cli("profile", bits_run, "--array", "8x8", "--json").out)["model"].endswith(" at its searched bits")
    pages = {b: json.loads(cli("profile", bits_run, "--array", "8x8", "--pe", "bitfusion", "--bits", b, "--json").out)
             for b in (2, 8)}
    assert pages[2]["model"] == f"{bits_run.name} (lenet) at 2 bits"  # not "at its searched bits"
    at = {b: page["reports"][0] for b, page in pages.items()}
    assert {l["weight_bits"] for l in at[2]["layers"]} == {2}
    assert at[2]["total"]["cycles"] < at[8]["total"]["cycles"]
    fixed = json.loads(cli("profile", bits_run, "--array", "8x8", "--pe", "fixed", "--bits", "2", "--json").out)["reports"][0]
    assert fixed["total"]["cycles"] == at[8]["total"]["cycles"]  # fixed PEs: compute does not depend on bits


def test_retrain_is_quantization_aware_and_onnx_equals_the_fake_quant_model(cli, bits_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(bits_run, run)
    result = cli("retrain", run, "--epochs", "1", "--max-samples", "128", "--array", "8x8")
    assert result.code == 0, result.err
    report = json.loads((run / "retrain" / "retrain.json").read_text())
    assert report["quantized"] is True and 0.0 <= report["test_acc"] <= 1.0
    state = torch.load(run / "retrain" / "model.pt", weights_only=True)
    assert any(k.endswith("parametrizations.weight.original") for k in state) and any(k.endswith("act_max") for k in state)

    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    target = tmp_path / "m.onnx"
    assert cli("export", run, "--format", "onnx", "--out", target).code == 0
    import onnx

    ops = {n.op_type for n in onnx.load(str(target)).graph.node}
    assert {"Round", "Clip", "DequantizeLinear"} <= ops  # codes: Mul + Round + Clip; int8 weights behind DequantizeLinear
    from uboost.networks import load_frozen_network

    network = load_frozen_network(run).module
    network.load_state_dict(state)
    network.eval()
    # onnxruntime's default session, every optimization on: the frozen layers run on their integer codes
    # (uboost.quant_integer), whose sums are exact in any order (README, mixed precision)
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(0)
    for batch in (1, 5):
        x = torch.randn(batch, 1, 8, 8, generator=g) * 3
        with torch.no_grad():
            expected = network(x)
        got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
        assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()
    # the standard QDQ form, for quantization toolchains: QuantizeLinear around float layers, no integer codes
    qdq = tmp_path / "qdq.onnx"
    assert cli("export", run, "--format", "onnx", "--onnx-form", "qdq", "--out", qdq).code == 0
    def count(path, op):
        return sum(n.op_type == op for n in onnx.load(str(path)).graph.node)

    # activations as QuantizeLinear too (exact: weights only), batch norms as BatchNormalization (exact: Mul + Add)
    assert count(qdq, "QuantizeLinear") > count(target, "QuantizeLinear") > 0
    assert count(qdq, "BatchNormalization") > 0 == count(target, "BatchNormalization")
    options = ort.SessionOptions()
    options.add_session_config_entry("session.disable_quant_qdq", "1")  # float kernels: no near-tie at fused ones
    session = ort.InferenceSession(str(qdq), options, providers=["CPUExecutionProvider"])
    x = torch.randn(5, 1, 8, 8, generator=g) * 3
    with torch.no_grad():
        expected = network(x)
    assert torch.allclose(torch.from_numpy(session.run(None, {"input": x.numpy()})[0]), expected, atol=1e-4)
    one_line_error(cli("export", run, "--format", "onnx", "--onnx-form", "int4", "--out", tmp_path / "bad.onnx"), "--onnx-form")
    assert not (tmp_path / "bad.onnx").exists()
    one_line_error(cli("export", run, "--format", "torchscript", "--onnx-form", "qdq", "--out", tmp_path / "m.pt"), "--format onnx")
    assert not (tmp_path / "m.pt").exists()
    # the quantization matters: the float network computes something else
    from uboost.search_spaces import create

    plain = create("lenet", input_shape=(1, 8, 8)).freeze(json.loads((run / "arch.json").read_text())).eval()
    assert not any(k.endswith("act_max") for k in plain.state_dict())


@pytest.mark.parametrize("flags,fragment", [
    (["--bits", "0"], "from 2 to 16"),
    (["--bits", "1.5"], "from 2 to 16"),
    (["--bits", "33"], "from 2 to 16, got 33"),  # as typed, not 33.0
    (["--bits", "inf"], "from 2 to 16, got inf"),  # was an OverflowError traceback
    (["--bits", "4,nan"], "from 2 to 16, got nan"),
    (["--bits", ""], "at least one"),
    (["--bits", "2,x"], "comma-separated"),
    (["--bits", "2,,8"], "--bits has an empty entry in '2,,8'"),  # was searched as 2,8
    (["--bits", "4,8,"], "--bits has an empty entry"),
    (["--bits", ",4"], "--bits has an empty entry"),
    (["--weight-bits", "4,,8"], "--weight-bits has an empty entry"),
    (["--act-bits", "8,"], "--act-bits has an empty entry"),
    (["--bits", "2,2"], "lists 2 twice"),  # a typo for 2,4 is not a one-width search
    (["--weight-bits", "4,8,4.0"], "--weight-bits lists 4 twice"),
    (["--bits", "4,16", "--pe", "bitfusion"], "at most 8 bits"),
    (["--pe", "simd"], "unknown PE mode"),
    (["--bits", "4", "--weight-bits", "8"], "not both"),
    (["--pin-bits", "fc2=8"], "needs a precision search"),
    (["--bits", "4,8", "--pin-bits", "fc2"], "PATTERN=BITS"),
    (["--bits", "4,8", "--pin-bits", "stem*=8"], "matches no Conv2d/Linear"),  # was found after the run dir was written
    (["--cost-model", "scalesim", "--sram-kb", "8", "--dram-bw-words", "2.5"], "whole number of DRAM words"),
    (["--cost-model", "scalesim", "--sram-kb", "8", "--dram-bw-words", "4", "--weight-bits", "4,8"], "one word size"),
])
def test_bad_precision_input_is_one_red_line_and_writes_nothing(cli, tmp_path, flags, fragment):
    out = tmp_path / "never"
    one_line_error(cli("search", *TINY, *flags, "--out", out), fragment)
    assert not out.exists()


def test_profile_bad_pe_and_bits(cli, bits_run):
    one_line_error(cli("profile", bits_run, "--pe", "simd"), "unknown PE mode")
    one_line_error(cli("profile", bits_run, "--pe", "bitfusion", "--bits", "16"), "at most 8 bits")
    one_line_error(cli("profile", bits_run, "--bits", "1"), "from 2 to 16")
    # the parser and message of search/tune, not typer's "Input should be a valid integer"
    one_line_error(cli("profile", bits_run, "--bits", "1.5"), "error: --bits must be whole numbers from 2 to 16, got 1.5")
    one_line_error(cli("profile", bits_run, "--bits", "2,,8"), "--bits has an empty entry")
    one_line_error(cli("profile", bits_run, "--bits", "4,8"), "--bits prices every layer at one width here")


def test_a_precision_json_that_does_not_fit_is_refused_before_anything_is_written(cli, bits_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(bits_run, run)
    shutil.rmtree(run / "retrain", ignore_errors=True)
    precision = json.loads((run / "precision.json").read_text())
    precision["conv9"] = precision.pop("conv1")
    (run / "precision.json").write_text(json.dumps(precision))
    one_line_error(cli("retrain", run, "--epochs", "1"), "does not fit the network")
    assert not (run / "retrain").exists()
    one_line_error(cli("export", run, "--format", "onnx", "--out", tmp_path / "m.onnx"), "does not fit the network")
    assert not (tmp_path / "m.onnx").exists()
    (run / "precision.json").write_text(json.dumps({"conv1": {"weight_bits": 3}}))
    one_line_error(cli("profile", run), "needs exactly weight_bits and act_bits")


def test_a_budget_export_widens_every_layer_whose_wider_bits_cost_nothing(cli, bits_run, tmp_path):
    from uboost.frontier import load_projector
    from uboost.quant import apply_precision, read_precision
    from uboost.search_config import SearchConfig, build_cost_model, build_space

    source = load_projector(bits_run)
    target = source.projector.unconstrained().latency_ms * 2  # room: the projection is the argmax network
    out = tmp_path / "budget"
    assert cli("export", bits_run, "--target-latency-ms", target, "--out", out).code == 0
    precision = read_precision(out / "precision.json")
    config = SearchConfig.from_dict(json.loads((bits_run / "config.json").read_text()))
    model, shape = build_cost_model(config), tuple(build_space(config)[1])
    arch = json.loads((out / "arch.json").read_text())

    def latency(bits):
        return model.evaluate(apply_precision(build_space(config)[0].freeze(arch), bits), shape).latency_ms

    exported = latency(precision)
    assert exported <= target
    for layer, (w, a) in precision.items():
        for wider in (b for b in (2, 4, 8) if b > w):  # each narrower layer is narrow because wider costs more
            assert latency({**precision, layer: (wider, wider)}) > exported * (1 + 1e-9), (layer, wider)


def test_a_smooth_search_widens_its_bits_on_the_exact_cycles(cli, tmp_path):
    """Under ``--cost-mode smooth`` the search prices a smooth ceiling, but the export widens bits on the cycle-exact
    rows (widen_export, the projections' rule): every layer left narrower would cost more exact latency wider."""
    from uboost.quant import apply_precision, read_precision
    from uboost.search_config import SearchConfig, build_cost_model, build_space

    out = tmp_path / "smooth"
    assert cli("search", *BITS, "--cost-mode", "smooth", "--out", out).code == 0
    config = SearchConfig.from_dict(json.loads((out / "config.json").read_text()))
    assert config.cost_mode == "smooth"
    precision = read_precision(out / "precision.json")
    model, shape = build_cost_model(config), tuple(build_space(config)[1])
    arch = json.loads((out / "arch.json").read_text())

    def latency(bits):
        return model.evaluate(apply_precision(build_space(config)[0].freeze(arch), bits), shape).latency_ms

    exported = latency(precision)
    for layer, (w, a) in precision.items():
        for wider in (b for b in (2, 4, 8) if b > w):
            assert latency({**precision, layer: (wider, wider)}) > exported * (1 + 1e-9), (layer, wider)


def test_profile_names_the_pe_mode_and_shows_sub_ms_latency_in_us(cli, bits_run):
    result = cli("profile", bits_run, "--array", "8x8")
    assert result.code == 0, result.err
    text = " ".join(result.out.split())  # rich wraps the title
    assert "bitfusion PEs" in text  # the run's own PEs price it
    cycles = json.loads(cli("profile", bits_run, "--array", "8x8", "--json").out)["reports"][0]["total"]["cycles"]
    assert f"{cycles:,.0f} cycles = {cycles / 1e3:.4g} µs" in text  # at 1 GHz: not "0.0004 ms"
    fixed = " ".join(cli("profile", bits_run, "--array", "8x8", "--pe", "fixed").out.split())
    assert "PEs" not in fixed.split("┏")[0]  # the default PEs are not named


def test_latency_text_picks_the_unit():
    from uboost.tables import latency_text

    assert latency_text(0.000419) == "0.419 µs"
    assert latency_text(0.0123456) == "12.35 µs"
    assert latency_text(1.5) == "1.5 ms" and latency_text(999.5) == "999.5 ms" and latency_text(12345.0) == "12.35 s"
    assert latency_text(float("nan")) == "nan ms"


def test_edp_text_picks_the_unit():
    from uboost.tables import edp_text

    assert edp_text(0.001329) == "1.329 µJ*µs"  # lenet: 0.757 uJ over 1.756 us, not "0.001329 uJ*ms"
    assert edp_text(2.5) == "2.5 µJ*ms" and edp_text(0.9995) == "999.5 µJ*µs"
    assert edp_text(211_200.4) == "211,200 µJ*ms"  # QA: "2.112e+05"


def test_summaries_never_print_scientific_notation():
    from uboost.tables import number_text

    assert number_text(18_750.2) == "18,750" and number_text(2467.3) == "2467" and number_text(0.00336) == "0.00336"
    # QA: a leakage cell of 9.28e-05 µJ and "at 1e+06 MHz" (a 1 THz clock) were printed in tables
    assert number_text(9.2768e-05, 3) == "0.0000928" and number_text(0.5) == "0.5" and number_text(0) == "0"
    assert number_text(-0.000123456) == "-0.0001235" and number_text(9.99996, 3) == "10"
    from uboost.tables import mhz_text

    assert mhz_text(1e12) == "1,000,000" and mhz_text(9e8) == "900" and mhz_text(1.5e8) == "150"


def test_a_profile_on_a_terahertz_clock_prints_no_scientific_notation(cli):
    import re

    result = cli("profile", "resnet18", "--input", "3x32x32", "--array", "16x16", "--clock-hz", "1e12", "--sram-kb", "16")
    assert result.code == 0, result.err
    assert not re.search(r"\d[eE][-+]\d", result.out), result.out
    assert "1,000,000 MHz" in result.out


@pytest.mark.parametrize("changes, priced", [
    (dict(bits=(2, 4, 8)), False),  # fixed PEs, compute only: every width costs the same
    (dict(act_bits=(4, 8)), False),
    (dict(bits=(4, 8), cost_model="flops"), False),
    (dict(bits=(4, 8), sram_kb=16, dram_bw_words=4), False),  # a memory limit the compute-only model ignores
    (dict(bits=(2, 4, 8), pe="bitfusion"), True),
    (dict(bits=(4, 8), pe="bit-serial"), True),
    (dict(weight_bits=(4, 8), pe="bit-serial"), False),  # bit-serial steps count activation bits only
    (dict(act_bits=(4, 8), pe="bit-serial"), True),
    (dict(bits=(4, 8), sram_kb=16, dram_bw_words=4, cost_model="systolic-mem"), True),  # narrow operands stall less
    (dict(bits=(4, 8), energy_weight=1.0), True),  # the MAC energy depends on the bits
    (dict(bits=(4, 8), cost_model="scalesim"), False),  # CALC mode on fixed PEs: told without simulating
    (dict(bits=(4, 8), sram_kb=16, dram_bw_words=4, cost_model="scalesim"), True),  # the bits scale the memory
    (dict(), True),  # no bits searched: nothing to say
])
def test_bits_note_when_nothing_the_search_optimizes_depends_on_the_bits(changes, priced):
    from uboost.search import SearchConfig

    note = SearchConfig(space="lenet", **changes).bits_note()
    assert (note is None) == priced
    if note:
        assert "--pe bitfusion" in note and "systolic-mem" in note


def test_search_says_the_bits_note_once_and_not_on_bitfusion(cli, tmp_path):
    plain = cli("search", *TINY, "--bits", "4,8", "--out", tmp_path / "fixed")
    assert plain.code == 0, plain.err
    assert " ".join(plain.out.split()).count("cost every bitwidth the same") == 1
    fused = cli("search", *TINY, "--bits", "4,8", "--pe", "bitfusion", "--out", tmp_path / "bitfusion")
    assert fused.code == 0, fused.err
    assert "every bitwidth the same" not in " ".join(fused.out.split())


def test_torchscript_export_of_a_bits_run_runs_like_the_network(cli, bits_run, tmp_path):
    """Was a TracingCheckError traceback: the quantized graph caches its codes after the first call."""
    import warnings

    import torch

    from uboost.networks import load_frozen_network

    target = tmp_path / "m.pt"
    with warnings.catch_warnings(record=True) as seen:  # torch's two-line TracerWarning about the frozen ranges
        warnings.simplefilter("always")  # (constants by design; the numbers are checked below) is not printed
        result = cli("export", bits_run, "--format", "torchscript", "--out", target)
    assert result.code == 0, result.err
    assert not [w for w in seen if issubclass(w.category, torch.jit.TracerWarning)], [str(w.message) for w in seen]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.load(str(target))
    loaded = load_frozen_network(bits_run)
    network = loaded.module.eval()
    network.load_state_dict(traced.state_dict())  # the exported weights and ranges (untrained: random at export)
    x = torch.rand(6, *loaded.input_shape) * 2
    with torch.no_grad():
        assert torch.allclose(traced(x), network(x), atol=1e-5)


def test_torchscript_export_of_a_bits_run_on_one_thread(cli, bits_run, tmp_path):
    """With one torch thread the weights went through the numba kernel even while traced: a traceback
    ("Could not export Python function call '_FakeQuantWeight'") instead of the model."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = cli("export", bits_run, "--format", "torchscript", "--out", tmp_path / "one.pt")
    finally:
        torch.set_num_threads(threads)
    assert result.code == 0, result.err
    assert (tmp_path / "one.pt").stat().st_size > 0


@pytest.mark.parametrize("value, fragment", [(True, "one whole number"), ("2,4", "one whole number"),
                                             ([2, 4], "one whole number"), ([4], "one whole number")])
def test_a_precision_json_value_that_is_not_one_width_is_one_line(cli, bits_run, tmp_path, value, fragment):
    run = tmp_path / "run"
    shutil.copytree(bits_run, run)
    shutil.rmtree(run / "retrain", ignore_errors=True)
    precision = json.loads((run / "precision.json").read_text())
    precision["fc1"]["weight_bits"] = value
    (run / "precision.json").write_text(json.dumps(precision))
    one_line_error(cli("export", run, "--format", "onnx", "--out", run / "m.onnx"), fragment)
    one_line_error(cli("profile", run), fragment)
    assert not (run / "m.onnx").exists()


def test_bits_a_pe_cannot_run_are_refused_before_the_retrain_trains(cli, bits_run, tmp_path):
    """16-bit layers on BitFusion were refused after the whole retrain, leaving a checkpoint a --resume would
    repeat the refusal from."""
    run = tmp_path / "run"
    shutil.copytree(bits_run, run)
    shutil.rmtree(run / "retrain", ignore_errors=True)
    precision = json.loads((run / "precision.json").read_text())
    precision["fc1"] = {"weight_bits": 16, "act_bits": 16}
    (run / "precision.json").write_text(json.dumps(precision))
    one_line_error(cli("retrain", run, "--epochs", "1"), "at most 8 bits")
    assert not (run / "retrain").exists()


def test_a_refused_export_does_not_claim_its_target(cli, bits_run, tmp_path):
    """The manifest listed --out as uboost's before the checks: a user's file put there later was overwritten."""
    run = tmp_path / "run"
    shutil.copytree(bits_run, run)
    precision = json.loads((run / "precision.json").read_text())
    precision["fc1"] = {"weight_bits": 16, "act_bits": 16}
    (run / "precision.json").write_text(json.dumps(precision))
    target = run / "other.onnx"
    one_line_error(cli("export", run, "--format", "onnx", "--out", target), "8-bit QuantizeLinear only")
    target.write_text("my own notes")
    (run / "precision.json").write_text((bits_run / "precision.json").read_text())
    one_line_error(cli("export", run, "--format", "onnx", "--out", target), "already exists")
    assert target.read_text() == "my own notes"


def test_an_untrained_quantized_export_depends_on_its_input(cli, bits_run, tmp_path):
    """Its ranges were fixed on an all-zero input: every range [0, 0], the same logits for every input."""
    import numpy as np
    import onnxruntime as ort

    run = tmp_path / "run"
    shutil.copytree(bits_run, run)
    shutil.rmtree(run / "retrain", ignore_errors=True)
    assert cli("export", run, "--format", "onnx", "--out", tmp_path / "u.onnx").code == 0
    session = ort.InferenceSession(str(tmp_path / "u.onnx"))
    shape = [d if isinstance(d, int) else 4 for d in session.get_inputs()[0].shape]
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    logits = session.run(None, {"input": x})[0]
    assert not np.allclose(logits, logits[0])


def test_weights_retrained_at_other_bits_are_not_exported_as_retrained(cli, bits_run, tmp_path):
    """Bits edited after the retrain were exported on weights trained at the old ones, labelled "retrained weights"."""
    run = tmp_path / "run"
    shutil.copytree(bits_run, run)
    shutil.rmtree(run / "retrain", ignore_errors=True)
    assert cli("retrain", run, "--epochs", "1").code == 0
    assert json.loads((run / "retrain" / "retrain.json").read_text())["precision"] == \
        json.loads((run / "precision.json").read_text())
    assert cli("export", run, "--format", "onnx", "--out", tmp_path / "ok.onnx").code == 0
    precision = json.loads((run / "precision.json").read_text())
    layer = next(iter(precision))
    precision[layer] = {"weight_bits": 8 if precision[layer]["weight_bits"] != 8 else 4, "act_bits": 8}
    (run / "precision.json").write_text(json.dumps(precision))
    one_line_error(cli("export", run, "--format", "onnx", "--out", tmp_path / "stale.onnx"), "retrained at other bits")
    assert not (tmp_path / "stale.onnx").exists()


def test_utilization_on_bits_flag_reaches_the_run_config(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("search", *TINY, "--bits", "2,8", "--pe", "fixed", "--array", "8x8", "--utilization-on-bits", "off", "--out", out)
    assert result.code == 0, result.err
    assert json.loads((out / "config.json").read_text())["utilization_on_bits"] is False
    one_line_error(cli("search", *TINY, "--bits", "2,8", "--utilization-on-bits", "maybe", "--out", tmp_path / "bad"),
                   "--utilization-on-bits must be auto, on or off")
    assert not (tmp_path / "bad").exists()


def test_a_hardware_file_that_replaces_the_runs_pes_says_so(cli, bits_run, tmp_path):
    (tmp_path / "acc.toml").write_text("[hardware]\nrows = 8\ncols = 8\n")
    data = json.loads(cli("profile", bits_run, "--hardware", tmp_path / "acc.toml", "--json").out)
    assert data["reports"][0]["hardware"]["pe"] == "fixed"
    assert any("its bitfusion PEs included" in note and "--pe bitfusion" in note for note in data.get("notes", []))
    kept = json.loads(cli("profile", bits_run, "--hardware", tmp_path / "acc.toml", "--pe", "bitfusion", "--json").out)
    assert kept["reports"][0]["hardware"]["pe"] == "bitfusion" and not kept.get("notes")

"""Issue 13: `uboost tune --config` with a bad space option or wrong types in its tables is one red
line, exit 1, and nothing is written (on main a bad space option ran every trial into FAIL and
exited 0)."""

from __future__ import annotations

import pytest

from tests.cli.conftest import cli, one_line_error  # noqa: F401 - `cli` is a fixture

TINY = ["--space", "lenet", "--dataset", "digits", "--image-size", "8", "--max-samples", "64", "--batch-size", "32",
        "--rows", "8", "--cols", "8", "--trials", "1"]  # no --epochs: a flag would override the TOML's value


@pytest.mark.parametrize(
    "toml,fragments",
    [
        ("[search]\nspace_options = { widthz = [4, 8] }\n", ["space 'lenet' has no option 'widthz'"]),
        ("[search]\nspace_options = { widths = \"many\" }\n", ["lenet"]),
        ("[search]\nspace_options = 5\n", ["space_options", "must be a table"]),
        ("search = 5\n", ["must be a table"]),
        ("[search]\nepochs = \"three\"\n", ["epochs"]),
        ("[search]\narray = 64\n", ["array"]),
        ("[search]\ndataflow = 3\n", ["dataflow"]),
        ("[search]\ncost_mode = [\"smooth\"]\n", ["unknown cost mode"]),
        ("[search]\nlatency_weight = \"high\"\n", ["latency_weight"]),
        ("[search]\nseed = 1.5\n", ["seed"]),
        ("[search]\nsampling = 2\n", ["sampling"]),
        ("[search]\nno_such_setting = 1\n", ["no_such_setting"]),
        ("[search]\ncost_model = \"nope\"\n", ["nope"]),
        ("[search]\narray = \"8x8\"\n", ["array is what tune searches", "--rows and --cols"]),  # was ignored
        ("[search]\nlatency_weight = 5.0\n", ["latency_weight is what tune searches", "--lambda-range"]),
        ("[search]\ndata_split = \"x\"\n", ["data_split must be a fraction"]),  # was a TypeError in every trial
        ("[search]\ndata_split = 5\n", ["data_split must be a fraction"]),
        ("[search]\nentropy_weight = true\n", ["entropy_weight must be a non-negative number"]),
        ("[search]\ndownload = \"false\"\n", ["download must be true or false"]),
        ("[search]\ninference_batch = 0\n", ["inference_batch must be a positive integer"]),
    ],
)
def test_bad_tune_config_is_one_line_and_writes_nothing(cli, tmp_path, toml, fragments):
    config = tmp_path / "tune.toml"
    config.write_text(toml)
    out = tmp_path / "out"
    one_line_error(cli("tune", *TINY, "--config", config, "--out", out), *fragments)
    assert not out.exists()


@pytest.mark.parametrize("flag,value,fragment", [
    ("--budget-ms", "-1", "--budget-ms must be a positive number"), ("--budget-ms", "nan", "--budget-ms must be a positive number"),
    ("--area-budget-mm2", "0", "--area-budget-mm2"), ("--area-budget-mm2", "inf", "--area-budget-mm2"),
])
@pytest.mark.parametrize("what", [[], ["--export", "0"]])
def test_a_report_or_export_refuses_a_budget_that_is_no_budget(cli, tmp_path, flag, value, fragment, what):
    """A report (--trials 0) or an export judged the trials by any budget given: -1 ms exited 0, nan was accepted."""
    import optuna

    from uboost.tuning import create_study

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    out = tmp_path / "tune"
    create_study(out).add_trial(optuna.trial.create_trial(values=[0.5, 0.01], user_attrs={"accuracy": 0.5, "latency_ms": 0.01}))
    before = (out / "study.journal").read_bytes()
    one_line_error(cli("tune", "--trials", "0", "--out", out, flag, value, *what), fragment)
    assert (out / "study.journal").read_bytes() == before and sorted(p.name for p in out.iterdir()) == ["study.journal"]

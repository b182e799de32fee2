"""Issue 22: ``profile --hardware FILE`` prices on the described accelerator, options override it, area is shown."""

import json
from pathlib import Path

import pytest

from tests.cli.conftest import one_line_error

CFG = Path(__file__).parents[1] / "hardware" / "data" / "scalesim_cfg"
NET = ["torchvision.models:resnet18", "--input", "3x16x16"]


def test_profile_reads_a_scalesim_cfg_and_reports_area(cli):
    from uboost.hardware.area import area_breakdown_mm2
    from uboost.hardware.files import load_hardware

    result = cli("profile", *NET, "--hardware", CFG / "scale_v2.cfg", "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)["reports"][0]
    assert (report["hardware"]["rows"], report["hardware"]["dataflow"], report["hardware"]["sram_kb"]) == (32, "os", 64)
    assert report["area_mm2"] == pytest.approx(area_breakdown_mm2(load_hardware(CFG / "scale_v2.cfg"), "tpu28"))

    other = json.loads(cli("profile", *NET, "--hardware", CFG / "scale_v2.cfg", "--json", "--array", "16x16",
                           "--tech", "recpipe12").out)["reports"][0]
    assert other["hardware"]["rows"] == 16 and other["hardware"]["dataflow"] == "os"  # the flag wins, the rest stays
    assert other["area_mm2"]["pe"] == pytest.approx(256 * 0.506891 / 1024)


def test_profile_prints_what_it_read(cli):
    result = cli("profile", *NET, "--hardware", CFG / "google_v3.cfg")
    assert result.code == 0, result.err
    assert "hardware from" in result.out and "256x256 ws" in result.out and "area" in result.out


def test_the_first_line_says_what_is_priced_and_which_options_replaced_the_file(cli, tmp_path):
    """QA: a file's 8 GB/s overridden by --dram-bw-words 4 was shown as "unbounded DRAM bandwidth"; a file's DVFS
    table printed no per-point table, where --operating-points does."""
    path = tmp_path / "acc.toml"
    path.write_text("[hardware]\nrows = 16\ncols = 16\nsram_kb = 8\ndram_bw_gbps = 8\n"
                    "operating_points = [[3.0e8, 0.6], [6.0e8, 0.7], [1.0e9, 0.9]]\n")
    result = cli("profile", *NET, "--hardware", path, "--cost-model", "systolic-mem", "--dram-bw-words", "4")
    assert result.code == 0, result.err
    text = " ".join(result.out.split())  # (the console wraps long lines)
    first = text[text.index("hardware from"):text.index("MHz, energy")]
    assert "8 kB SRAM, 4 words/cycle" in first and "unbounded DRAM bandwidth" not in text
    assert "(--dram-bw-words from the command line)" in text
    assert "per operating point" in text and "least energy" in text  # the file's table, priced per point
    plain = " ".join(cli("profile", *NET, "--hardware", path, "--cost-model", "systolic-mem").out.split())
    assert "8 kB SRAM, 8 GB/s" in plain and "from the command line" not in plain
    tech = " ".join(cli("profile", *NET, "--hardware", path, "--tech", "tpu28").out.split())
    assert "(--tech from the command line)" in tech  # it replaces the file's area table too (QA: not named)
    data = json.loads(cli("profile", *NET, "--hardware", path, "--json").out)
    assert [p["MHz"] if "MHz" in p else p for p in data["operating_points"][0]["points"]]  # the JSON has the sweep too


def test_compute_only_accelerators_have_no_area(cli):
    report = json.loads(cli("profile", *NET, "--hardware", CFG / "eyeriss_v1.cfg", "--json").out)["reports"][0]
    assert report["area_mm2"] is not None  # eyeriss gives buffer sizes (CALC only unbounds the bandwidth)
    report = json.loads(cli("profile", *NET, "--json").out)["reports"][0]
    assert report["area_mm2"] is None


@pytest.mark.parametrize("args, fragment", [
    (["--hardware", "missing.cfg"], "does not exist"),
    (["--hardware", "x.yaml"], "expected a uboost .toml or a SCALE-Sim .cfg"),
    (["--tech", "tsmc3"], "unknown area preset"),
])
def test_bad_hardware_options_are_one_line(cli, tmp_path, args, fragment):
    if args[1] == "x.yaml":
        (tmp_path / "x.yaml").write_text("rows: 8\n")
        args = ["--hardware", tmp_path / "x.yaml"]
    one_line_error(cli("profile", *NET, *args), fragment)


def test_a_compute_only_model_on_bounded_memory_says_so(cli):
    result = cli("profile", *NET, "--sram-kb", "16", "--dram-bw-words", "4", "--array", "8x8")
    assert result.code == 0 and "prices compute only" in result.out and "systolic-mem" in result.out
    data = json.loads(cli("profile", *NET, "--sram-kb", "16", "--dram-bw-words", "4", "--json").out)
    assert "prices compute only" in data["notes"][0]
    quiet = cli("profile", *NET, "--sram-kb", "16", "--dram-bw-words", "4", "--cost-model", "systolic-mem")
    assert "prices compute only" not in quiet.out
    assert "notes" not in json.loads(cli("profile", *NET, "--json").out)


def test_the_roofline_says_it_reads_the_bandwidth_not_the_sram_sizes(cli):
    """Its cycles grow with a narrower DRAM (memory time), so it must not say the limits change no cycle count."""
    def cycles_and_notes(*args):
        data = json.loads(cli("profile", *NET, "--cost-model", "roofline", "--array", "8x8", *args, "--json").out)
        return data["reports"][0]["total"]["cycles"], data.get("notes", [])

    free, no_notes = cycles_and_notes()
    bounded, notes = cycles_and_notes("--sram-kb", "16", "--dram-bw-words", "0.05")
    assert bounded > free and not no_notes
    assert len(notes) == 1 and "reads the DRAM bandwidth" in notes[0] and "not the SRAM sizes" in notes[0]
    assert "change no cycle count" not in notes[0]


def test_setup_scalesim_in_another_folder_prints_a_line_to_paste(cli, tmp_path, monkeypatch):
    """The export line stays one line (no soft wrap, however long the path) and is valid shell."""
    import shlex

    from uboost.hardware import scalesim_runner

    python = tmp_path / ("a long folder name with spaces " * 4) / "bin" / "python"
    monkeypatch.setattr(scalesim_runner, "setup_environment", lambda venv: python)
    result = cli("hw", "setup-scalesim", tmp_path / "venv")
    assert result.code == 0, result.err
    lines = result.out.strip().splitlines()
    assert lines[0] == f"SCALE-Sim is ready: {python}"
    assert lines[1] == f"export UBOOST_SCALESIM_PYTHON={shlex.quote(str(python))}"
    assert shlex.split(lines[1]) == ["export", f"UBOOST_SCALESIM_PYTHON={python}"]


def _no_subprocess(monkeypatch):
    from uboost.hardware import scalesim_runner

    calls = []
    monkeypatch.setattr(scalesim_runner.subprocess, "run", lambda args, **kw: calls.append(args))
    return calls


def test_setup_scalesim_prints_an_absolute_path_for_a_relative_folder(cli, tmp_path, monkeypatch):
    calls = _no_subprocess(monkeypatch)
    monkeypatch.chdir(tmp_path)
    result = cli("hw", "setup-scalesim", "venv")
    assert result.code == 0, result.err
    python = tmp_path.absolute() / "venv" / "bin" / "python"
    assert result.out.strip().splitlines()[1] == f"export UBOOST_SCALESIM_PYTHON={python}"  # not venv/bin/python
    assert calls[0][-1] == str(tmp_path.absolute() / "venv")


def test_setup_scalesim_refuses_a_folder_that_is_not_empty_and_not_a_venv(cli, tmp_path, monkeypatch):
    calls = _no_subprocess(monkeypatch)
    busy = tmp_path / "project"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    one_line_error(cli("hw", "setup-scalesim", busy), "not empty and not a virtualenv (no pyvenv.cfg)")
    assert not calls and sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    one_line_error(cli("hw", "setup-scalesim", busy / "notes.txt"), "is a file")
    (tmp_path / "empty").mkdir()
    assert cli("hw", "setup-scalesim", tmp_path / "empty").code == 0  # an empty folder is fine
    (busy / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert cli("hw", "setup-scalesim", busy).code == 0  # as is an existing virtualenv (SCALE-Sim added to it)


@pytest.mark.parametrize("text, fragment", [
    ("", "describes no accelerator"),
    ("[hardware]\n", "describes no accelerator"),
    ('[hardware]\nrows = 8\ncols = 8\ndataflow = "rs"\n', "hardware file {path}: unknown dataflow 'rs'"),
])
def test_an_empty_or_wrong_hardware_toml_is_one_line_naming_the_file(cli, tmp_path, text, fragment):
    path = tmp_path / "acc.toml"
    path.write_text(text)
    one_line_error(cli("profile", *NET, "--hardware", path), fragment.format(path=path))


def test_a_toml_dataflow_in_capitals_reads_as_a_cfg_does(cli, tmp_path):
    path = tmp_path / "acc.toml"
    path.write_text('[hardware]\nrows = 8\ncols = 8\ndataflow = "OS"\n')
    report = json.loads(cli("profile", *NET, "--hardware", path, "--json").out)["reports"][0]
    assert report["hardware"]["dataflow"] == "os"


def test_the_simulation_progress_bar_draws_on_stderr(capsys):
    """`profile --json` prints JSON only: a SCALE-Sim bar on stdout broke it."""
    from uboost.cli.hw_scalesim import simulation_progress

    with simulation_progress("SCALE-Sim test") as progress:
        progress(1, 2)
        progress(2, 2)
    captured = capsys.readouterr()
    assert captured.out == "" and "SCALE-Sim test" in captured.err


def test_the_area_note_is_the_same_whether_the_area_table_comes_from_tech_or_the_file(cli, tmp_path):
    # a file naming area = "recpipe12" with bitfusion PEs printed no area and no note; --tech recpipe12 said why
    path = tmp_path / "bf.toml"
    path.write_text('[hardware]\nrows = 8\ncols = 8\npe = "bitfusion"\narea = "recpipe12"\nsram_kb = 4\n')
    by_file = cli("profile", *NET, "--hardware", path, "--json")
    by_tech = cli("profile", *NET, "--array", "8x8", "--pe", "bitfusion", "--sram-kb", "4", "--tech", "recpipe12", "--json")
    assert by_file.code == by_tech.code == 0, by_file.err + by_tech.err
    notes = json.loads(by_file.out).get("notes")
    assert notes and notes == json.loads(by_tech.out)["notes"]
    assert "no area for 8x8 (recpipe12)" in notes[0] and "'bitfusion'" in notes[0]
    shown = " ".join(cli("profile", *NET, "--hardware", path).out.split())
    assert "note: no area for 8x8 (recpipe12)" in shown


def test_an_area_on_fixed_pes_narrower_than_the_layers_says_so(cli):
    """QA: `--bits 16` on fixed PEs was priced at the 8-bit PE area in silence (the area table's unit)."""
    import json

    base = ("profile", "resnet18", "--input", "3x32x32", "--array", "16x16", "--sram-kb", "16", "--json")
    wide, narrow = (json.loads(cli(*base, "--bits", b).out) for b in ("16", "8"))
    assert wide["reports"][0]["area_mm2"] == narrow["reports"][0]["area_mm2"]  # the table has one fixed-PE figure
    assert any("fixed 8-bit PEs" in n and "16 bits" in n for n in wide["notes"])
    assert not any("8-bit PEs" in n for n in narrow.get("notes", []))

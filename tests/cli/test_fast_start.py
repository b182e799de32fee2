"""`uboost --help`, every `uboost <cmd> --help`, `hw list` and `spaces` load no torch, NNI,
Lightning or Optuna (measured speed: benchmarks/bench_cli_start.py)."""

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "nni", "pytorch_lightning", "lightning", "optuna", "torchvision", "sklearn", "numpy", "matplotlib",
         "pydantic")  # typer 0.29 coerces through pydantic: uboost.cli._lazy_coercion defers it

PROBE = """
import json, sys
from uboost.cli import main
from uboost.cli._app import COMMANDS
commands = [[name] for name in COMMANDS]
runs = [[]] + [["--help"], ["--version"], ["hw", "list"], ["spaces"], ["hw", "--help"]] + [c + ["--help"] for c in commands]
codes = {}
for argv in runs:
    try:
        main(argv)
        codes[" ".join(argv)] = 0
    except SystemExit as exc:
        codes[" ".join(argv)] = exc.code or 0
print("\\n@@" + json.dumps({"codes": codes, "loaded": sorted(m for m in sys.modules if m.split(".")[0] in %r)}))
"""


@pytest.fixture(scope="module")
def probe():
    out = subprocess.run([sys.executable, "-c", PROBE % (HEAVY,)], capture_output=True, text=True, check=True, timeout=120)
    return out.stdout, json.loads(out.stdout.rsplit("@@", 1)[1])


def test_help_and_listings_load_no_heavy_library(probe):
    _, result = probe
    assert result["loaded"] == [], f"imported at start-up: {result['loaded'][:10]}"
    assert set(result["codes"].values()) == {0}, result["codes"]
    assert len(result["codes"]) >= 12  # every command's --help was asked for


def test_listings_show_the_registered_names(probe):
    text, _ = probe
    for name in ("systolic", "systolic-paper", "roofline", "lookup", "flops", "darts-cifar", "lenet"):
        assert name in text
    from uboost import catalog

    assert set(catalog.builtin_cost_models()) >= {"systolic", "systolic-paper", "roofline", "lookup", "flops"}


def test_bare_uboost_prints_help_and_succeeds(cli):
    result = cli()
    assert result.code == 0 and "Usage" in result.out and "search" in result.out


def test_bare_uboost_hw_prints_help_and_succeeds(cli):
    result = cli("hw")
    assert result.code == 0 and "Usage" in result.out and "tabulate" in result.out and "list" in result.out


def test_version(cli):
    import uboost

    result = cli("--version")
    assert result.code == 0 and result.out.strip() == f"uboost {uboost.__version__}"


def test_cost_model_catalog_matches_the_registry():
    """`hw list` names the built-ins without importing torch; the list must be the registry's."""
    from uboost import catalog
    from uboost.hardware import COST_MODELS

    builtins = {n: e.description for n, e in COST_MODELS._entries.items()
                if getattr(e.factory, "__module__", "").startswith("uboost.")}
    assert catalog.builtin_cost_models() == builtins


def test_declared_spaces_match_their_modules():
    from uboost.search_spaces import SPACES
    from uboost.search_spaces import darts, lenet  # noqa: F401  (register the real factories)

    for name in ("darts-cifar", "lenet"):
        entry = SPACES._entries[name]
        assert entry.factory is not None and entry.target.endswith(":" + entry.factory.__name__)
        assert SPACES.get(name) is entry.factory


def test_a_declared_entry_loads_its_module_on_first_use(tmp_path, monkeypatch):
    from uboost.registry import Registry

    (tmp_path / "fake_plugin_mod.py").write_text(
        "from tests_registry_target import REG\n@REG.register('thing')\ndef make(**kw):\n    return ('made', kw)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("thing")
    monkeypatch.setitem(sys.modules, "tests_registry_target", type(sys)("tests_registry_target"))
    sys.modules["tests_registry_target"].REG = reg
    reg.declare("thing", "fake_plugin_mod:make", description="a thing")
    assert reg.describe() == {"thing": "a thing"} and "fake_plugin_mod" not in sys.modules
    assert reg.create("thing", a=1) == ("made", {"a": 1})
    assert "fake_plugin_mod" in sys.modules


def _modules_after(*argv: str) -> set[str]:
    code = ("import sys; from uboost.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('@@' + ' '.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True, timeout=120)
    return set(out.stdout.rsplit("@@", 1)[1].split())


def test_help_builds_no_command_and_a_command_builds_only_itself():
    """The root group is lazy (uboost.cli._app.LazyGroup): `uboost --help` imports no command module
    and no Rich; `uboost retrain --help` imports retrain's module alone (not search's defaults)."""
    from uboost.cli._app import COMMANDS

    # uboost.cli.listings is consulted by main() for the listings it runs directly (no Rich, no Typer)
    command_modules = {module for module, _, _ in COMMANDS.values()} - {"uboost.cli.listings"}
    loaded = _modules_after("--help")
    assert not loaded & command_modules, loaded & command_modules
    assert "rich" not in loaded and "uboost.search" not in loaded
    loaded = _modules_after("retrain", "--help")
    assert loaded & command_modules == {"uboost.cli.retrain"}
    assert "rich" not in loaded and "uboost.search" not in loaded


def test_version_needs_no_typer():
    loaded = _modules_after("--version")
    assert "typer" not in loaded and "uboost.cli._app" not in loaded


def test_entry_point_scan_is_cached_and_sees_a_new_or_changed_plugin(tmp_path, monkeypatch):
    """`hw list` / `spaces` find plug-ins through uboost._entry_points: the scan is cached on disk
    and runs again when a distribution on sys.path appears or its entry points change."""
    from importlib.metadata import entry_points as real

    from uboost import _entry_points

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    site = tmp_path / "site"
    monkeypatch.syspath_prepend(str(site))
    site.mkdir()

    def names(group):
        return [(ep.name, ep.value) for ep in _entry_points.entry_points(group)]

    for group in ("console_scripts", "pytest11", "uboost.cost_models"):
        assert names(group) == [(ep.name, ep.value) for ep in real(group=group)], group
    assert len(list((tmp_path / "cache" / "uboost").glob("entry-points-*.json"))) == 1
    scans = []
    monkeypatch.setattr(_entry_points, "_scan", lambda real_scan=_entry_points._scan: scans.append(1) or real_scan())
    assert names("uboost.cost_models") == [] and scans == []  # answered from the cache

    dist = site / "uboost_fake_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: uboost-fake-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[uboost.cost_models]\nfake = fake_mod:Fake\n")
    assert names("uboost.cost_models") == [("fake", "fake_mod:Fake")] and len(scans) == 1
    assert names("uboost.cost_models") == [("fake", "fake_mod:Fake")] and len(scans) == 1
    (dist / "entry_points.txt").write_text("[uboost.cost_models]\nfake = fake_mod:Fake\nother = fake_mod:Other\n")
    assert names("uboost.cost_models") == [("fake", "fake_mod:Fake"), ("other", "fake_mod:Other")] and len(scans) == 2


def test_the_cache_keeps_only_the_newest_files(tmp_path, monkeypatch):
    """One file per sys.path: test runs and scripts in new folders added files without end (75 in a day)."""
    import os

    from uboost import _entry_points

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "uboost"
    folder.mkdir(parents=True)
    for i in range(_entry_points.KEEP + 5):
        old = folder / f"entry-points-{i:08x}.json"
        old.write_text("{}")
        os.utime(old, ns=(i * 10**9, i * 10**9))
    (folder / "scalesim-3.0.0.sqlite").write_text("kept")
    assert [ep.name for ep in _entry_points.entry_points("console_scripts")]
    left = sorted(p.name for p in folder.glob("entry-points-*.json"))
    assert len(left) == _entry_points.KEEP and os.path.basename(_entry_points.cache_path()) in left
    assert "entry-points-00000000.json" not in left and f"entry-points-{_entry_points.KEEP + 4:08x}.json" in left
    assert (folder / "scalesim-3.0.0.sqlite").read_text() == "kept"


def test_an_unwritable_cache_still_finds_plugins(tmp_path, monkeypatch):
    from uboost import _entry_points

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert [ep.name for ep in _entry_points.entry_points("console_scripts")]


def test_listings_run_without_typer_and_print_what_the_app_prints(cli, capsys, monkeypatch):
    """`uboost spaces` / `uboost hw list` take no arguments: main() runs them without building the
    Typer app (uboost.cli.listings.DIRECT). Output, exit codes and errors match the app's."""
    from uboost.cli import _app
    from uboost.cli.listings import DIRECT
    from uboost.exceptions import ConfigError

    for argv in DIRECT:
        loaded = _modules_after(*argv)
        assert "typer" not in loaded and "uboost.cli._app" not in loaded, argv
        direct = cli(*argv)
        try:
            _app.run(list(argv))
        except SystemExit as exc:
            assert exc.code in (0, None)
        via_app = capsys.readouterr()
        assert direct.code == 0 and direct.out == via_app.out and direct.out.strip(), argv

    def broken():
        raise ConfigError("spaces are broken")

    monkeypatch.setattr("uboost.catalog.spaces", broken)
    direct = cli("spaces")
    assert direct.code == 1 and direct.err.strip() == "error: spaces are broken" and not direct.out
    assert cli("spaces", "--help").code == 0  # anything else goes through the app


@pytest.mark.parametrize("local_rank, said", [(None, "interrupted; run the same command again to finish\n"), ("0", "interrupted; run the same command again to finish\n"), ("1", "")])
def test_a_ctrl_c_while_the_app_is_imported_is_one_line(monkeypatch, capsys, local_rank, said):
    """A DDP rank interrupted while still importing printed a KeyboardInterrupt traceback; only rank 0
    says it (every rank a launcher started gets the same Ctrl-C: one line, not one per rank)."""
    import sys
    import types

    import pytest

    from uboost.cli import main

    class Importing(types.ModuleType):
        def __getattr__(self, name):
            raise KeyboardInterrupt

    for name in ("LOCAL_RANK", "NODE_RANK", "RANK", "WORLD_SIZE", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)
    if local_rank is not None:
        monkeypatch.setenv("LOCAL_RANK", local_rank)
    monkeypatch.setitem(sys.modules, "uboost.cli._app", Importing("uboost.cli._app"))
    with pytest.raises(SystemExit) as stop:
        main(["search", "--help"])
    assert stop.value.code == 130 and capsys.readouterr().err == said


@pytest.mark.parametrize("columns, width", [(None, 160), ("100", 100)])
def test_piped_output_is_wide_enough_for_the_tables_and_columns_still_rules(monkeypatch, columns, width):
    """Rich draws 80 columns into a pipe: a two-array profile table was cut with ellipses."""
    from uboost.cli._common import LazyConsole

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert LazyConsole(stderr=False).get_console().width == width  # pytest captures stdout: not a terminal

"""``uboost export``: the searched architecture as JSON, or the derived network as ONNX / TorchScript."""

# No `from __future__ import annotations`: typer would eval every option's string annotation at start-up.
from pathlib import Path
from typing import Annotated, Optional

import typer

from uboost.cli._common import Flag, console
from uboost.exceptions import ConfigError

Opt = typer.Option


def export(
    run: Annotated[Path, typer.Argument(help="run directory or arch.json; or a retrain's output (retrain --out DIR): its weights, with the run it trained; or, with --format onnx, an `uboost exits` directory or one of its points (RUN/exits/points/p03.json)")],
    format: Annotated[str, Opt("--format", help="json | onnx | torchscript")] = "json",
    out: Annotated[Optional[Path], Opt(help="output file [default: RUN/export.json, RUN/model.onnx, RUN/model.torchscript.pt (in a retrain's output DIR given as RUN: DIR/...); EXITS/model.onnx; for a point pNN a directory EXITS/onnx-pNN]")] = None,
    force: Annotated[bool, Flag("--force", help="overwrite an earlier export at --out (never a file uboost did not write), or replace an earlier budget export's --out directory (never another command's results: a search run's, a retrain's or a tune study's files)")] = False,
    target_latency_ms: Annotated[Optional[float], Opt("--target-latency-ms", help="write the architecture the search prefers most within this budget (cycle-exact, solved exactly) as a run directory at --out [default: none]")] = None,
    target_energy_uj: Annotated[Optional[float], Opt("--target-energy-uj", help="an energy budget (µJ per inference), alone or with --target-latency-ms (both hold) [default: none]")] = None,
    budget_floor: Annotated[Optional[float], Opt("--budget-floor", help="with a budget: the network must use at least this share of it where one can (latency's; energy's when it is the only budget; 0: plain upper bound) [default: 0.9]")] = None,
    operating_point: Annotated[Optional[str], Opt("--operating-point", help="auto: choose the operating point of the run's table together with the network [default: the run's clock]")] = None,
    hardware: Annotated[Optional[Path], Opt("--hardware", help="with a budget: project on the accelerator this file describes (uboost TOML or SCALE-Sim .cfg) instead of the run's [default: the run's]")] = None,
    objective: Annotated[str, Opt("--objective", help="with a budget: maximize the search's preference or the predicted-accuracy of `uboost predict RUN`")] = "preference",
    onnx_form: Annotated[str, Opt("--onnx-form", help="quantized layers in ONNX: exact (on their integer codes: onnxruntime computes the torch model bit for bit) | qdq (Clip + 8-bit QuantizeLinear/DequantizeLinear around float layers: what quantization toolchains fuse into integer kernels; at 8 bits a rounding near-tie can land a level apart)")] = "exact",
) -> None:
    """Export the searched architecture (JSON) or the derived network (ONNX / TorchScript).

    The network carries RUN/retrain/model.pt when there is one. A retrain written elsewhere
    (uboost retrain RUN --out DIR) exports with uboost export DIR: DIR/model.pt on the network
    of the run its retrain.json names. An `uboost exits` directory, or one of its points,
    exports the dynamic network to ONNX.
    """
    import contextlib

    from uboost.dynamic.export import dynamic_source

    from uboost.quant_onnx import ONNX_FORMS

    if onnx_form not in ONNX_FORMS:
        raise ConfigError(f"unknown --onnx-form {onnx_form!r}; expected one of: {', '.join(ONNX_FORMS)}")
    if onnx_form != "exact" and format != "onnx":
        raise ConfigError("--onnx-form chooses the ONNX graph of a quantized network: give it with --format onnx")
    source = dynamic_source(run)
    if source is not None:
        budget = (target_latency_ms, target_energy_uj, operating_point, hardware, budget_floor)
        return _export_dynamic(source, format, out, force, any(v is not None for v in budget) or objective != "preference")

    if target_latency_ms is not None or target_energy_uj is not None or operating_point is not None:
        from uboost.cli.frontier import DEFAULT_FLOOR, export_to_budget

        if format != "json":
            what = "a budget export" if target_latency_ms is not None or target_energy_uj is not None else \
                "an export at a chosen operating point"
            raise ConfigError(f"{what} writes a run directory; export it to ONNX/TorchScript afterwards")
        return export_to_budget(run, target_latency_ms, out, force, DEFAULT_FLOOR if budget_floor is None else budget_floor,
                                target_energy_uj, operating_point, hardware, objective)
    if objective != "preference":
        raise ConfigError("--objective chooses what a projection maximizes: give it with a budget (--target-latency-ms)")
    if budget_floor is not None:
        raise ConfigError("--budget-floor shapes a budget export: give it with --target-latency-ms or --target-energy-uj")
    if hardware is not None:
        raise ConfigError("--hardware prices a budget export (--target-latency-ms / --target-energy-uj); "
                          "an architecture or model export is the same on every accelerator")

    from uboost import runs
    from uboost.exceptions import RunDirError

    if format not in ("json", "onnx", "torchscript"):
        raise ConfigError(f"unknown format {format!r}; expected one of: json, onnx, torchscript")
    trained = None  # a retrain's output (retrain --out DIR): its weights, with the arch and config of the run it trained
    source = runs.retrain_source(run)
    if source is not None:
        trained, run = Path(run), source
        if not (trained / "model.pt").is_file():
            raise RunDirError(f"{trained} has no model.pt: its retrain did not finish; run it again (uboost retrain {run} "
                              f"--out {trained} --resume)")
    artifacts = runs.load_run(run)
    if not artifacts.config:  # any JSON object would be copied as an architecture (a policy file, a stray file)
        raise RunDirError(f"no {runs.CONFIG} next to {run}: cannot tell which space the architecture belongs to; "
                          "export a run directory, or an arch.json inside one")
    default = {"json": "export.json", "onnx": "model.onnx", "torchscript": "model.torchscript.pt"}[format]
    home = trained if trained is not None else artifacts.root  # where the default output goes, and whose manifest lists it
    manifest_root = runs.owner_root(home, artifacts.root)
    target = out or home / default
    if target.is_dir():
        raise RunDirError(f"--out {target} is a directory; give a file name, e.g. {target / default}")
    from uboost._owners import refuse_others

    refuse_others(target, runs.EXPORT)  # a search's, a retrain's or a study's own file: never replaced, --force or not
    inside = target.resolve().is_relative_to(manifest_root.resolve())
    ours = target.exists() and inside and runs.may_overwrite(manifest_root, target, runs.EXPORT)  # its manifest lists it
    if target.exists() and not force and not ours:
        raise RunDirError(f"{target} already exists; pass --force to overwrite it")
    if target.exists() and not ours and not _earlier_export(target, artifacts.arch):
        raise RunDirError(f"{target} is not an earlier export (ONNX, TorchScript or JSON: uboost did not write it); "
                          "move it away, uboost will not overwrite it")
    with runs.run_lock(manifest_root) if inside else contextlib.nullcontext():
        def claim() -> None:  # listed as uboost's once every check has passed, right before the write
            if inside:
                runs.record(manifest_root, target.resolve(), owner=runs.EXPORT)

        note = _export_to(run, artifacts, format, target, onnx_form, claim=claim, trained=trained)
    console.print(f"wrote {target}{note}")


def _earlier_export(target: Path, arch: dict) -> bool:
    """Whether ``target``, outside any run (no manifest lists it), holds what an export writes -- the only file
    ``--force`` may replace there: an ONNX model, a TorchScript archive, or a JSON object with the keys of this
    network's choices."""
    import json
    import zipfile

    with open(target, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK"):  # a zip: TorchScript's archive holds its code and constants
        try:
            with zipfile.ZipFile(target) as archive:
                return any(name.endswith("/constants.pkl") or "/code/" in name for name in archive.namelist())
        except (OSError, zipfile.BadZipFile):
            return False
    try:
        data = json.loads(target.read_text())
        return isinstance(data, dict) and set(data) == set(arch)
    except (OSError, UnicodeDecodeError, ValueError):
        pass
    try:
        import onnx
    except ImportError:  # a ModelProto starts with its ir_version (field 1, a varint)
        return head[:1] == b"\x08"
    try:
        onnx.load_model(str(target), load_external_data=False)
        return True
    except Exception:  # onnx raises DecodeError and others: not a model
        return False


def _export_to(run: Path, artifacts, format: str, target: Path, onnx_form: str = "exact", claim=lambda: None,
               trained: Optional[Path] = None) -> str:
    import torch

    from uboost import runs
    from uboost.exceptions import RunDirError
    from uboost.io import atomic_path, write_json

    if format == "json":
        claim()
        _writing(target, lambda: write_json(target, artifacts.arch))
        return ""
    from uboost.networks import load_frozen_network

    loaded = load_frozen_network(run)
    network = loaded.module.eval()
    trained = trained if trained is not None else artifacts.root / runs.RETRAIN
    weights = trained / "model.pt"
    if weights.is_file():
        _check_trained_precision(artifacts.root, trained)
        state = runs.safe_load(weights, "retrained weights")
        try:
            network.load_state_dict(state)
        except Exception as exc:
            raise RunDirError(f"{weights} does not fit the architecture of {run} ({type(exc).__name__}); "
                              "it is from another search: run uboost retrain again") from None
    example = torch.zeros(1, *loaded.input_shape)
    suffix = {"onnx": ".onnx", "torchscript": ".pt"}[format]
    from uboost.quant_onnx import check_onnx_exportable, export_mode

    if format == "onnx":
        check_onnx_exportable(network, onnx_form)  # before the target is claimed or written

    with torch.no_grad():  # untrained quantized layers fix their activation ranges (a no-op otherwise) on inputs
        # that vary: on zeros every range was [0, 0] and the exported graph ignored its input
        network(torch.randn(8, *loaded.input_shape, generator=torch.Generator().manual_seed(0)))

    def write() -> None:
        with atomic_path(target, suffix=suffix) as tmp:
            if format == "torchscript":
                torch.jit.save(_traced(network, example), str(tmp))
            else:
                from uboost.onnx_export import onnx_export

                # the TorchScript exporter (dynamo=False: no onnxscript); quantized layers in onnx_form (uboost.quant)
                with export_mode(network, onnx_form):
                    onnx_export(network, (example,), str(tmp), dynamo=False, input_names=["input"], output_names=["logits"],
                                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})  # any batch size

    claim()
    _writing(target, write)
    if weights.is_file():
        return " (retrained weights)"
    from uboost._lock import in_use

    holder = in_use(artifacts.root)  # a retrain locks its run while it trains
    if holder is not None:
        return f" (untrained weights: a retrain of {artifacts.root} is running, {holder}; export again when it has finished)"
    return " (untrained weights: run uboost retrain first)"


def _check_trained_precision(root: Path, trained: Path) -> None:
    """Refuse retrained weights (``trained/model.pt``) whose bits are not the run's precision.json now (edited, or a
    bits export over the run since): they would be exported at bits they were not trained at, labelled "retrained
    weights"."""
    from uboost import runs
    from uboost.exceptions import RunDirError
    from uboost.quant import PRECISION_FILE, precision_dict, read_precision

    info = trained / runs.RETRAIN_INFO
    data = runs.read_json(info, "retrain summary") if info.is_file() else None
    if not isinstance(data, dict) or "precision" not in data:
        return  # no summary, or one from before the bits were recorded in it: nothing to compare
    now = precision_dict(read_precision(root / PRECISION_FILE)) if (root / PRECISION_FILE).is_file() else None
    if data["precision"] != now:
        how = "in floating point" if data["precision"] is None else "at other bits"
        wanted = f"the bits of {root / PRECISION_FILE}" if now is not None else f"floating point ({PRECISION_FILE} is gone)"
        again = "" if trained == root / runs.RETRAIN else f" --out {trained}"
        raise RunDirError(f"{trained / 'model.pt'} was retrained {how}, not at {wanted}: retrain again "
                          f"(uboost retrain {root}{again} --force), then export")


def _export_dynamic(source, format: str, out: Optional[Path], force: bool, budget: bool) -> None:
    """The output of ``uboost exits`` (a directory, or one point) as ONNX (:mod:`uboost.dynamic.export`)."""
    if format != "onnx":
        raise ConfigError(f"{source.point or source.exits_dir} is a dynamic network (uboost exits): it exports to ONNX only, "
                          "pass --format onnx")
    if budget:
        raise ConfigError("budgets, --operating-point, --hardware and --objective choose a network of a searched run; "
                          "a dynamic network's points are already chosen (pick one: EXITS/points/pNN.json)")
    from uboost.dynamic.export import export_dynamic

    target = out or source.default_target
    note = export_dynamic(source, target, force=force)
    console.print(f"wrote {target}{note}")


def _writing(target: Path, write) -> None:
    """Run ``write``; an unwritable target becomes one line."""
    from uboost.exceptions import RunDirError

    try:
        write()
    except OSError as exc:
        raise RunDirError(f"cannot write {target}: {exc.strerror or exc}") from None


def _traced(network, example):
    """``torch.jit.trace`` of ``network``, checked on numbers: a quantized network's graph caches its
    integer codes after the first call, so torch's own check (two traces, graphs compared) fails on
    a difference of form; the traced module must give the eager one's outputs instead."""
    import warnings

    import torch

    from uboost.exceptions import ConfigError

    from uboost.quant import LayerQuantizer

    quantized = any(isinstance(m, LayerQuantizer) for m in network.modules())
    with torch.no_grad(), warnings.catch_warnings():  # frozen quantized layers on their integer codes, as eager inference
        # a frozen quantizer reads its calibrated range (act_min/act_max, observed) as numbers: constants of the
        # trace by design, which torch warns of in two lines; the probe below checks the traced numbers instead
        warnings.filterwarnings("ignore", message=r"Converting a tensor to a Python", category=torch.jit.TracerWarning,
                                module=r"uboost\.")
        traced = torch.jit.trace(network, example, check_trace=not quantized)
    if quantized:
        probe = torch.randn(4, *example.shape[1:], generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            gap = (traced(probe) - network(probe)).abs().max().item()
        if not gap <= 1e-4:
            raise ConfigError(f"the traced TorchScript model differs from the network by {gap:.3g}; export --format onnx instead")
    return traced

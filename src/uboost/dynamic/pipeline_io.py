"""What ``uboost exits`` writes: heads, the summary JSON, one policy file per Pareto point, the plot, ONNX."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from uboost import runs
from uboost.dynamic.policy import ExitPolicy
from uboost.io import atomic_path, write_json

logger = logging.getLogger(__name__)


def policy_of(point: dict, positions) -> ExitPolicy:
    metrics = {k: v for k, v in point.items() if k not in ("thresholds", "freq_hz", "voltage_v", "point")}
    return ExitPolicy(positions=tuple(positions), thresholds=tuple(point["thresholds"]), freq_hz=point["freq_hz"],
                      voltage_v=point["voltage_v"], metrics=metrics)


def write_outputs(prepared, calibrated, test_scores, *, onnx: bool = False) -> dict:
    import torch

    from uboost.dynamic.pipeline import POINTS, static_rows

    out: Path = prepared.out
    root, owner = prepared.owner_root, prepared.owner
    positions = calibrated.network.backbone.positions
    files = [out / "heads.pt", out / "exits.json"] + [out / POINTS / f"p{i:02d}.json" for i in range(len(calibrated.front))]
    old = sorted((out / POINTS).glob("p*.json")) if (out / POINTS).is_dir() else []
    stale = [p for p in old if p not in files and runs.may_overwrite(root, p, owner)]
    onnx_path = out / "dynamic.onnx"  # an earlier call's graph of other heads: gone unless written again below
    if not onnx and onnx_path.exists() and runs.may_overwrite(root, onnx_path, owner):
        stale.append(onnx_path)
    exported = _exports_of_earlier_heads(out, root)
    runs.record(root, *[f.resolve() for f in files], owner=owner)
    with runs.writing(out, "uboost exits", owner_root=root, owner=owner):  # old points and new heads in between: marked
        for path in stale:  # a smaller front than last time: the earlier points beyond it go (and a stale ONNX graph)
            path.unlink(missing_ok=True)
        for path in exported:  # `uboost export` graphs of the heads being replaced: they would decide otherwise
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        with atomic_path(out / "heads.pt") as tmp:
            saved = {"positions": positions, "head_width": prepared.config.head_width, "head_pool": prepared.config.head_pool,
                     "state_dict": calibrated.network.heads.state_dict()}
            if prepared.config.training != "distill":  # joint training moved the backbone too: keep it with the heads
                saved["backbone_state_dict"] = prepared.module.state_dict()
            torch.save(saved, tmp)
        (out / POINTS).mkdir(parents=True, exist_ok=True)
        for i, point in enumerate(calibrated.front):
            write_json(out / POINTS / f"p{i:02d}.json", policy_of(point, positions).to_dict())
        summary = {
            "run": str(prepared.root.resolve()),  # absolute: readers in another working directory find it
            # exits written inside their run (RUN/exits): the run from here, so a copied or moved run keeps its own exits
            **({"run_from_exits": os.path.relpath(prepared.root.resolve(), out.resolve())}
               if prepared.root.resolve() in out.resolve().parents else {}),
            "model_sha256": model_fingerprint(prepared.root),  # the retrained weights the heads were trained on
            "positions": [p.__dict__ for p in prepared.positions],
            "settings": prepared.config.settings(),
            "hardware": prepared.spec.to_dict(),
            "cost_model": prepared.search_config.cost_model,
            "costs": calibrated.costs.to_dict(),
            "head_losses": calibrated.losses,
            "candidates": len(calibrated.candidates),
            "static_test": static_rows(calibrated, *test_scores),
            "pareto": calibrated.front,
        }
        write_json(out / "exits.json", summary)
    if _plot(out / "pareto.png", calibrated.front, summary["static_test"], root, owner):
        summary["plot"] = str(out / "pareto.png")
    if onnx:
        from uboost.dynamic.model import export_onnx

        runs.record(root, (out / "dynamic.onnx").resolve(), owner=owner)
        with atomic_path(out / "dynamic.onnx") as tmp:
            export_onnx(calibrated.network, tmp, prepared.input_shape)
        summary["onnx"] = str(out / "dynamic.onnx")
    return summary


def _exports_of_earlier_heads(out: Path, root) -> list[Path]:
    """What ``uboost export`` wrote from the exits in ``out`` (``model.onnx``, ``onnx-pNN/``) where uboost wrote
    every file of it: graphs of the heads and points about to be replaced, so they go with them. Nothing
    without earlier exits there (``out/exits.json``): a ``model.onnx`` is then another network's export."""
    if not (out / "exits.json").is_file():
        return []
    found = [out / "model.onnx"] + sorted(d for d in out.glob("onnx-p*") if d.is_dir())
    exported = []
    for path in found:
        members = [f for f in path.rglob("*") if f.is_file()] if path.is_dir() else [path]
        if path.exists() and all(runs.may_overwrite(root, f) for f in members):
            exported.append(path)
    return exported


def _plot(path: Path, front: list[dict], static: list[dict], root, owner) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    runs.record(root, path.resolve(), owner=owner)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([p["expected_energy_uj"] for p in front], [100 * p["accuracy"] for p in front], label="dynamic (validation)")
    ax.scatter([p["test_expected_energy_uj"] for p in front], [100 * p["test_accuracy"] for p in front], marker="x", label="same points (test)")
    ax.scatter([s["expected_energy_uj"] for s in static], [100 * s["accuracy"] for s in static], marker="s", label="static, per operating point (test)")
    ax.set_xlabel("expected energy per input (µJ)")
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return True


def model_fingerprint(run: Path) -> str:
    """SHA-256 of ``run``'s retrained weights (``RUN/retrain/model.pt``)."""
    import hashlib

    from uboost.dynamic.pipeline import model_path

    digest = hashlib.sha256()
    with open(model_path(run), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_summary(exits_dir: Path) -> dict:
    """``exits_dir/exits.json``, refused in one line unless it is a JSON object (``run_of`` reads its keys)."""
    from uboost.dynamic.switcher import _object, exits_again

    path = Path(exits_dir) / "exits.json"
    return _object(runs.read_json(path, "exits summary"), path, again=exits_again(Path(exits_dir)))


def check_same_model(exits_dir: Path, summary: dict, *, run_needed: bool = True) -> Path | None:
    """The run ``exits_dir`` was made from (:func:`run_of`), refused in one line when its retrained model is
    no longer the one the heads were trained on (a ``retrain --force`` since): the heads, the points'
    accuracies and costs and any graph exported from them describe the model that was replaced. An
    exits folder written before the fingerprint was recorded is taken as it is (``None`` unless
    ``run_needed``); with a fingerprint, a run that cannot be found is refused, never passed unchecked."""
    from uboost.exceptions import RunDirError

    recorded = summary.get("model_sha256")
    if not isinstance(recorded, str) and not run_needed:
        return None
    run = run_of(exits_dir, summary)
    if isinstance(recorded, str) and model_fingerprint(run) != recorded:
        raise RunDirError(f"{exits_dir} was trained on an earlier retrain of {run}: its heads and points do not fit "
                          f"the model retrained since; train them again with `uboost exits {run} --out {exits_dir} --force`")
    return run


def run_of(exits_dir: Path, summary: dict) -> Path:
    """The retrained run an exits directory was made from, resolved. Exits written inside their run record the
    way up to it (``run_from_exits``): that run, wherever the tree was copied or moved. ``exits.json`` also records it
    absolute; an older file's relative path is tried from the working directory and from each folder above the exits
    directory, and a moved tree from the folder holding the exits (``RUN/exits``). Of those with a retrained
    model, the first with the recorded fingerprint, else the first; none is one line."""
    from uboost.dynamic.pipeline import model_path
    from uboost.dynamic.switcher import exits_again
    from uboost.exceptions import RunDirError

    exits_dir = Path(exits_dir)
    inside = summary.get("run_from_exits")  # exits written inside their run: that run, wherever the tree is now
    if isinstance(inside, str) and inside.strip() and not Path(inside).is_absolute():
        own = (exits_dir.resolve() / inside).resolve()
        if model_path(own).is_file():
            return own
    text = summary.get("run")
    if not isinstance(text, str) or not text.strip():
        raise RunDirError(f"{exits_dir / 'exits.json'} names no run; {exits_again(exits_dir)}")
    recorded, here = Path(text), exits_dir.resolve()
    tried = [recorded] if recorded.is_absolute() else [Path.cwd() / recorded, *(d / recorded for d in here.parents)]
    found = list(dict.fromkeys(p.resolve() for p in (*tried, here.parent) if model_path(p).is_file()))
    if not found:
        raise RunDirError(f"{exits_dir} was trained on the run {text}, which has no retrained model "
                          f"({model_path(recorded)}; moved or deleted?); {exits_again(exits_dir)}")
    fingerprint = summary.get("model_sha256")
    same = [p for p in found if isinstance(fingerprint, str) and len(found) > 1 and model_fingerprint(p) == fingerprint]
    return (same or found)[0]


def load_dynamic(exits_dir: str | Path, policy: str | Path | ExitPolicy | None = None):
    """The dynamic network ``uboost exits`` trained (``OUT/heads.pt`` on its run's retrained model),
    with the thresholds of ``policy`` (a policy file such as ``OUT/points/p03.json``; default: none kept)."""
    from uboost.dynamic.heads import build_heads
    from uboost.dynamic.model import DynamicNetwork
    from uboost.dynamic.pipeline import ExitsConfig, _num_classes, prepare
    from uboost.dynamic.segments import SegmentedBackbone
    from uboost.exceptions import RunDirError

    root = Path(exits_dir)
    summary = read_summary(root)
    saved = runs.safe_load(root / "heads.pt", "exit heads")
    positions = list(saved.get("positions", [])) if isinstance(saved, dict) else []
    if not positions:
        raise RunDirError(f"{root / 'heads.pt'} holds no exit heads")
    prepared = prepare(check_same_model(root, summary), ExitsConfig(positions=tuple(positions)), out=root, reading=True)
    if "backbone_state_dict" in saved:  # trained jointly with the heads (--training joint)
        prepared.module.load_state_dict(saved["backbone_state_dict"])
    heads = build_heads([p.feature_shape for p in prepared.positions], _num_classes(prepared), width=int(saved["head_width"]),
                        pool=int(saved.get("head_pool", 1)))
    heads.load_state_dict(saved["state_dict"])
    network = DynamicNetwork(SegmentedBackbone(prepared.module, positions), heads).eval()
    if policy is not None:
        policy = policy if isinstance(policy, ExitPolicy) else ExitPolicy.load(policy)
        if list(policy.positions) != positions:
            raise RunDirError(f"the policy's exits {list(policy.positions)} are not these heads' {positions}")
        network.set_thresholds(policy.thresholds)
    return network

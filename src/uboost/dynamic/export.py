"""``uboost export --format onnx`` for the output of ``uboost exits``: the dynamic network as ONNX.

Two inputs, two forms, both run by onnxruntime and both written by the exporters of this package:

* an exits directory (``RUN/exits``) -> **one graph with every exit's logits as outputs**
  (``exit0``, ..., ``final``; :func:`uboost.dynamic.model.export_onnx`), default
  ``RUN/exits/model.onnx``. The policy is applied outside the graph:
  ``decide_outputs(session.run(None, {"input": x}), policy.thresholds)`` gives the predictions and
  exits of any point of that directory; onnxruntime runs the whole path (the worst-case cost).
* one point (``RUN/exits/points/p03.json``) -> **one graph per segment**, split at that point's
  kept exits (:func:`uboost.dynamic.onnx_segments.export_onnx_segments`), plus the point's
  ``policy.json``, in a directory (default ``RUN/exits/onnx-p03``). :func:`run_exported` runs it
  in onnxruntime, passing on only the inputs that did not leave, so the later graphs never run
  for inputs that exited. A network that carries a Python number across an exit is refused in
  one line (export the exits directory instead).

Everything is checked (the input, the point, the target) before anything is written; the
directory appears complete or not at all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from uboost import runs
from uboost.exceptions import ConfigError, RunDirError

logger = logging.getLogger(__name__)
POLICY = "policy.json"
SEGMENT_GLOB = "segment*.onnx"


@dataclass(frozen=True)
class DynamicSource:
    """What ``uboost export`` was given: an exits directory, and one of its points or none."""

    exits_dir: Path
    point: Path | None

    @property
    def default_target(self) -> Path:
        return self.exits_dir / ("model.onnx" if self.point is None else f"onnx-{self.point.stem}")


def dynamic_source(path: str | os.PathLike) -> DynamicSource | None:
    """The exits directory (and point) ``path`` names, or None when it is not an output of ``uboost exits``;
    a point file that does not exist in an exits directory is one line naming the points there."""
    from uboost.runs import check_complete

    p = Path(path)
    if p.is_dir():
        if (p / "exits.json").is_file():
            check_complete(p)
            return DynamicSource(p, None)
        return None
    if p.suffix != ".json" or not (p.parent.parent / "exits.json").is_file():
        return None
    from uboost.dynamic.pipeline import POINTS

    if p.parent.name != POINTS:
        return None
    check_complete(p.parent.parent)
    if not p.is_file():
        have = sorted(q.stem for q in p.parent.glob("p*.json"))
        raise RunDirError(f"{p} is not a point of {p.parent.parent}; it has {', '.join(have) or 'none'} (see its exits.json)")
    return DynamicSource(p.parent.parent, p)


def refuse_quantized(run: Path) -> None:
    """One line, before anything is written, for the exits of a network with searched bits: their graphs
    would need the backbone's quantizers in ONNX form across the segment cuts, which is not built."""
    from uboost.quant import PRECISION_FILE

    if (Path(run) / PRECISION_FILE).is_file():
        raise ConfigError(f"{run} has searched bits ({PRECISION_FILE}): the exits of a quantized network do not export "
                          "to ONNX yet (the static network does: uboost export RUN --format onnx)")


def export_dynamic(source: DynamicSource, target: Path, *, force: bool = False) -> str:
    """Write ``source`` as ONNX at ``target`` (see the module docstring); returns a note for the CLI."""
    from uboost.dynamic.policy import ExitPolicy
    from uboost.dynamic.pipeline_io import load_dynamic, read_summary, run_of
    from uboost.networks import load_frozen_network

    policy = ExitPolicy.load(source.point) if source.point is not None else None
    run = run_of(source.exits_dir, read_summary(source.exits_dir))
    refuse_quantized(run)
    root = runs.owner_root(source.exits_dir, run)
    root = root if target.resolve().is_relative_to(root.resolve()) else None
    if policy is None and target.is_dir():
        raise RunDirError(f"--out {target} is a directory; the all-exits graph is one file, e.g. {target / 'model.onnx'}")
    if policy is not None and target.is_symlink():  # --force would clear (or write) where the link points
        raise RunDirError(f"--out {target} is a symbolic link; give the directory it points to, or another --out")
    if policy is not None and target.exists() and not target.is_dir():
        raise RunDirError(f"--out {target} is a file; a point exports to a directory of graphs, e.g. {target.with_suffix('')}")
    from uboost._owners import refuse_others

    # a search's, a retrain's or a study's files (a point's directory replaces everything in it): never, --force or not
    refuse_others(target, runs.EXPORT, directory=policy is not None)
    if policy is not None and target.is_dir():  # --force replaces the whole folder: never one holding outputs
        from uboost import _manifest

        _manifest.guard(target)  # the current directory or a parent of it
        for inner in target.rglob(_manifest.MANIFEST):
            refuse_others(inner.parent, runs.EXPORT, directory=True)
    ours = root is not None and all(runs.may_overwrite(root, f, runs.EXPORT) for f in (target.iterdir() if target.is_dir() else [target]))
    if target.exists() and not force and not ours:
        raise RunDirError(f"{target} already exists; pass --force to overwrite it")
    network = load_dynamic(source.exits_dir, policy)
    input_shape = tuple(load_frozen_network(run).input_shape)
    with runs.run_lock(root) if root is not None else contextlib.nullcontext():
        if policy is None:
            _write_graph(network, target, input_shape, root)
            return " (one graph, every exit's logits as outputs; apply a point's thresholds with decide_outputs)"
        _write_segments(network, policy, target, input_shape, root)
    kept = sum(policy.kept)
    return f" ({kept + 1} segment graph(s) split at {kept} kept exit(s) and {POLICY}; run them with run_exported)"


def _write_graph(network, target: Path, input_shape, root) -> None:
    from uboost.dynamic.model import export_onnx
    from uboost.io import atomic_path

    if root is not None:
        runs.record(root, target.resolve(), owner=runs.EXPORT)
    with _writable(target), atomic_path(target, suffix=".onnx") as tmp:
        export_onnx(network, tmp, input_shape)


def _write_segments(network, policy, target: Path, input_shape, root) -> None:
    """The graphs and the policy into a fresh directory next to ``target``, then moved into it. What an earlier export
    of uboost's wrote there goes first (listed in ``root``'s manifest, or outside a run in ``target``'s own); a file
    of the user's stays, and one where a graph would go stops the export (one line)."""
    from uboost import _manifest
    from uboost.dynamic.onnx_segments import export_onnx_segments
    from uboost.io import write_json

    manifest_root = root if root is not None else target
    with _writable(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        try:
            paths = export_onnx_segments(network, tmp, input_shape)
            write_json(tmp / POLICY, policy.to_dict())
            names = [p.name for p in paths] + [POLICY]
            if target.is_dir():  # the earlier export's graphs go (a point with fewer kept exits has fewer)
                if root is not None:
                    _manifest.clear_under(root, target.resolve(), owner=runs.EXPORT)
                else:
                    _manifest.clear(target)
            runs.refuse_foreign(manifest_root, [target.resolve() / n for n in names])  # a user's file by that name
            created = not target.exists()
            target.mkdir(parents=True, exist_ok=True)
            runs.record(manifest_root, *[target.resolve() / n for n in names],
                        dirs=[target.resolve()] if created and root is not None else [], owner=runs.EXPORT)
            for name in names:
                os.replace(tmp / name, target / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class _writable:
    """An unwritable target becomes one line."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __enter__(self):
        return None

    def __exit__(self, kind, exc, tb):
        if kind is not None and issubclass(kind, OSError):
            raise RunDirError(f"cannot write {self.target}: {exc.strerror or exc}") from None
        return False


def run_exported(directory: str | os.PathLike, x):
    """``(predictions, exits, sessions run)`` of a point exported as segments, in onnxruntime; exits are
    indices among *all* exit positions (``len(positions)``: the final classifier), as the torch model reports them."""
    import numpy as np

    from uboost.dynamic.onnx_segments import run_segments
    from uboost.dynamic.policy import ExitPolicy

    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ConfigError(f"running the exported graphs needs onnxruntime (pip install onnxruntime): {exc}") from None
    directory = Path(directory)
    policy = ExitPolicy.load(directory / POLICY)
    kept = [k for k, t in enumerate(policy.thresholds) if t is not None]
    paths = [directory / f"segment{s}.onnx" for s in range(len(kept) + 1)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise RunDirError(f"{directory} misses {', '.join(missing)}: export the point again")
    sessions = [ort.InferenceSession(str(p)) for p in paths]
    preds, taken, ran = run_segments(sessions, np.asarray(x, dtype=np.float32), [policy.thresholds[k] for k in kept])
    to_position = np.array([*kept, len(policy.thresholds)])
    return preds, to_position[taken], ran

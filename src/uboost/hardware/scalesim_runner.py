"""Running SCALE-Sim 3.0 from uboost: its environment, the jobs, a disk cache, worker processes.

**Environment.** SCALE-Sim 3.0.0 crashes with ``numpy>=2.3``, which uboost itself does not pin,
so the simulator normally runs in its own virtualenv and uboost talks to it through worker
*processes* (``_scalesim_worker.py``, standard library + ``scalesim`` only). The interpreter is,
in order: the ``python=`` argument, ``$UBOOST_SCALESIM_PYTHON``, the current interpreter when it
can import ``scalesim`` with ``numpy<2.3``, ``$XDG_CACHE_HOME/uboost/scalesim-venv`` (see
:func:`setup_environment`), and ``./.venv-scalesim`` in the working directory. Set one up with::

    uboost hw setup-scalesim            # or by hand:
    python -m venv ~/.cache/uboost/scalesim-venv
    ~/.cache/uboost/scalesim-venv/bin/pip install scalesim==3.0.0 "numpy<2.3"

**Jobs.** One layer becomes one SCALE-Sim topology row: batch-1 convolutions in its convolution
format (no padding, so the input is ``(out - 1) * stride + k``), batched layers and ``Linear`` in
its GEMM format (``M = B*H*W``), a depthwise layer as *one* one-channel layer times ``C`` (SCALE-Sim
simulates the ``C`` channels of a ``DP`` row independently, with fresh memories each: they are
identical), grouped convolutions as one group times ``groups``. A channel-multiplier depthwise layer
(``groups == in_channels < out_channels``: a ``DP`` row takes one filter per channel) runs as ``groups``
GEMMs, which give the convolution's cycles but make SCALE-Sim read the whole im2col matrix from DRAM,
as batched layers do (``6 -> 18`` channels in 6 groups, 3x3 on 5x5: 486 ifmap DRAM reads where
:func:`~uboost.hardware.access.access_counts`, what uboost reports in CALC mode, counts the 150 input
pixels). ``CALC`` mode unless the spec is memory-bound (:attr:`HardwareSpec.memory_bound`), then
``USER`` mode with the spec's SRAM sizes and ``dram_bw_words`` as the DRAM bandwidth of all three
ports (an unbounded buffer gets room for its whole operand twice over). SCALE-Sim counts 1-byte
words; a ``b``-bit operand takes ``b / 8`` bytes (as ``systolic-mem`` prices it), so a layer of
``b``-bit weights and activations runs with the SRAM sizes and the DRAM words per cycle times
``8 / b``: the elements they hold and move. A layer whose two widths differ, or whose scaled sizes
are not whole numbers (SCALE-Sim takes integers), is refused (:func:`user_memory`).

**Cache.** Results are stored in SQLite (``$UBOOST_CACHE_DIR`` or ``$XDG_CACHE_HOME/uboost``,
file ``scalesim-3.0.0.sqlite``) under a key of the topology row, array, dataflow and memory
configuration (the scaled one: a job is what SCALE-Sim runs, whatever the bits that led to it):
cycles, stall cycles and SCALE-Sim's access counts (``words``, in elements). A cached job is
never simulated again, by any process; one cached by an older uboost, before the access counts
were kept, is simulated again only when its counts are asked for (:func:`simulate_words`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import queue
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from uboost.exceptions import ConfigError, HardwareError
from uboost.hardware.layers import LayerShape
from uboost.hardware.spec import HardwareSpec

logger = logging.getLogger(__name__)

SCALESIM_VERSION = "3.0.0"
WORKER = Path(__file__).with_name("_scalesim_worker.py")
PYTHON_ENV = "UBOOST_SCALESIM_PYTHON"
CACHE_ENV = "UBOOST_CACHE_DIR"

Progress = Callable[[int, int], None]
"""``progress(done, total)``, called after every finished simulation (from a reader thread)."""


# -- environment -------------------------------------------------------------------------------
def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "uboost"


def default_venv() -> Path:
    return default_cache_dir() / "scalesim-venv"


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _here_works() -> bool:
    if importlib.util.find_spec("scalesim") is None:
        return False
    try:
        major, minor = (int(x) for x in importlib.metadata.version("numpy").split(".")[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
    return (major, minor) < (2, 3)


def find_python(python: str | os.PathLike | None = None) -> str:
    """The interpreter that runs SCALE-Sim (see the module docstring for the search order)."""
    if python is not None:
        candidates = [("python=", Path(python))]
    elif os.environ.get(PYTHON_ENV):
        candidates = [(f"${PYTHON_ENV}", Path(os.environ[PYTHON_ENV]).expanduser())]
    else:
        if _here_works():
            return sys.executable
        candidates = [("cache", _venv_python(default_venv())), ("cwd", _venv_python(Path.cwd() / ".venv-scalesim"))]
    for _, path in candidates:
        if path.is_file():
            return os.fspath(path)
    where = ", ".join(f"{label} {path}" for label, path in candidates)
    raise HardwareError(
        f"no SCALE-Sim environment found ({where}): run `uboost hw setup-scalesim` or "
        f"`pip install scalesim=={SCALESIM_VERSION} 'numpy<2.3'` in a virtualenv and set ${PYTHON_ENV} to its python"
    )


def setup_environment(venv: str | os.PathLike | None = None) -> str:
    """Create a virtualenv with SCALE-Sim (``numpy<2.3``) and return its python (an absolute path: a line to
    paste elsewhere). An existing ``venv`` must be a virtualenv (``pyvenv.cfg``) or an empty folder."""
    target = (Path(venv) if venv is not None else default_venv()).expanduser().absolute()
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target} is a file, not a folder for the SCALE-Sim virtualenv: give a new or empty folder")
    if target.is_dir() and not (target / "pyvenv.cfg").is_file() and any(target.iterdir()):
        raise ConfigError(f"{target} is not empty and not a virtualenv (no pyvenv.cfg): give a new or empty folder "
                          f"for SCALE-Sim, or an existing virtualenv")
    python = _venv_python(target)
    if not python.is_file():
        logger.info("creating a SCALE-Sim virtualenv in %s", target)
        subprocess.run([sys.executable, "-m", "venv", os.fspath(target)], check=True)
    subprocess.run(
        [os.fspath(python), "-m", "pip", "install", "--quiet", f"scalesim=={SCALESIM_VERSION}", "numpy<2.3"], check=True
    )
    return os.fspath(python)


# -- jobs --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """One SCALE-Sim run: a topology row on an array and memory; the layer costs ``repeat`` of it."""

    rows: int
    cols: int
    dataflow: str
    mode: str  # "CALC" | "USER"
    sram_kb: tuple[int, int, int] | None
    bw: int | None
    topology: tuple[tuple[str, object], ...]

    @property
    def key(self) -> str:
        return json.dumps(
            {"v": SCALESIM_VERSION, "array": [self.rows, self.cols], "df": self.dataflow, "mode": self.mode,
             "sram_kb": self.sram_kb, "bw": self.bw, "topology": dict(self.topology)},
            sort_keys=True,
        )

    def payload(self, ident: int) -> dict:
        return {"id": ident, "rows": self.rows, "cols": self.cols, "dataflow": self.dataflow, "mode": self.mode,
                "sram_kb": list(self.sram_kb) if self.sram_kb else None, "bw": self.bw, "topology": dict(self.topology)}

    def rough_cycles(self) -> float:
        t = dict(self.topology)
        if t["kind"] == "gemm":
            m, k, n = t["m"], t["k"], t["n"]
        else:
            m = ((t["ifmap_h"] - t["filter_h"]) // t["stride"] + 1) * ((t["ifmap_w"] - t["filter_w"]) // t["stride"] + 1)
            k = t["filter_h"] * t["filter_w"] * t["channels"]
            n = 1 if t["depthwise"] else t["filters"]
        r, c = self.rows, self.cols
        if self.dataflow == "os":
            return math.ceil(m / r) * math.ceil(n / c) * (k + r + c)
        if self.dataflow == "is":
            return math.ceil(k / r) * math.ceil(m / c) * (n + 2 * r + c)
        return math.ceil(k / r) * math.ceil(n / c) * (m + 2 * r + c)


def whole_bandwidth(spec: HardwareSpec) -> int:
    """The spec's DRAM words per cycle, which SCALE-Sim's USER mode takes as a whole number (else an error)."""
    bw = spec.dram_words_per_cycle
    if float(bw) != int(bw):
        raise HardwareError(f"SCALE-Sim needs a whole number of DRAM words per cycle, got {bw:g}")
    return int(bw)


def user_memory(spec: HardwareSpec, weight_bits: float, act_bits: float) -> tuple[list[int | None], int]:
    """The sized buffers (kB, ``None`` unbounded) and DRAM words per cycle SCALE-Sim's USER mode runs a layer of
    these widths with: the spec's times ``8 / bits`` (SCALE-Sim's words are bytes, a ``b``-bit operand
    ``b / 8`` of them), whole numbers, else a :class:`HardwareError` saying why."""
    w, a = int(weight_bits), int(act_bits)
    if w != a:  # one word size for every buffer and port
        raise HardwareError(f"SCALE-Sim with limited memory has one word size: a layer of {w}-bit weights and {a}-bit "
                            "activations cannot be simulated; give both operands the same bits or use --cost-model systolic-mem")
    scale = Fraction(8, w)
    kbs = [None if kb is None else Fraction(kb) * scale for kb in spec.buffer_kb]
    bw = Fraction(spec.dram_words_per_cycle) * scale
    if any(v is not None and v.denominator != 1 for v in (*kbs, bw)):
        sizes = "/".join("-" if kb is None else f"{float(kb):g}" for kb in kbs)
        raise HardwareError(f"SCALE-Sim counts 1-byte words: {w}-bit operands need the SRAM sizes and DRAM words per cycle "
                            f"times 8/{w} as whole numbers, got {sizes} kB and {float(bw):g} words per cycle")
    return [None if kb is None else int(kb) for kb in kbs], int(bw)


def layer_job(layer: LayerShape, spec: HardwareSpec) -> tuple[Job, int]:
    """The SCALE-Sim job that prices ``layer`` on ``spec`` and how many times the layer repeats it."""
    # SCALE-Sim's batch is 1: a batch shares the weights as one GEMM of M = batch * positions, but a
    # per_sample layer (an attention's keys and values) is one sample's job repeated per sample
    b = 1 if layer.per_sample else spec.batch_size
    groups = layer.in_channels if layer.depthwise else layer.groups
    cin, cout = layer.in_channels // groups, layer.out_channels // groups
    kh, kw = layer.kernel_h, layer.kernel_w
    m, k, n = b * layer.out_h * layer.out_w, kh * kw * cin, cout
    if layer.kind == "linear" or b > 1 or (layer.depthwise and cout != 1):
        topology = {"kind": "gemm", "m": m, "n": n, "k": k}
    else:
        topology = {
            "kind": "conv", "ifmap_h": (layer.out_h - 1) * layer.stride + kh, "ifmap_w": (layer.out_w - 1) * layer.stride + kw,
            "filter_h": kh, "filter_w": kw, "channels": cin, "filters": n, "stride": layer.stride,
            "depthwise": bool(layer.depthwise),
        }
    if spec.memory_bound:
        kbs, bw = user_memory(spec, layer.weight_bits, layer.act_bits)
        roomy = math.ceil(2 * max(m * k, k * n, m * n) / 1024) + 1  # an unbounded buffer: its operand fits twice
        sram = tuple(kb if kb is not None else roomy for kb in kbs)
        job = Job(spec.rows, spec.cols, spec.dataflow, "USER", sram, bw, tuple(sorted(topology.items())))
    else:
        job = Job(spec.rows, spec.cols, spec.dataflow, "CALC", None, None, tuple(sorted(topology.items())))
    return job, groups * (spec.batch_size // b)


# -- cache -------------------------------------------------------------------------------------
class ResultCache:
    """SQLite table ``key -> (cycles, stall_cycles, seconds, words)``; safe across processes
    (``words``: the access counts as JSON, NULL in rows an older uboost wrote)."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.path = self.directory / f"scalesim-{SCALESIM_VERSION}.sqlite"

    def _connect(self) -> sqlite3.Connection:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=60)
            con.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, cycles INTEGER, stall_cycles INTEGER, seconds REAL, "
                        "words TEXT)")
            if "words" not in {row[1] for row in con.execute("PRAGMA table_info(results)")}:  # an older uboost's cache
                try:
                    con.execute("ALTER TABLE results ADD COLUMN words TEXT")
                except sqlite3.OperationalError as exc:  # another process added it meanwhile
                    if "duplicate column" not in str(exc):
                        raise
        except (OSError, sqlite3.Error) as exc:
            raise HardwareError(f"cannot use the SCALE-Sim cache {self.path}: {exc}") from None
        return con

    def _select(self, keys: Iterable[str], columns: str, where: str = "") -> list[tuple]:
        """Rows ``(key, *columns)`` of ``keys`` (in chunks of 500: SQLite's parameter limit)."""
        keys = list(keys)
        if not keys or not self.path.exists():
            return []
        con = self._connect()
        try:
            rows = []
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                rows += con.execute(f"SELECT key, {columns} FROM results WHERE {where}key IN ({','.join('?' * len(chunk))})",
                                    chunk).fetchall()
            return rows
        finally:
            con.close()

    def get_many(self, keys: Iterable[str]) -> dict[str, tuple[int, int]]:
        return {key: (cycles, stalls) for key, cycles, stalls in self._select(keys, "cycles, stall_cycles")}

    def get_words(self, keys: Iterable[str]) -> dict[str, dict[str, int]]:
        """The access counts kept for ``keys`` (keys without any are left out)."""
        return {key: json.loads(words) for key, words in self._select(keys, "words", "words IS NOT NULL AND ")}

    def put(self, key: str, cycles: int, stall_cycles: int, seconds: float, words: dict[str, int] | None = None) -> None:
        con = self._connect()
        try:
            with con:
                con.execute("INSERT OR REPLACE INTO results (key, cycles, stall_cycles, seconds, words) VALUES (?, ?, ?, ?, ?)",
                            (key, cycles, stall_cycles, seconds, None if words is None else json.dumps(words, sort_keys=True)))
        finally:
            con.close()

    def __len__(self) -> int:
        if not self.path.exists():
            return 0
        con = self._connect()
        try:
            return int(con.execute("SELECT COUNT(*) FROM results").fetchone()[0])
        finally:
            con.close()


# -- running -----------------------------------------------------------------------------------
@dataclass
class RunStats:
    simulated: int = 0
    cached: int = 0
    seconds: float = 0.0


def simulate(
    jobs: Sequence[Job],
    *,
    python: str | os.PathLike | None = None,
    workers: int = 2,
    cache: ResultCache | None = None,
    progress: Progress | None = None,
    stats: RunStats | None = None,
) -> list[tuple[int, int]]:
    """``(cycles, stall_cycles)`` of every job, from the cache or SCALE-Sim (``workers`` processes)."""
    known = _resolve(jobs, python=python, workers=workers, cache=cache, progress=progress, stats=stats, words=False)
    return [known[job.key][:2] for job in jobs]


def simulate_words(jobs: Sequence[Job], **options: Any) -> list[dict[str, int]]:
    """SCALE-Sim's access counts of every job (``DETAILED_ACCESS_REPORT.csv``: SRAM and DRAM words per
    operand, the keys of :data:`uboost.hardware.access.ACCESS_KEYS`), from the cache or SCALE-Sim;
    ``options`` as :func:`simulate`'s."""
    known = _resolve(jobs, words=True, **options)
    return [known[job.key][2] for job in jobs]


def _resolve(jobs, *, python=None, workers: int = 2, cache=None, progress=None, stats=None, words: bool) -> dict[str, tuple]:
    """``key -> (cycles, stall_cycles, words or None)`` of every job: the cache's, the rest simulated
    (with ``words``, also the jobs cached without access counts)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    cache = cache if cache is not None else ResultCache()
    stats = stats if stats is not None else RunStats()
    keys = set(job.key for job in jobs)
    cycles = cache.get_many(keys)
    counts = cache.get_words(keys) if words else {}
    known = {key: (*cycles[key], counts.get(key)) for key in cycles if not words or key in counts}
    todo: dict[str, Job] = {}
    for job in jobs:
        if job.key not in known:
            todo.setdefault(job.key, job)
    if not words:  # the access counts are a second look at the same shapes: counted once, with the cycles
        stats.cached += len(keys) - len(todo)
    if todo:
        t0 = time.time()
        found = _run(list(todo.items()), find_python(python), workers, cache, progress)
        known.update(found)
        stats.simulated += len(found)
        stats.seconds += time.time() - t0
    return known


def _run(
    todo: list[tuple[str, Job]], python: str, workers: int, cache: ResultCache, progress: Progress | None
) -> dict[str, tuple[int, int, dict | None]]:
    todo.sort(key=lambda item: -item[1].rough_cycles())  # longest first: workers finish together
    pending: "queue.Queue[int]" = queue.Queue()
    for i in range(len(todo)):
        pending.put(i)
    results: dict[str, tuple[int, int, dict | None]] = {}
    errors: list[str] = []
    lock = threading.Lock()
    logger.info("SCALE-Sim: simulating %d shapes in %d worker process(es) with %s", len(todo), min(workers, len(todo)), python)

    def work() -> None:
        try:
            proc = subprocess.Popen(
                [python, os.fspath(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True, bufsize=1,
            )
        except OSError as exc:
            with lock:
                errors.append(f"cannot start {python}: {exc}")
            return
        try:
            while not errors:
                try:
                    i = pending.get_nowait()
                except queue.Empty:
                    break
                key, job = todo[i]
                proc.stdin.write(json.dumps(job.payload(i)) + "\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
                if not line:
                    with lock:
                        errors.append(f"the SCALE-Sim worker ({python}) exited with code {proc.wait()}; is scalesim installed there with numpy<2.3?")
                    break
                answer = json.loads(line)
                if "error" in answer:
                    logger.debug("SCALE-Sim traceback:\n%s", answer.get("traceback", ""))
                    with lock:
                        errors.append(f"SCALE-Sim failed on {dict(job.topology)} ({job.rows}x{job.cols} {job.dataflow} {job.mode}): {answer['error']}")
                    break
                words = answer.get("words")
                cache.put(key, int(answer["cycles"]), int(answer["stall_cycles"]), float(answer["seconds"]), words)
                with lock:
                    results[key] = (int(answer["cycles"]), int(answer["stall_cycles"]), words)
                    done = len(results)
                if progress is not None:
                    progress(done, len(todo))
        finally:
            if proc.stdin:
                proc.stdin.close()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(min(workers, len(todo)))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except KeyboardInterrupt:
        with lock:
            errors.append("interrupted")
        raise
    if errors:
        raise HardwareError(errors[0])
    return results

"""SCALE-Sim worker: runs in the interpreter that has ``scalesim`` installed, imports nothing from uboost.

SCALE-Sim 3.0.0 needs ``numpy<2.3``, so it usually lives in its own virtualenv; uboost starts this
file there as a subprocess (``python _scalesim_worker.py``), writes one job per line to its
stdin and reads one JSON line per finished job from its stdout; the worker exits at end of
input. Standard library + ``scalesim`` only.

A job is a JSON object::

    {"id": 0, "rows": 32, "cols": 32, "dataflow": "ws",
     "mode": "CALC" | "USER", "sram_kb": [ifmap, filter, ofmap], "bw": 10,
     "topology": {"kind": "conv", "ifmap_h": 10, "ifmap_w": 10, "filter_h": 3, "filter_w": 3,
                  "channels": 16, "filters": 32, "stride": 1, "depthwise": false}
              | {"kind": "gemm", "m": 64, "n": 32, "k": 144}}

and the answer ``{"id": 0, "cycles": ..., "stall_cycles": ..., "words": {...}, "seconds": ...}``
(sums over the topology's rows; SCALE-Sim splits a depthwise row into one-channel layers) or
``{"id": 0, "error": "..."}``. ``cycles`` is the second column of SCALE-Sim's
``COMPUTE_REPORT.csv`` ("Total Cycles": compute plus memory stalls, without the initial
prefetch that the first column adds); ``words`` are the SRAM and DRAM access counts of its
``DETAILED_ACCESS_REPORT.csv``, under uboost's names (:data:`ACCESS_COLUMNS`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

# This file sits next to uboost's own ``scalesim.py``: keep its directory off the import path so
# ``import scalesim`` finds the simulator, not the cost model.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

CONFIG = """\
[general]
run_name = uboost

[run_presets]
InterfaceBandwidth = {mode}
UseRamulatorTrace = False

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
ifmapsramszkB = {ifmap_kb}
filtersramszkB = {filter_kb}
ofmapsramszkB = {ofmap_kb}
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Dataflow = {dataflow}
Bandwidth = {bw}
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
FilterCustomLayout = False
IfmapSRAMBankBandwidth = {bw}
IfmapSRAMBankNum = 1
IfmapSRAMBankPort = 2
FilterSRAMBankBandwidth = {bw}
FilterSRAMBankNum = 1
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = false
"""

ACCESS_COLUMNS = {  # uboost's access key -> the DETAILED_ACCESS_REPORT.csv column
    "ifmap_sram_reads": "SRAM IFMAP Reads", "filter_sram_reads": "SRAM Filter Reads",
    "ofmap_sram_writes": "SRAM OFMAP Writes", "ifmap_dram_reads": "DRAM IFMAP Reads",
    "filter_dram_reads": "DRAM Filter Reads", "ofmap_dram_writes": "DRAM OFMAP Writes",
}

CONV_HEADER = "Layer name, IFMAP height, IFMAP width, Filter height, Filter width, Channels, Num filter, Stride height,\n"
GEMM_HEADER = "Layer, M, N, K,\n"


def topology_text(topo: dict) -> tuple[str, bool]:
    if topo["kind"] == "gemm":
        return GEMM_HEADER + f"G0, {topo['m']}, {topo['n']}, {topo['k']},\n", True
    # SCALE-Sim treats any row whose name contains "DP" as depthwise (one-channel layers, Num filter = 1)
    name = "L0_DP" if topo["depthwise"] else "L0"
    filters = 1 if topo["depthwise"] else topo["filters"]
    row = (
        f"{name}, {topo['ifmap_h']}, {topo['ifmap_w']}, {topo['filter_h']}, {topo['filter_w']}, "
        f"{topo['channels']}, {filters}, {topo['stride']},\n"
    )
    return CONV_HEADER + row, False


def access_words(path: str) -> dict:
    """The :data:`ACCESS_COLUMNS` counts of a DETAILED_ACCESS_REPORT.csv, summed over its rows."""
    with open(path) as f:
        lines = [ln for ln in f.read().splitlines() if ln.strip()]
    head = [h.strip() for h in lines[0].split(",")]
    missing = [c for c in ACCESS_COLUMNS.values() if c not in head]
    if missing:
        raise RuntimeError(f"unexpected DETAILED_ACCESS_REPORT.csv header, no {missing}: {head}")
    words = dict.fromkeys(ACCESS_COLUMNS, 0)
    for line in lines[1:]:
        fields = [x.strip() for x in line.split(",")]
        for key, column in ACCESS_COLUMNS.items():
            words[key] += int(float(fields[head.index(column)]))
    return words


def simulate(job: dict, workroot: str) -> dict:
    from scalesim.scale_sim import scalesim

    t0 = time.time()
    wd = tempfile.mkdtemp(prefix=f"job{job['id']}_", dir=workroot)
    try:
        ifmap_kb, filter_kb, ofmap_kb = job.get("sram_kb") or (1024, 1024, 1024)
        cfg = os.path.join(wd, "uboost.cfg")
        with open(cfg, "w") as f:
            f.write(
                CONFIG.format(
                    mode=job.get("mode", "CALC"), rows=job["rows"], cols=job["cols"], dataflow=job["dataflow"],
                    ifmap_kb=ifmap_kb, filter_kb=filter_kb, ofmap_kb=ofmap_kb, bw=job.get("bw") or 10,
                )
            )
        text, gemm = topology_text(job["topology"])
        topo = os.path.join(wd, "topology.csv")
        with open(topo, "w") as f:
            f.write(text)
        layout = os.path.join(wd, "layout.csv")
        with open(layout, "w") as f:
            f.write("Layer name,\n")  # header only: custom layouts are off
        with contextlib.redirect_stdout(io.StringIO()):
            sim = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout, input_type_gemm=gemm)
            sim.run_scale(top_path=wd)
        with open(os.path.join(wd, "uboost", "COMPUTE_REPORT.csv")) as f:
            lines = [ln for ln in f.read().splitlines() if ln.strip()]
        head = [h.strip() for h in lines[0].split(",")]
        if head[2] != "Total Cycles" or head[3] != "Stall Cycles":
            raise RuntimeError(f"unexpected COMPUTE_REPORT.csv header: {head}")
        cycles = stalls = 0
        for line in lines[1:]:
            fields = [x.strip() for x in line.split(",")]
            cycles += int(fields[2])
            stalls += int(fields[3])
        return {"id": job["id"], "cycles": cycles, "stall_cycles": stalls,
                "words": access_words(os.path.join(wd, "uboost", "DETAILED_ACCESS_REPORT.csv")), "seconds": time.time() - t0}
    finally:
        shutil.rmtree(wd, ignore_errors=True)


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the ``finally`` blocks that remove the work folders


def main() -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # by default SIGTERM ends the process and skips ``finally``
    workroot = tempfile.mkdtemp(prefix="uboost_scalesim_")
    out = sys.stdout
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            job = {}
            try:
                job = json.loads(line)
                result = simulate(job, workroot)
            except Exception as exc:  # reported per job; the parent raises
                result = {"id": job.get("id"), "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            out.write(json.dumps(result) + "\n")
            out.flush()
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

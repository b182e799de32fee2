"""The ``scalesim`` cost model: job mapping, disk cache, CALC == systolic, USER-mode golden points.

Tests that run SCALE-Sim need its environment (``uboost hw setup-scalesim`` or
``$UBOOST_SCALESIM_PYTHON``) and are skipped without it; the long ones are marked slow.
"""

import csv
import os
from pathlib import Path

import pytest
import torch

from uboost.exceptions import HardwareError
from uboost.hardware import HardwareSpec, LayerShape, LayerTable, create
from uboost.hardware.scalesim import ScaleSimModel
from uboost.hardware.scalesim_runner import ResultCache, find_python, layer_job

from tests.hardware.test_scalesim_golden import load_rows, shape_of

USER_GOLDEN = Path(__file__).parent / "data" / "scalesim_user_golden.csv"

CONV = LayerShape(name="conv", kind="conv", in_channels=16, out_channels=32, kernel_h=3, kernel_w=3, stride=2,
                  in_h=16, in_w=16, out_h=8, out_w=8)
DW = LayerShape(name="dw", kind="depthwise", in_channels=8, out_channels=8, groups=8, kernel_h=3, kernel_w=3,
                in_h=8, in_w=8, out_h=8, out_w=8)
FC = LayerShape(name="fc", kind="linear", in_channels=64, out_channels=10)


def _simulator():
    try:
        return find_python()
    except HardwareError as exc:
        pytest.skip(f"SCALE-Sim is not set up here: {exc}")


@pytest.fixture
def simulator():
    return _simulator()


# -- no simulator needed ---------------------------------------------------------------------
def test_layers_become_scalesim_jobs():
    spec = HardwareSpec(rows=16, cols=16)
    job, repeat = layer_job(CONV, spec)
    topo = dict(job.topology)
    assert (job.mode, repeat, topo["kind"]) == ("CALC", 1, "conv")
    # no padding in SCALE-Sim: the input is sized so that the output is 8x8 at stride 2
    assert (topo["ifmap_h"], topo["ifmap_w"], topo["stride"], topo["channels"], topo["filters"]) == (17, 17, 2, 16, 32)
    job, repeat = layer_job(DW, spec)
    assert repeat == 8 and dict(job.topology)["depthwise"] and dict(job.topology)["channels"] == 1
    job, repeat = layer_job(FC, spec)
    assert dict(job.topology) == {"kind": "gemm", "m": 1, "k": 64, "n": 10}
    job, _ = layer_job(CONV, HardwareSpec(rows=16, cols=16, batch_size=4))
    assert dict(job.topology) == {"kind": "gemm", "m": 4 * 64, "k": 144, "n": 32}


def test_memory_bound_specs_run_user_mode_and_key_the_cache_by_memory():
    base, _ = layer_job(CONV, HardwareSpec(rows=16, cols=16))
    user, _ = layer_job(CONV, HardwareSpec(rows=16, cols=16, sram_kb=16, dram_bw_words=4))
    other, _ = layer_job(CONV, HardwareSpec(rows=16, cols=16, sram_kb=16, dram_bw_words=10))
    assert (user.mode, user.sram_kb, user.bw) == ("USER", (16, 16, 16), 4)
    assert len({base.key, user.key, other.key}) == 3
    # an unbounded buffer gets room for its whole operand
    roomy, _ = layer_job(CONV, HardwareSpec(rows=16, cols=16, filter_sram_kb=16, dram_bw_words=4))
    assert roomy.sram_kb[1] == 16 and roomy.sram_kb[0] * 1024 >= 2 * 64 * 144
    with pytest.raises(HardwareError, match="whole number"):
        layer_job(CONV, HardwareSpec(rows=16, cols=16, sram_kb=16, dram_bw_words=2.5))


def test_missing_simulator_is_one_clear_error(tmp_path):
    model = create("scalesim", rows=16, cols=16, python=tmp_path / "no-python", cache_dir=tmp_path)
    with pytest.raises(HardwareError, match="setup-scalesim"):
        model.evaluate([CONV])


def test_cached_results_need_no_simulator(tmp_path):
    spec = HardwareSpec(rows=16, cols=16)
    first = ScaleSimModel(spec, python=os.devnull, cache_dir=tmp_path)
    first.prefill([CONV, DW, FC], [1000.0, 800.0, 70.0])
    again = ScaleSimModel(spec, python=os.devnull, cache_dir=tmp_path)
    assert [l.cycles for l in again.evaluate([CONV, DW, FC, CONV]).layers] == [1000.0, 800.0, 70.0, 1000.0]
    assert again.stats.simulated == 0 and again.stats.cached == 3


def test_soft_channels_use_the_closed_form_scaled_to_the_simulated_rows(tmp_path):
    spec = HardwareSpec(rows=16, cols=16)
    model = ScaleSimModel(spec, python=os.devnull, cache_dir=tmp_path)
    systolic = create("systolic", spec=spec)
    table = LayerTable.from_shapes([CONV, FC])
    model.prefill([CONV, FC], [2 * c for c in systolic.cycles(table).tolist()])  # pretend SCALE-Sim says 2x
    cout = table.out_channels.clone().requires_grad_(True)
    soft = model.cycles(table, out_channels=cout, temperature=20.0)
    assert torch.allclose(soft, 2 * systolic.cycles(table, out_channels=cout, temperature=20.0))
    soft.sum().backward()
    assert cout.grad is not None and (cout.grad >= 0).all()


# -- SCALE-Sim itself ------------------------------------------------------------------------
def _golden_subset(limit_cycles: float):
    rows = [r for r in load_rows() if float(r["cycles"]) <= limit_cycles]
    groups = {}
    for row in rows:
        groups.setdefault((int(row["rows"]), int(row["cols"]), row["dataflow"], int(row["batch"])), []).append(row)
    return groups


def _check_calc(groups, tmp_path):
    mismatches, total = [], 0
    for (r, c, flow, batch), members in groups.items():
        spec = HardwareSpec(rows=r, cols=c, dataflow=flow, batch_size=batch)
        table = LayerTable.from_shapes([shape_of(m) for m in members])
        model = create("scalesim", spec=spec, cache_dir=tmp_path, workers=2)
        ours = model.cycles(table).tolist()
        systolic = create("systolic", spec=spec).cycles(table).tolist()
        for m, a, b in zip(members, ours, systolic):
            total += 1
            if not a == b == float(m["cycles"]):
                mismatches.append((m["network"], m["layer"], r, c, flow, a, b, m["cycles"]))
    assert total and not mismatches, f"{len(mismatches)} of {total} differ, e.g. {mismatches[:3]}"


def test_calc_mode_equals_systolic_on_small_golden_points(simulator, tmp_path):
    groups = _golden_subset(700)
    assert sum(len(v) for v in groups.values()) >= 5
    _check_calc(groups, tmp_path)


@pytest.mark.slow
def test_calc_mode_equals_systolic_on_the_golden_points(simulator, tmp_path):
    """Every golden point up to 40k cycles (about 500 of 747; the rest take minutes each)."""
    _check_calc(_golden_subset(40_000), tmp_path)


def test_second_run_hits_the_cache(simulator, tmp_path):
    spec = HardwareSpec(rows=8, cols=8)
    first = ScaleSimModel(spec, cache_dir=tmp_path)
    cycles = first.evaluate([CONV, FC]).cycles
    assert first.stats.simulated == 2 and len(ResultCache(tmp_path)) == 2
    second = ScaleSimModel(spec, python=os.devnull, cache_dir=tmp_path)  # could not simulate if it had to
    assert second.evaluate([FC, CONV]).cycles == cycles
    assert second.stats.simulated == 0 and second.stats.cached == 2


def _user_golden():
    with open(USER_GOLDEN, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_user_mode_matches_stored_scalesim_points(simulator, tmp_path):
    for row in _user_golden():
        spec = HardwareSpec(rows=int(row["rows"]), cols=int(row["cols"]), dataflow=row["dataflow"], batch_size=int(row["batch"]),
                            sram_kb=int(row["sram_kb"]), dram_bw_words=int(float(row["dram_bw_words"])))
        model = create("scalesim", spec=spec, cache_dir=tmp_path)
        assert model.evaluate([shape_of({**row, "network": row["network"]})]).cycles == float(row["cycles"]), row


# -- access counts (energy) ------------------------------------------------------------------
USER_ACCESS = Path(__file__).parent / "data" / "scalesim_user_access.csv"
MEM = HardwareSpec(rows=16, cols=16, sram_kb=16, dram_bw_words=4)


def test_with_finite_buffers_the_words_are_the_simulators_and_price_the_energy(tmp_path):
    """Prefilled counts (as if SCALE-Sim said them) are what accesses() and the energy use, a layer's
    repeats included; soft channels get systolic-mem's counts scaled to them."""
    from uboost.hardware.access import ACCESS_KEYS

    table = LayerTable.from_shapes([CONV, DW])
    closed = create("systolic-mem", spec=MEM)
    words = {key: 3.0 * v for key, v in closed.accesses(table).items()}  # pretend SCALE-Sim moves 3x the words
    model = ScaleSimModel(MEM, python=os.devnull, cache_dir=tmp_path)
    model.prefill([CONV, DW], closed.cycles(table).tolist(), words)
    got = model.accesses(table)
    for key in ACCESS_KEYS:
        assert torch.allclose(got[key], words[key].round(), rtol=1e-6), key
    assert model.evaluate([CONV, DW]).energy_uj > closed.evaluate([CONV, DW]).energy_uj
    cout = table.out_channels.clone().requires_grad_(True)
    soft = model.accesses(table, out_channels=cout, temperature=20.0)
    reference = closed.accesses(table, out_channels=cout, temperature=20.0)
    assert torch.allclose(soft["filter_dram_reads"], 3.0 * reference["filter_dram_reads"], rtol=1e-3)
    soft["filter_dram_reads"].sum().backward()
    assert cout.grad is not None and (cout.grad >= 0).all()


def test_unbounded_buffers_use_the_unbounded_counts_without_simulating(tmp_path):
    spec = HardwareSpec(rows=16, cols=16)
    model = ScaleSimModel.example(spec, [CONV, FC])
    table = LayerTable.from_shapes([CONV, FC])
    plain = create("systolic", spec=spec).accesses(table)
    assert all(torch.equal(model.accesses(table)[k], plain[k]) for k in plain)
    assert model.stats.simulated == 0


def test_a_cache_from_before_the_counts_is_migrated_and_asks_for_them(tmp_path):
    import sqlite3

    job, _ = layer_job(CONV, MEM)
    con = sqlite3.connect(tmp_path / "scalesim-3.0.0.sqlite")  # an older uboost's table: no words column
    con.execute("CREATE TABLE results (key TEXT PRIMARY KEY, cycles INTEGER, stall_cycles INTEGER, seconds REAL)")
    con.execute("INSERT INTO results VALUES (?, 1234, 99, 1.0)", (job.key,))
    con.commit()
    con.close()
    model = ScaleSimModel(MEM, python=os.devnull, cache_dir=tmp_path)
    assert model.cycles(LayerTable.from_shapes([CONV])).item() == 1234.0  # its cycles still serve, nothing simulated
    with pytest.raises(HardwareError):  # its words were never kept: SCALE-Sim is asked (and is not there)
        model.accesses(LayerTable.from_shapes([CONV]))
    ResultCache(tmp_path).put(job.key, 1234, 99, 1.0, {"ifmap_dram_reads": 7, "filter_dram_reads": 5,
                                                          "ofmap_dram_writes": 3, "ifmap_sram_reads": 1,
                                                          "filter_sram_reads": 1, "ofmap_sram_writes": 1})
    again = ScaleSimModel(MEM, python=os.devnull, cache_dir=tmp_path)
    assert again.accesses(LayerTable.from_shapes([CONV]))["ifmap_dram_reads"].item() == 7.0


def test_user_mode_words_equal_the_stored_scalesim_access_counts(simulator, tmp_path):
    from uboost.hardware.access import ACCESS_KEYS

    with open(USER_ACCESS, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["layer"] in ("classifier_fc_256_10", "c5_factreduce_1x1_s2_64_32")]
    assert len(rows) >= 6
    for row in rows:
        spec = HardwareSpec(rows=int(row["rows"]), cols=int(row["cols"]), dataflow=row["dataflow"],
                            sram_kb=int(row["sram_kb"]), dram_bw_words=int(float(row["dram_bw_words"])))
        model = create("scalesim", spec=spec, cache_dir=tmp_path)
        words = model.accesses(LayerTable.from_shapes([shape_of(row)]))
        assert {k: int(words[k].item()) for k in ACCESS_KEYS} == {k: int(row[k]) for k in ACCESS_KEYS}, row


def test_a_shape_read_for_cycles_and_words_counts_once_in_the_stats(tmp_path):
    table = LayerTable.from_shapes([CONV, FC])
    closed = create("systolic-mem", spec=MEM)
    ScaleSimModel(MEM, python=os.devnull, cache_dir=tmp_path).prefill([CONV, FC], closed.cycles(table).tolist(),
                                                                      closed.accesses(table))
    model = ScaleSimModel(MEM, python=os.devnull, cache_dir=tmp_path)
    model.evaluate([CONV, FC])  # cycles and energy: two looks at the cache
    assert (model.stats.cached, model.stats.simulated) == (2, 0)


def _bits(layer: LayerShape, bits: int) -> LayerShape:
    import dataclasses

    return dataclasses.replace(layer, weight_bits=bits, act_bits=bits)


def test_narrow_operands_run_with_the_memory_scaled_to_their_elements():
    # a b-bit operand takes b/8 of SCALE-Sim's 1-byte words: every bitwidth was simulated as 8 bits, under one key
    spec = HardwareSpec(rows=16, cols=16, ifmap_sram_kb=16, filter_sram_kb=8, dram_bw_words=4)
    jobs = {b: layer_job(_bits(CONV, b), spec)[0] for b in (8, 4, 2)}
    assert [(jobs[b].sram_kb[:2], jobs[b].bw) for b in (8, 4, 2)] == [((16, 8), 4), ((32, 16), 8), ((64, 32), 16)]
    assert len({job.key for job in jobs.values()}) == 3
    # the same simulation as 8 bits on twice the memory: one cache entry for both
    twice = HardwareSpec(rows=16, cols=16, ifmap_sram_kb=32, filter_sram_kb=16, dram_bw_words=8)
    assert jobs[4].key == layer_job(CONV, twice)[0].key
    assert layer_job(_bits(CONV, 4), HardwareSpec(rows=16, cols=16))[0] == layer_job(CONV, HardwareSpec(rows=16, cols=16))[0]


def test_widths_scalesim_cannot_hold_are_refused_in_one_line():
    import dataclasses

    from uboost.search import SearchConfig

    with pytest.raises(HardwareError, match="one word size: a layer of 4-bit weights and 8-bit activations"):
        layer_job(dataclasses.replace(CONV, weight_bits=4), MEM)
    with pytest.raises(HardwareError, match="times 8/16 as whole numbers, got 0.5/0.5/0.5 kB and 2.5 words"):
        layer_job(_bits(CONV, 16), HardwareSpec(rows=16, cols=16, sram_kb=1, dram_bw_words=5))
    with pytest.raises(HardwareError, match="one word size"):  # before a search writes anything
        SearchConfig(space="lenet", cost_model="scalesim", sram_kb=16, dram_bw_words=4, weight_bits=(4, 8))
    with pytest.raises(HardwareError, match="8/3"):
        SearchConfig(space="lenet", cost_model="scalesim", sram_kb=16, dram_bw_words=4, bits=(3, 8))
    SearchConfig(space="lenet", cost_model="scalesim", sram_kb=16, dram_bw_words=4, bits=(2, 4, 8))
    SearchConfig(space="lenet", cost_model="scalesim", weight_bits=(4, 8))  # CALC mode: any widths


def test_narrow_operands_are_not_slower_as_under_systolic_mem(simulator, tmp_path):
    spec = HardwareSpec(rows=16, cols=16, dataflow="os", sram_kb=1, dram_bw_words=10)
    layer = LayerShape(name="l", kind="conv", in_channels=16, out_channels=32, kernel_h=3, kernel_w=3,
                       in_h=10, in_w=10, out_h=8, out_w=8)
    sim = create("scalesim", spec=spec, python=simulator, cache_dir=tmp_path)
    closed = create("systolic-mem", spec=spec)
    widths = (8, 4, 2)
    simulated = [sim.evaluate([_bits(layer, b)]).cycles for b in widths]
    fitted = [closed.evaluate([_bits(layer, b)]).cycles for b in widths]
    assert simulated[0] == 4759  # SCALE-Sim 3.0.0 on this layer and memory, run by hand
    assert simulated[0] > simulated[1] >= simulated[2] and fitted[0] > fitted[1] >= fitted[2]


def test_the_example_models_cache_folder_goes_with_it():
    import gc

    model = ScaleSimModel.example(HardwareSpec(rows=16, cols=16), [CONV])
    folder = model.cache.directory
    assert (folder / "scalesim-3.0.0.sqlite").is_file()
    del model
    gc.collect()
    assert not folder.exists()  # one folder per call was left in the temp dir


def test_a_terminated_worker_removes_its_work_folder(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from uboost.hardware.scalesim_runner import WORKER

    proc = subprocess.Popen([sys.executable, os.fspath(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            env={**os.environ, "TMPDIR": os.fspath(tmp_path)})
    try:
        deadline = time.time() + 30
        while not list(tmp_path.glob("uboost_scalesim_*")) and time.time() < deadline:
            time.sleep(0.05)
        assert list(tmp_path.glob("uboost_scalesim_*")), "the worker made no work folder"
        proc.send_signal(signal.SIGTERM)  # as a parent stopping its workers does; the folder was left behind
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
    assert not list(tmp_path.glob("uboost_scalesim_*"))

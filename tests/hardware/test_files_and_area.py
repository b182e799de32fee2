"""Issue 22 items 1 and 3: accelerator files (uboost TOML, SCALE-Sim .cfg 1/2/3) and the area model."""

import dataclasses
from pathlib import Path

import pytest

from uboost.exceptions import UBoostError
from uboost.hardware import HardwareSpec, parse_array
from uboost.hardware.area import AreaTable, area_breakdown_mm2, area_mm2, resolve_area
from uboost.hardware.files import hardware_toml, load_hardware, read_hardware_file

CFG = Path(__file__).parent / "data" / "scalesim_cfg"


def test_scalesim_v2_example_reads_into_the_spec_of_the_equivalent_flags():
    rows, cols = parse_array("32x32")  # --array 32x32 --dataflow os --sram-kb 64 --dram-bw-words 64
    flags = HardwareSpec(rows=rows, cols=cols, dataflow="os", sram_kb=64, dram_bw_words=64)
    assert load_hardware(CFG / "scale_v2.cfg") == flags


def test_scalesim_v3_example_keeps_each_buffer_and_the_user_bandwidth():
    spec = load_hardware(CFG / "google_v3.cfg")
    assert (spec.rows, spec.cols, spec.dataflow) == (256, 256, "ws")
    assert spec.buffer_kb == (6144, 6144, 2048) and spec.dram_bw_words == 10 and spec.memory_bound


def test_scalesim_v1_example_without_run_presets_is_compute_only():
    spec = load_hardware(CFG / "eyeriss_v1.cfg")
    assert (spec.rows, spec.cols, spec.buffer_kb) == (12, 14, (512, 512, 256))
    assert spec.dram_bw_words is None and not spec.memory_bound  # CALC: SCALE-Sim never stalls


def test_scalesim_v2_eyeriss_with_its_accelergy_keys_reads():
    """QA: scale-sim-v2's own configs/eyeriss.cfg was refused for the Accelergy add-on's [run_presets] row and bank
    sizes, keys SCALE-Sim's run ignores."""
    spec = load_hardware(CFG / "eyeriss_v2.cfg")
    assert (spec.rows, spec.cols, spec.dataflow, spec.buffer_kb) == (12, 14, "ws", (36, 36, 36))
    assert spec.dram_bw_words is None and not spec.memory_bound  # CALC


def test_scalesim_v3_bank_bandwidths_other_than_bandwidth_are_refused(tmp_path):
    # SCALE-Sim 3 reads the ifmap and filter DRAM bandwidth from [layout]; Bandwidth was priced for all three
    with pytest.raises(UBoostError, match="IfmapSRAMBankBandwidth = 10 differs from Bandwidth = 50"):
        read_hardware_file(CFG / "bank_bw_v3.cfg")
    text = (CFG / "bank_bw_v3.cfg").read_text()
    same = tmp_path / "same.cfg"
    same.write_text(text.replace("SRAMBankBandwidth = 10", "SRAMBankBandwidth = 50"))
    assert load_hardware(same).dram_bw_words == 50
    filter_only = tmp_path / "filter.cfg"
    filter_only.write_text(text.replace("IfmapSRAMBankBandwidth = 10", "IfmapSRAMBankBandwidth = 50"))
    with pytest.raises(UBoostError, match="FilterSRAMBankBandwidth = 10 differs"):
        read_hardware_file(filter_only)


def test_command_line_options_override_the_file():
    spec = load_hardware(CFG / "scale_v2.cfg", rows=16, dataflow="ws", sram_kb=None)
    assert (spec.rows, spec.cols, spec.dataflow, spec.sram_kb) == (16, 32, "ws", 64)


def test_toml_round_trip_with_energy_points_and_area(tmp_path):
    from uboost.hardware.energy import PRESETS as ENERGY
    from uboost.hardware.operating import PRESETS as POINTS
    import dataclasses

    energy = dataclasses.replace(ENERGY["eyeriss65"], name="mine", dram_pj_per_bit=12.5)
    spec = HardwareSpec(rows=24, cols=8, dataflow="is", ifmap_sram_kb=16, filter_sram_kb=32, ofmap_sram_kb=8,
                        dram_bw_words=4.5, clock_hz=800e6, energy=energy, operating_points=POINTS["rk3576-npu"])
    area = dataclasses.replace(resolve_area("tpu28"), name="mine", fixed_mm2=1.5)
    path = tmp_path / "acc.toml"
    path.write_text(hardware_toml(spec, area))
    fields = read_hardware_file(path)
    assert fields.pop("area") == area
    assert HardwareSpec(**fields) == spec
    assert path.read_text() == hardware_toml(HardwareSpec(**fields), area)


def test_toml_round_trip_leaves_the_networks_bits_out(tmp_path):
    import dataclasses

    spec = HardwareSpec(rows=8, cols=8, sram_kb=4, dram_bw_words=2, bits=4)
    path = tmp_path / "acc.toml"
    path.write_text(hardware_toml(spec))  # wrote bits = 4, which the reader refuses
    assert "\nbits = " not in path.read_text()
    assert load_hardware(path) == dataclasses.replace(spec, bits=8)


def test_table_files_in_a_toml_are_found_beside_it_from_any_directory(tmp_path, monkeypatch):
    from uboost.accelerator import config_changes

    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "acc.toml").write_text('[hardware]\nrows = 16\ncols = 16\nsram_kb = 8\nenergy = "e.toml"\n'
                                   'area = "a.toml"\noperating_points = "p.toml"\n')
    (conf / "e.toml").write_text('base = "horowitz45"\ndram_pj_per_bit = 1.0\n')
    (conf / "a.toml").write_text('base = "tpu28"\nfixed_mm2 = 0.0\n')
    (conf / "p.toml").write_text("points = [[5e8, 0.7], [6e8, 0.8]]\n")
    (tmp_path / "e.toml").write_text('base = "horowitz45"\ndram_pj_per_bit = 100.0\n')  # a decoy in the parent
    seen = []
    for cwd, name in ((tmp_path, "conf/acc.toml"), (conf, "acc.toml")):
        monkeypatch.chdir(cwd)
        fields = read_hardware_file(name)
        spec = load_hardware(name)
        seen.append((spec, resolve_area(fields["area"]), config_changes(fields)))
    assert seen[0] == seen[1]
    spec, area, stored = seen[0]
    assert spec.energy_table.dram_pj_per_bit == 1.0 and area.fixed_mm2 == 0.0 and spec.clock_hz == 6e8
    assert stored["energy"]["dram_pj_per_bit"] == 1.0  # a run directory keeps the tables, not the paths
    assert isinstance(stored["operating_points"], dict) and isinstance(stored["hardware"]["area"], dict)


def test_area_by_hand_on_tpu28():
    spec = HardwareSpec(rows=16, cols=16, sram_kb=16, dram_bw_words=4)
    pe, kb, fixed = 0.24 * 331 / 65536, 0.29 * 331 / 24576, 0.02 * 331
    parts = area_breakdown_mm2(spec, "tpu28")
    assert parts["pe"] == pytest.approx(256 * pe) and parts["sram"] == pytest.approx(48 * kb)
    assert area_mm2(spec, "tpu28") == pytest.approx(256 * pe + 48 * kb + fixed)
    assert area_mm2(HardwareSpec(rows=32, cols=32, sram_kb=16, dram_bw_words=4), "recpipe12") == pytest.approx(
        0.506891 + 48 * 0.029142 / 32)  # the published 32x32 array plus three 16 kB buffers


def test_area_needs_sized_buffers_and_a_pe_factor():
    with pytest.raises(UBoostError, match="sized buffers"):
        area_mm2(HardwareSpec(rows=8, cols=8))
    with pytest.raises(UBoostError, match="pe_mm2"):
        AreaTable(name="x", tech_nm=7, pe_mm2=-1, sram_mm2_per_kb=0.001)
    with pytest.raises(UBoostError, match="unknown area preset"):
        resolve_area("tsmc3")
    with pytest.raises(UBoostError, match="base must be a preset name"):
        resolve_area({"base": ["tpu28"]})


@pytest.mark.parametrize("text, fragment", [
    ("[architecture_presets]\nArrayHeight: 8\nArrayWidth: 8\nFancyKnob: 3\n", "unknown key(s) FancyKnob in"),  # as the file spells it, not lower-cased
    ("[architecture_presets]\nArrayHeight: 8\nArrayWidth: 8\n[turbo]\nx: 1\n", "unknown section [turbo]"),
    ("[architecture_presets]\nArrayHeight: 8\nArrayWidth: 8\nIfmapSramSzkB: -4\n", "IfmapSramSzkB must be a positive whole number"),
    ("[architecture_presets]\nArrayHeight: 8\nArrayWidth: 8\nifmapsramsz: 0\nFILTERSRAMSZ: 2\nOfmapSramSz: 2\n", "ifmapsramsz must be a"),
    ("[architecture_presets]\narrayheight: 0\nArrayWidth: 8\n", "arrayheight must be a positive"),
    ("[architecture_presets]\nArrayHeight: 8\nArrayWidth: 8\n[run_presets]\ninterfaceBandwidth: ASK\n", "interfaceBandwidth must be CALC"),
    ("[architecture_presets]\nArrayHeight: 8\n", "needs ArrayHeight and ArrayWidth"),
    ("ArrayHeight: 8\n", "cannot read SCALE-Sim config"),
    ("[general]\nrun_name = x\n", "no [architecture_presets]"),
    ("[architecture_presets]\nArrayHeight: 8\nArrayWidth: 8\nBandwidth: 10,20\n[run_presets]\nInterfaceBandwidth: USER\n", "per-layer"),
    # QA: 0 blamed the [layout] bank bandwidths; inf named dram_bw_words
    ("[architecture_presets]\nArrayHeight: 8\nArrayWidth: 8\nBandwidth: 0\n[layout]\nIfmapSRAMBankBandwidth: 10\n"
     "FilterSRAMBankBandwidth: 10\n[run_presets]\nInterfaceBandwidth: USER\n", "Bandwidth must be a positive number"),
    ("[architecture_presets]\nArrayHeight: 8\nArrayWidth: 8\nBandwidth: inf\n[run_presets]\nInterfaceBandwidth: USER\n",
     "Bandwidth must be a positive number"),
    ("[architecture_presets]\nArrayHeight: 8\nArrayWidth: 8\nDataflow: xs\n", "dataflow"),
])
def test_bad_scalesim_files_are_one_clear_error(tmp_path, text, fragment):
    path = tmp_path / "bad.cfg"
    path.write_text(text)
    with pytest.raises(UBoostError) as info:
        read_hardware_file(path)
    assert fragment in str(info.value)


@pytest.mark.parametrize("text, fragment", [
    ("[hardware]\nrows = 8\ncolumns = 8\n", "unknown key(s) columns"),
    ("rows = 8\n[hardware]\ncols = 8\n", "outside the [hardware] table"),
    ("[hardware]\nrows = -8\ncols = 8\n", "rows must be a positive integer"),
    ("[hardware]\nsram_kb = 0\n", "sram_kb"),
    ("[hardware]\nenergy = \"nope\"\n", "unknown energy preset"),
    ("[hardware]\n[hardware.energy]\nbase = \"horowitz45\"\ndram_pj_per_bit = -1\n", "dram_pj_per_bit"),
    ("[hardware]\nrows = 8\ncols = 8\nbits = 4\n", "would price nothing"),  # was accepted and priced at 8 bits
    ("[hardware]\ncols = 32\n", "but no rows"),  # rows took the default 128, silently
    # a misnamed table is a missing [hardware] table, not an "unknown key hw"
    ("[hw]\nrows = 8\ncols = 8\n", "no [hardware] table; [hw] is not a known table"),
    ("[hardware]\nrows = 8\ncols = 8\n[hardware.power]\nx = 1\n", "[hardware.power] is not a known table"),
    # a bad operating point names the file and the table, not only the value
    ("[hardware]\nrows = 8\ncols = 8\noperating_points = [[4e8, -0.9]]\n", "bad.toml: [hardware.operating_points]: voltage_v"),
    ("[hardware]\nrows = 8\ncols = 8\noperating_points = [[8e8, 0.9], [4e8, 0.7]]\n", "bad.toml: [hardware.operating_points]: operating points must be sorted"),
])
def test_bad_toml_files_are_one_clear_error(tmp_path, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UBoostError) as info:
        read_hardware_file(path)
    assert fragment in str(info.value)


def test_a_full_area_table_with_a_pe_factor_keeps_the_fixed_pe(tmp_path):
    """Giving pe_factor = {bitfusion = 2} replaced the default {fixed = 1}: a fixed-PE accelerator had "no PE area"."""
    (tmp_path / "a.toml").write_text("tech_nm = 7\npe_mm2 = 0.001\nsram_mm2_per_kb = 0.001\npe_factor = {bitfusion = 2}\n")
    table = resolve_area(tmp_path / "a.toml")
    assert table.pe_factor == {"fixed": 1.0, "bitfusion": 2}
    spec = HardwareSpec(rows=4, cols=4, sram_kb=2)
    assert area_breakdown_mm2(spec, table)["pe"] == pytest.approx(16 * 0.001)
    assert area_breakdown_mm2(dataclasses.replace(spec, pe="bitfusion"), table)["pe"] == pytest.approx(32 * 0.001)
    with pytest.raises(UBoostError, match="pe_factor has no PE mode 'bitfuson'; expected: fixed"):
        AreaTable(name="x", tech_nm=7, pe_mm2=0.001, sram_mm2_per_kb=0.001, pe_factor={"bitfuson": 2})

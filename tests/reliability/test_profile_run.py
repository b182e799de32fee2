"""Issue 27, wrong results: ``profile RUN`` prices on the run's own accelerator and cost model (as its
hardware.json), and ``profile --json`` is always valid JSON (no Infinity/NaN)."""

import json
import math


def test_profile_of_a_run_uses_its_own_array(cli, tiny_run):
    result = cli("profile", tiny_run, "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)["reports"][0]
    stored = json.loads((tiny_run / "hardware.json").read_text())
    assert report["hardware"]["rows"] == stored["hardware"]["rows"] == 16
    assert report["total"]["cycles"] == stored["total"]["cycles"]
    assert report["cost_model"] == stored["cost_model"]


def test_profile_flags_still_override_the_run(cli, tiny_run):
    result = cli("profile", tiny_run, "--json", "--array", "8x8", "--dataflow", "os")
    report = json.loads(result.out)["reports"][0]
    assert (report["hardware"]["rows"], report["hardware"]["dataflow"]) == (8, "os")


def test_profile_json_never_prints_infinity(cli):
    result = cli("profile", "torch.nn:Identity", "--input", "1x4x4", "--json")
    assert result.code == 0, result.err
    result = cli("profile", "resnet18", "--input", "3x32x32", "--clock-hz", "1e-320", "--json")
    assert result.code == 0, result.err
    assert "Infinity" not in result.out and "NaN" not in result.out

    def strict(text):
        return json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))

    data = strict(result.out)
    assert data["reports"][0]["total"]["latency_ms"] is None  # not representable: null, never Infinity
    assert math.isfinite(data["reports"][0]["total"]["cycles"])

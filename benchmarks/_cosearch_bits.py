"""bench_cosearch.py --bits: where the gain comes from (bits or accelerator), and the baseline at uniform bits.

* ``split``: the co-search pick's network priced (cost model only) at uniform 8 bits on the pick's own
  accelerator (the accelerator's and network's share without the bits) and at its searched bits on the
  baseline's 16x16 accelerator (the network's and bits' share without the accelerator).
* ``uniform_reference``: the baseline's reference network retrained quantization-aware at uniform ``b``
  bits (same retrain settings as a trial, from scratch) and priced at ``b`` bits on the 16x16 baseline:
  a fairness row, since the baseline is priced at 8 bits with a float-trained network while the
  co-search may pick 4-bit layers.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path


def _network(run_dir):
    from uboost.networks import load_frozen_network

    return load_frozen_network(Path(run_dir))  # at its precision.json, if it has one


def _price(config: dict, shapes) -> dict:
    from uboost.search import SearchConfig, build_cost_model

    report = build_cost_model(SearchConfig.from_dict(config)).evaluate(shapes)
    return {"latency_ms": report.latency_ms, "energy_uj": report.energy_uj, "edp_uj_ms": report.edp_uj_ms}


def split(pick_trial, reference_trial, space=None) -> dict:
    """The pick's network at 8 bits on its accelerator (and, with the co-search ``space``, on the best accelerator
    for it at 8 bits), and at its bits on the reference's (16x16) accelerator."""
    from uboost.hardware.layers import extract_layers

    network = _network(pick_trial.user_attrs["run_dir"])
    shapes = extract_layers(network.module, network.input_shape)
    eight = [dataclasses.replace(s, weight_bits=8, act_bits=8) for s in shapes]
    found = {"pick_at_8_bits_on_its_accelerator": _price(pick_trial.user_attrs["config"], eight),
             "pick_at_its_bits_on_the_16x16_baseline": _price(reference_trial.user_attrs["config"], shapes)}
    if space is not None:
        found["pick_at_8_bits_on_its_best_accelerator"] = best_on_space(eight, space, reference_trial.user_attrs["config"])
    return found


def best_on_space(shapes, space, config: dict) -> dict:
    """``shapes`` on the accelerator of least EDP of the co-search ``space`` within its budget (cost model only:
    the inner accelerator choice of ``uboost tune``, equal to pricing every one)."""
    from uboost.search import SearchConfig
    from uboost.tuning import inner_accelerator

    choice = inner_accelerator.choose(shapes, space, SearchConfig.from_dict(config), objective="edp")
    spec, report = choice.report.spec, choice.report
    return {"accelerator": f"{spec.array} {spec.dataflow}, {'/'.join(str(k) for k in spec.buffer_kb)} kB, {spec.clock_hz / 1e6:g} MHz",
            "latency_ms": report.latency_ms, "energy_uj": report.energy_uj, "edp_uj_ms": report.edp_uj_ms,
            "area_mm2": choice.area_mm2, "accelerators_within_budget": choice.within_budget}


def same_network(out: Path, source: Path) -> bool:
    """Whether ``out`` holds ``source``'s network: the same ``arch.json`` and ``config.json``."""
    try:
        return all(json.loads((out / name).read_text()) == json.loads((source / name).read_text())
                   for name in ("arch.json", "config.json"))
    except (OSError, ValueError):
        return False


def uniform_reference(reference_trial, bits: int, out: Path, space=None) -> dict:
    """The reference network retrained at uniform ``bits`` (reused when ``out`` holds the retrain) and priced at them
    on the 16x16 baseline, and (with the co-search ``space``) on the best accelerator of the space within its budget."""
    from uboost.hardware.layers import extract_layers
    from uboost.io import write_json
    from uboost.quant import quantized_layers
    from uboost.retrain import RetrainConfig, retrain

    source = Path(reference_trial.user_attrs["run_dir"])
    done = out / "retrain" / "retrain.json"
    if done.is_file() and not same_network(out, source):  # another reference's (e.g. before a baseline local search)
        shutil.rmtree(out)
    if not done.is_file():
        out.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "arch.json"):
            shutil.copy2(source / name, out / name)
        network = _network(source)
        write_json(out / "precision.json", {name: {"weight_bits": bits, "act_bits": bits} for name, _ in quantized_layers(network.module)})
        settings = json.loads((source / "retrain" / "retrain.json").read_text())["config"]  # the reference's own retrain
        names = {f.name for f in dataclasses.fields(RetrainConfig)}
        retrain(out, RetrainConfig(**{k: v for k, v in settings.items() if k in names}))
    summary = json.loads(done.read_text())
    network = _network(out)
    shapes = extract_layers(network.module, network.input_shape)
    assert {(s.weight_bits, s.act_bits) for s in shapes} == {(bits, bits)} and summary["quantized"]
    found = {"bits": bits, "accuracy": summary["test_acc"], **_price(reference_trial.user_attrs["config"], shapes)}
    if space is not None:  # the inner choice's enumeration, as for the 8-bit reference
        found["best_accelerator"] = best_on_space(shapes, space, reference_trial.user_attrs["config"])
    return found

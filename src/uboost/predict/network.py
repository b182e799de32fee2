"""What ``uboost predict`` reports for one network of a run's space: predicted accuracy with its
uncertainty, and the exact latency, cycles, utilization (and energy, where the run's cost model
prices it) on the run's own array."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from uboost import runs
from uboost.exceptions import ArchitectureError


def _choices(config, alphas: dict):
    """The run's choices (a supernet without weights: enough to read and check architectures)."""
    from uboost.search_config import build_space
    from uboost.strategy import UBoost
    from uboost.strategy.architecture import choice_groups, load_alphas

    space, _, _ = build_space(config)
    supernet = UBoost(sampling=config.sampling, seed=config.seed).mutate_model(space)
    load_alphas(supernet, alphas)
    return choice_groups(supernet)


def network_indices(choices: list, nodes: list, arch: dict) -> dict[str, int]:
    """``arch`` (NNI's dict) as label -> entry index; anything outside the space is one line."""
    from uboost.strategy.architecture import arch_to_indices, indices_to_arch

    try:
        by_id = arch_to_indices(choices, nodes, arch)
        indices_to_arch(choices, nodes, by_id)  # every node keeps as many inputs as it must
    except ArchitectureError:
        raise
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        raise ArchitectureError(f"architecture does not fit the search space ({type(exc).__name__}: {exc})") from None
    return {c.label: by_id[id(c.alpha)] for c in choices}


def _asks_otherwise(meta: dict, **asked) -> list[str]:
    """``name saved -> asked`` for each setting given now (not None) that differs from the one the saved table was
    built with."""
    return [f"{name.removesuffix('_asked').replace('_', '-')} {meta.get(name)} -> {value}"
            for name, value in asked.items() if value is not None and meta.get(name) != value]


def predict_run(run: str | os.PathLike, arch_file: str | os.PathLike | None = None, *, rebuild: bool = False,
                samples: int | None = None, seed: int | None = None, fine_tune_epochs: int | None = None,
                progress=None) -> dict[str, Any]:
    """Predict the run's argmax network, or the architecture in ``arch_file``.

    Everything is checked before anything is built or written: the run (config, alphas, a
    supernet checkpoint), the architecture (in the space), a saved table (not corrupt, built
    from these alphas). Without a saved table, or with ``rebuild``, one is built and saved; ``samples``, ``seed`` or
    ``fine_tune_epochs`` given and different from the saved table's is refused without ``rebuild`` (other commands
    read the saved table)."""
    from uboost.predict.predictor import DEFAULT_FINE_TUNE_EPOCHS, DEFAULT_SAMPLES, build_predictor, load_predictor
    from uboost.predict.supernet import check_search_run
    from uboost.search_config import SearchConfig, build_cost_model, build_space
    from uboost.strategy.architecture import argmax_indices, indices_to_arch, preferences

    root = Path(run)
    check_search_run(root)
    config = SearchConfig.from_dict(runs.read_json(root / runs.CONFIG, "run config"))
    alphas = runs.read_json(root / runs.ALPHAS, "alphas")
    if not isinstance(alphas, dict):
        from uboost.exceptions import RunDirError

        raise RunDirError(f"{root / runs.ALPHAS} must hold a JSON object (label -> list of numbers)")
    choices, nodes = _choices(config, alphas)
    priced_run = runs.RunArtifacts(config=config.to_dict(), arch={}, root=root)  # where the network is priced
    if arch_file is None:
        arch = indices_to_arch(choices, nodes, argmax_indices(choices, nodes), preferences(choices, nodes))
        label = "the search's argmax"
    else:
        path = Path(arch_file)
        if path.is_dir():  # a run directory, as retrain, export and profile take: its arch.json
            path = path / runs.ARCH
        arch = runs.read_json(path, "architecture")
        if not isinstance(arch, dict):
            raise ArchitectureError(f"{arch_file} must hold a JSON object (NNI's architecture dict)")
        label = str(arch_file)
        if (path.parent / runs.CONFIG).is_file():  # a run of its own (an export, a frontier point): its accelerator and clock
            priced_run = runs.load_run(path)
    space, input_shape, _ = build_space(config)
    network = runs.freeze_arch(space, arch)  # labels and values of the space, or one line
    indices = network_indices(choices, nodes, arch)
    # priced as profile and retrain price the run: at the DVFS point an `--operating-point auto` search chose
    # (before any table is built: a run whose config cannot price it is one line with nothing written)
    priced = runs.network_config(runs.RunArtifacts(config=priced_run.config, arch=arch, root=priced_run.root))
    priced_config = SearchConfig.from_dict(priced)
    cost_model = build_cost_model(priced_config)
    report = cost_model.evaluate(network, input_shape)
    predictor = None if rebuild else load_predictor(root)
    changed = _asks_otherwise(predictor.meta, samples_asked=samples, seed=seed, fine_tune_epochs=fine_tune_epochs) \
        if predictor is not None else []
    if changed:  # export and frontier --objective predicted-accuracy read the saved table: not replaced in silence
        from uboost.exceptions import ConfigError

        raise ConfigError(f"{root / 'predictor.json'} was built with other settings ({', '.join(changed)}); pass --rebuild "
                          "to replace it with one built at these, or leave them out to use it")
    built = predictor is None
    if built:
        epochs = DEFAULT_FINE_TUNE_EPOCHS if fine_tune_epochs is None else fine_tune_epochs
        predictor = build_predictor(root, samples=samples or DEFAULT_SAMPLES, seed=seed or 0, fine_tune_epochs=epochs,
                                    progress=progress)
    predictor.check_space(choices)  # a table of another space (or edited) is refused, not indexed past its values
    prediction = predictor.predict(indices)
    # energy where the run's cost model prices it (uboost's energy tables: NetworkCost.energy_uj; 0 when unpriced)
    energy_uj = getattr(report, "energy_uj", None) if hasattr(cost_model, "energy_pj") else None
    energy_uj = energy_uj if isinstance(energy_uj, (int, float)) and energy_uj > 0 else None
    return {
        "run": str(root), "network": label, "arch": arch,
        "predicted_accuracy": prediction.accuracy, "uncertainty": prediction.uncertainty,
        "predicted_accuracy_unclipped": prediction.raw,
        "unseen_values": list(prediction.unseen),
        "latency_ms": report.latency_ms, "cycles": report.cycles, "utilization": report.utilization, "macs": report.macs,
        **({"energy_uj": float(energy_uj)} if energy_uj is not None else {}),
        "array": priced_config.array, "dataflow": priced_config.dataflow, "cost_model": priced_config.cost_model,
        "clock_hz": cost_model.spec.clock_hz if hasattr(cost_model, "spec") else None,
        "predictor": {"built_now": built, "samples": predictor.table.samples, "loo_rmse": predictor.table.loo_rmse,
                      "loo_mae": predictor.table.loo_mae, "ridge": predictor.table.ridge,
                      "seconds": predictor.meta.get("seconds"), "seed": predictor.meta.get("seed"),
                      "fine_tune_epochs": predictor.meta.get("fine_tune_epochs")},
    }

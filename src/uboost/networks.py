"""Resolve a network given on the command line: a torchvision name, ``module:factory``, or the
derived network of a run directory. Imports :mod:`uboost.search` and :mod:`uboost.runs`, never
the other way round."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass

from torch import nn

from uboost import runs
from uboost.exceptions import ConfigError, RegistryError, RunDirError


@dataclass(frozen=True)
class LoadedNetwork:
    module: nn.Module
    input_shape: tuple[int, ...] | None  # the natural input (C, H, W), when known
    label: str
    search_config: object | None = None  # a run's SearchConfig: the accelerator and cost model it was priced on


def load_network(spec: str) -> LoadedNetwork:
    """``resnet18`` (any torchvision classification model, random weights) or ``pkg.mod:factory``."""
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        import os
        import sys

        added = "" not in sys.path and os.getcwd() not in sys.path  # the uboost script does not search the current
        if added:                                                     # directory, as python -m does: mymodel.py there
            sys.path.insert(0, os.getcwd())
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot load {spec!r}: {exc}") from None
        finally:
            if added:
                sys.path.remove(os.getcwd())
        try:
            module = factory()
        except Exception as exc:  # user code: report it in one line
            raise ConfigError(f"{spec} raised {type(exc).__name__}: {exc}") from None
        if not isinstance(module, nn.Module):
            raise ConfigError(f"{spec} returned {type(module).__name__}, expected a torch.nn.Module")
        return LoadedNetwork(module, getattr(module, "input_shape", None), spec)
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    if spec not in names:
        close = [n for n in names if spec.lower().replace("-", "_") in n][:6]
        hint = f" (did you mean {', '.join(close)}?)" if close else " (e.g. resnet18, mobilenet_v2, or module:factory)"
        raise RegistryError(f"unknown model {spec!r}: not a torchvision classification model nor module:factory{hint}")
    module = torchvision.models.get_model(spec, weights=None)
    return LoadedNetwork(module, (3, *(_torchvision_size(spec, module),) * 2), spec)


def _torchvision_size(name: str, module: nn.Module) -> int:
    """The image side a torchvision model takes: a transformer's own ``image_size`` (fixed by its position
    embeddings), else the evaluation crop of its default weights (299 for inception_v3, 300 for efficientnet_b3, ...;
    read from the weights' description, nothing downloaded), else 224."""
    size = getattr(module, "image_size", None)
    if isinstance(size, int) and size > 0:
        return size
    try:
        import torchvision

        return int(torchvision.models.get_model_weights(name).DEFAULT.transforms().crop_size[0])
    except Exception:  # a model without registered weights
        return 224


def load_network_or_run(spec: str) -> LoadedNetwork:
    """Like :func:`load_network`, but also accepts a search run directory or an ``arch.json``."""
    from pathlib import Path

    path = Path(spec).expanduser()  # a quoted '~/run' reaches us as typed
    if path.suffix == ".json" or path.is_dir():
        return load_frozen_network(path)
    return load_network(spec)


def load_frozen_network(path: str | os.PathLike) -> LoadedNetwork:
    """The derived network of a run directory (or ``arch.json`` beside its ``config.json``),
    frozen from a fresh space: what ``profile``, ``export`` and ``retrain`` build."""
    from uboost.search import SearchConfig, build_space

    run = runs.load_run(path)
    if not run.config:
        raise RunDirError(f"no {runs.CONFIG} next to {path}: cannot tell which space the architecture belongs to")
    config = SearchConfig.from_dict(runs.network_config(run))  # at the operating point the search chose with it
    space, shape, _ = build_space(config)
    network = runs.freeze_arch(space, run.arch)
    from uboost.quant import apply_run_precision

    bits = runs.SEARCHED_BITS if apply_run_precision(network, run.root) is not None else ""  # precision.json
    return LoadedNetwork(network, shape, f"{run.root.name} ({config.space}){bits}", config)


def reinitialize(module: nn.Module, seed: int) -> nn.Module:
    """``module``'s parameters drawn afresh from ``seed``, module by module in order (each layer's own
    ``reset_parameters``: torch's default initialization; batch norms also reset their statistics). A frozen
    NNI network keeps the weights drawn while its whole space was built -- every candidate of every choice
    drew from the same stream -- so the same network found in two spaces (``--cell-arch`` against the full
    cell space, another width list) started from other weights. After this it starts from the same ones.
    Only for spaces whose layers use torch's default initialization: ``uboost retrain`` calls it where the
    space declares ``default_init = True`` (a plug-in space with an initializer of its own keeps it)."""
    import torch

    torch.manual_seed(seed)
    for each in module.modules():
        reset = getattr(each, "reset_parameters", None)
        if callable(reset):
            reset()
    return module

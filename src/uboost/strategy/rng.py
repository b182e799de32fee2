"""Random-number state that travels with a search checkpoint (resume = the uninterrupted run).

A search draws from the global torch RNG (Gumbel noise), from CUDA's where a GPU runs, from
numpy and Python's ``random`` (through libraries), and from the generators of its own data
loaders (the shuffling order of every epoch). Lightning checkpoints none of them, so a resumed
search used to replay epoch 0's data order and other noise: it did not repeat the run it
continued. :func:`collect` stores all of them as plain tensors, lists and ints (loadable with
``torch.load(weights_only=True)``); :func:`restore` puts them back.
"""

from __future__ import annotations

import random

import numpy as np
import torch

KEY = "uboost_rng"


def collect(generators: dict[str, torch.Generator]) -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "python": random.getstate(),
        "generators": {name: g.get_state() for name, g in generators.items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore(state: dict, generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    for name, value in state.get("generators", {}).items():
        if name in generators:
            generators[name].set_state(value)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])

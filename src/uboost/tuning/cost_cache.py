"""Trials that share an accelerator do not price its layers again: a cost-table cache on disk.

Every trial of a study builds its cost model afresh in a fresh process (NNI-NOTES trap 8), so a
co-search that proposes the same accelerator twice would simulate (``scalesim``) or evaluate
(every other model) the same layer shapes again. :class:`CachedCostModel` wraps the trial's cost
model: the *exact* per-layer quantities -- cycles and the words moved per memory level, from which
energy follows in closed form -- are looked up by layer shape in a table on disk, and only the
missing shapes are priced by the wrapped model.

The table of one accelerator is one JSON file ``<study dir>/cost-cache/<key>.json``, ``key`` a
SHA-256 of the cost model (registered name and class, and :meth:`CostModel.identity`: a lookup
table's rows) and the *resolved* accelerator (:meth:`HardwareSpec.to_dict`: array, dataflow,
buffers, bandwidth, PE mode, clock, voltage, energy and DVFS tables). Rows are keyed by the whole layer shape (every column of a
:class:`~uboost.hardware.layers.LayerTable`), so the space is part of the key through its shapes
and two spaces that share layers share rows. A file is written atomically after a miss, merged
with what another worker may have written meanwhile (a lost race loses rows, never a file).

Soft channel counts (``smooth`` cost mode) are not layer shapes: they go to the wrapped model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from uboost.hardware.base import CostModel
from uboost.hardware.layers import LayerTable
from uboost.io import write_text

logger = logging.getLogger(__name__)

FOLDER = "cost-cache"


def accelerator_key(model: CostModel) -> str:
    """SHA-256 of the cost model and its resolved accelerator."""
    blob = json.dumps({"cost_model": model.name, "class": f"{type(model).__module__}.{type(model).__qualname__}",
                       "spec": model.spec.to_dict(), **model.identity()}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _columns(table: LayerTable) -> list[str]:
    return [f.name for f in fields(table) if f.name != "names"]


def row_keys(table: LayerTable) -> list[str]:
    """One text key per layer: all its columns (shape, bits, depthwise, linear)."""
    stacked = torch.stack([getattr(table, c).detach().to(torch.float64).cpu() for c in _columns(table)], dim=1)
    return [",".join(repr(v) for v in row) for row in stacked.tolist()]


def subset_table(table: LayerTable, index: list[int]) -> LayerTable:
    idx = torch.tensor(index, dtype=torch.long, device=table.in_channels.device)
    names = tuple(table.names[i] for i in index) if table.names else ()
    return LayerTable(**{c: getattr(table, c)[idx] for c in _columns(table)}, names=names)


class CachedCostModel(CostModel):
    """``model`` with its exact cycles and access counts cached per layer shape in ``folder``.

    ``hits`` and ``misses`` count the layers found in and added to the cache (a trial records
    them). Other attributes are the wrapped model's. Setting ``spec`` (as pricing at another
    operating point does) wraps a copy of the model on the new spec, with its own table.
    """

    def __init__(self, model: CostModel, folder: str | os.PathLike):
        self._model = model  # not CostModel.__init__: the spec is the wrapped model's
        self.folder = Path(folder)
        self.name = model.name
        self.description = model.description
        self.prices_memory = model.prices_memory
        self.hits = self.misses = 0
        self._reset()

    def _reset(self) -> None:
        self.key = accelerator_key(self._model)
        self._rows: dict[str, dict[str, Any]] | None = None

    @property
    def spec(self):
        return self._model.spec

    @spec.setter
    def spec(self, value) -> None:
        self._model = self._model.with_spec(value)
        self._reset()

    @property
    def path(self) -> Path:
        return self.folder / f"{self.key}.json"

    def __getattr__(self, name: str):  # only for what this class does not define (closed_form, stats...)
        if name.startswith("__") or name == "_model":
            raise AttributeError(name)
        return getattr(self._model, name)

    def __repr__(self) -> str:
        return f"Cached({self._model!r})"

    def memory_note(self) -> str | None:
        return self._model.memory_note()

    def identity(self) -> dict[str, Any]:
        return self._model.identity()

    # -- the table on disk -------------------------------------------------------------------
    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:  # a damaged table is priced again, not trusted
            logger.warning("ignoring the unreadable cost table %s: %s", self.path, exc)
            return {}
        return data.get("rows", {}) if isinstance(data, dict) else {}

    def _table(self) -> dict[str, dict[str, Any]]:
        if self._rows is None:
            self._rows = self._read()
        return self._rows

    def _save(self) -> None:
        merged = self._read()  # rows another worker wrote meanwhile are kept
        for key, values in (self._rows or {}).items():
            merged.setdefault(key, {}).update(values)
        self._rows = merged
        body = {"cost_model": self.name, "hardware": self.spec.to_dict(), "rows": self._rows}
        write_text(self.path, json.dumps(body, default=str) + "\n")

    def _lookup(self, table: LayerTable, what: str, compute) -> list[Any]:
        keys = row_keys(table)
        rows = self._table()
        missing = [i for i, k in enumerate(keys) if what not in rows.get(k, {})]
        if missing:
            values = compute(subset_table(table, missing))
            for j, i in enumerate(missing):
                rows.setdefault(keys[i], {})[what] = values[j]
            self._save()
        unique_missing = len({keys[i] for i in missing})
        self.misses += unique_missing
        self.hits += len(set(keys)) - unique_missing
        return [rows[k][what] for k in keys]

    # -- CostModel -----------------------------------------------------------------------------
    def cycles(self, layers: LayerTable, *, in_channels=None, out_channels=None, temperature=None) -> torch.Tensor:
        if in_channels is not None or out_channels is not None or temperature is not None:
            return self._model.cycles(layers, in_channels=in_channels, out_channels=out_channels, temperature=temperature)
        values = self._lookup(layers, "cycles", lambda sub: self._model.cycles(sub).tolist())
        return torch.tensor(values, dtype=torch.float64, device=layers.in_channels.device)

    def accesses(self, layers: LayerTable, *, in_channels=None, out_channels=None, temperature=None) -> dict[str, torch.Tensor]:
        if in_channels is not None or out_channels is not None or temperature is not None:
            return self._model.accesses(layers, in_channels=in_channels, out_channels=out_channels, temperature=temperature)

        def compute(sub: LayerTable) -> list[dict[str, float]]:
            words = self._model.accesses(sub)
            return [{k: float(v[i]) for k, v in words.items()} for i in range(len(sub))]

        if len(layers) == 0:
            return self._model.accesses(layers)
        values = self._lookup(layers, "words", compute)
        device = layers.in_channels.device
        keys = list(values[0])
        return {k: torch.tensor([v[k] for v in values], dtype=torch.float64, device=device) for k in keys}

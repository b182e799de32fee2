"""Counting the host synchronisations of a piece of torch code, on any machine (a CPU included).

On a GPU, Python code that reads a tensor's value on the host -- ``.item()``, ``float(t)``,
``int(t)``, ``if t:``, ``.tolist()``, ``.numpy()``, a blocking ``.cpu()`` copy, an op whose output
shape depends on the data (``nonzero``, boolean-mask indexing) -- waits until the GPU has
computed that value: the stream drains, and the GPU idles while the host catches up. On a CPU
these cost nothing, so a slow step on a GPU can hide in code that is fast here.

:class:`HostSyncCounter` is a ``TorchFunctionMode`` that sees every torch call of the thread it is
entered in and counts those reads, **modelling an accelerator**: every tensor is taken to live
on the device (parameters, buffers, batches and everything computed from them), except tensors
the host made itself -- outputs of factory calls without a ``device`` (``torch.rand(n,
generator=cpu_generator)``, ``torch.tensor(3)``, or with the string ``device="cpu"``), outputs of
``.cpu()`` / ``.numpy()``, and whatever is computed from host tensors only; those are tagged as
host tensors and reading them is free, as it is on a real machine (an optimizer's step counters,
a seeded CPU generator's draws). Copies from the host to the device are counted too when they
block (PyTorch synchronizes the stream after a blocking copy, either way): ``.to(device)`` of a
host tensor without ``non_blocking``, ``torch.tensor(data, device=...)``, and an op that mixes
host tensors (other than 0-dim scalars) with device ones (an implicit copy, or an error). A
``copy_(..., non_blocking=True)`` into a host buffer is asynchronous and not counted; reading the
buffer later is free (the caller is responsible for waiting on the copy: see
:mod:`uboost.strategy.host_mirror`). ``.to(device)`` is taken to stay on (or move to) the device.

Counts are kept per call site (the innermost frame outside torch), so a report says where the
reads are. Other threads are not seen: work moved to a background thread leaves the count.
"""

from __future__ import annotations

import collections
import sys
from typing import Any

_TAG = "_uboost_host"
READS = frozenset({"item", "__float__", "__int__", "__bool__", "__index__", "__complex__", "__format__", "tolist",
                   "numpy", "cpu", "equal", "allclose", "is_nonzero", "__contains__"})
DATA_SHAPED = frozenset({"nonzero", "argwhere", "masked_select", "unique", "unique_consecutive", "nonzero_static"})
_FACTORY_HOST = frozenset({"cpu", "numpy", "tolist"})
_LIGHTNING_BATCH = "lightning_fabric/utilities/apply_func.py"


def mark_host(*tensors) -> None:
    """Tag ``tensors`` as host tensors (reading them is not a synchronisation)."""
    for t in tensors:
        t.__dict__[_TAG] = True


def is_host(tensor) -> bool:
    return bool(tensor.__dict__.get(_TAG, False))


def _tensors(tree) -> list:
    import torch
    from torch.utils._pytree import tree_flatten

    return [x for x in tree_flatten(tree)[0] if isinstance(x, torch.Tensor)]


def _site(skip: str) -> str:
    frame = sys._getframe(2)
    while frame is not None and (frame.f_code.co_filename == skip or "/torch/" in frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return "?"
    name = frame.f_code.co_filename
    for marker in ("site-packages/", "src/", "tests/", "benchmarks/"):
        if marker in name:
            name = name.split(marker)[-1] if marker == "site-packages/" else marker + name.split(marker)[-1]
            break
    return f"{name}:{frame.f_lineno} {frame.f_code.co_name}"


def _bool_index(args) -> bool:
    import torch

    index = args[1] if len(args) > 1 else None
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)


def new_counter():
    """A fresh :class:`HostSyncCounter` (torch is imported here, not when this module is)."""
    from torch.overrides import TorchFunctionMode

    class HostSyncCounter(TorchFunctionMode):
        """``with HostSyncCounter() as c: ...``; ``c.total`` and ``c.sites`` (site -> count)."""

        def __init__(self) -> None:
            super().__init__()
            self.sites: collections.Counter = collections.Counter()
            self.enabled = True

        @property
        def total(self) -> int:
            return sum(self.sites.values())

        def reset(self) -> collections.Counter:
            """The counts so far, and start again from zero."""
            sites, self.sites = self.sites, collections.Counter()
            return sites

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = getattr(func, "__name__", "")
            inputs = _tensors((args, kwargs))
            device_inputs = [t for t in inputs if not is_host(t)]
            out = func(*args, **kwargs)
            if not self.enabled or name in ("__get__", "__set__"):
                return out
            sync = False
            if name in READS or name in DATA_SHAPED or (name == "where" and len(args) + len(kwargs) == 1):
                sync = bool(device_inputs) and (name != "__format__" or device_inputs[0].dim() == 0)
            elif name in ("__getitem__", "__setitem__") and _bool_index(args):
                sync = bool(device_inputs)
            elif name == "to" and device_inputs and _named_cpu(args[1:], kwargs):  # a blocking copy to the host
                sync = not kwargs.get("non_blocking", False)
            elif name == "copy_" and len(inputs) > 1 and is_host(inputs[0]) != is_host(inputs[1]):  # either way
                sync = not (kwargs.get("non_blocking") or (len(args) > 2 and args[2]))
            elif name in ("to", "cuda") and inputs and is_host(inputs[0]) and _moves(args, kwargs) and not _named_cpu(args[1:], kwargs):
                # a blocking copy to the device syncs the stream; Lightning moves batches with non_blocking on a GPU
                sync = not kwargs.get("non_blocking", False) and _LIGHTNING_BATCH not in _site(__file__)
                if out is inputs[0]:  # a no-op on this CPU: on a GPU the copy is a new, device tensor
                    out = out.clone()
            elif name in ("tensor", "as_tensor", "asarray") and _on_device(kwargs.get("device")):
                sync = True  # host data copied to the device, blocking
            elif device_inputs and any(is_host(t) and t.dim() > 0 for t in inputs):
                sync = True  # a host tensor (not a 0-dim scalar) meets device ones: an implicit blocking copy
            if sync:
                self.sites[_site(__file__)] += 1
            if name.endswith("_") and not name.endswith("__"):  # in place: the tensor keeps its place
                return out
            if name in _FACTORY_HOST:
                host = True
            elif name == "to":
                host = _named_cpu(args[1:], kwargs) or (not device_inputs and not _moves(args, kwargs))
            elif name in ("cuda", "pin_memory"):
                host = name == "pin_memory" and not device_inputs
            else:  # computed from host tensors only, or made on the host ("cpu" named, or no device)
                device = kwargs.get("device")
                host = not device_inputs and (device is None or _named_cpu((device,), {}))
            if host:  # not an input returned as is (``.cpu()`` of a CPU tensor): that one stays where it is
                for t in _tensors(out):
                    if not any(t is d for d in device_inputs):
                        mark_host(t)
            return out

    return HostSyncCounter()


def _named_cpu(args, kwargs) -> bool:
    """A device given as the string ``"cpu"`` (code that means the host; a ``torch.device`` is
    taken to come from a tensor's ``.device``, i.e. the accelerator when there is one)."""
    device = kwargs.get("device")
    return any(isinstance(d, str) and d.startswith("cpu") for d in (*args, device))


def _on_device(device) -> bool:
    return device is not None and not _named_cpu((device,), {})


def _moves(args, kwargs) -> bool:
    """``.to(...)`` names a device (a move, taken to be onto the accelerator)."""
    import torch

    if kwargs.get("device") is not None:
        return True
    return any(isinstance(a, (str, torch.device)) or (isinstance(a, torch.Tensor)) for a in args[1:])


def report(sites: dict[str, int], steps: int, top: int = 10) -> list[str]:
    """Lines ``"  n.n per step  site"``, most frequent first."""
    ordered: list[tuple[str, Any]] = sorted(sites.items(), key=lambda kv: -kv[1])[:top]
    return [f"{n / max(1, steps):7.2f} per step  {where}" for where, n in ordered]


def mark_datasets_host(loaders) -> None:
    """Tag the tensors of in-memory datasets (``TensorDataset``, and through ``Subset``s) that
    ``loaders`` read: a data loader runs on the host, reading them is not a sync."""
    from torch.utils.data import DataLoader

    stack = [loaders]
    while stack:
        item = stack.pop()
        if isinstance(item, DataLoader):
            dataset = item.dataset
            while dataset is not None:
                mark_host(*getattr(dataset, "tensors", ()))
                dataset = getattr(dataset, "dataset", None)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif hasattr(item, "flattened"):  # Lightning's CombinedLoader
            stack.extend(item.flattened)


def step_callback():
    """A Lightning callback counting host synchronisations per training step: ``.steps`` is one
    ``Counter`` (site -> count) per step, from one ``on_train_batch_start`` to the next (the step,
    Lightning's per-step bookkeeping and the next batch's loading, whose in-memory datasets are
    host tensors: :func:`mark_datasets_host`), the last to ``on_train_end``."""
    import pytorch_lightning as pl

    class StepSyncs(pl.Callback):
        def __init__(self) -> None:
            self.steps: list[collections.Counter] = []
            self.counter = None
            self._started = False

        def on_train_start(self, trainer, pl_module):
            mark_datasets_host(trainer.train_dataloader)
            self.counter = new_counter()
            self.counter.__enter__()

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if self.counter is None:
                return
            sites = self.counter.reset()  # before the first step: setup, not counted
            if self._started:
                self.steps.append(sites)
            self._started = True

        def on_train_end(self, trainer, pl_module):
            if self.counter is not None:
                self.steps.append(self.counter.reset())
                self._close()

        def on_exception(self, trainer, pl_module, exception):
            self._close()

        def _close(self) -> None:
            if self.counter is not None:
                self.counter.__exit__(None, None, None)
                self.counter = None

        def totals(self) -> list[int]:
            return [sum(s.values()) for s in self.steps]

    return StepSyncs()

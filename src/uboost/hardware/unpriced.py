"""The work a trace leaves unpriced, named in one warning instead of dropped silently.

A trace prices the modules of :data:`uboost.hardware.layers.PRICED`; everything else costs 0
cycles. That is right for elementwise work and lookups (norms, embeddings, activations: the
vector unit), wrong for a multiply a module computes with a function of its own (``q @ k.T``,
``F.linear`` on its weights, a ``Conv1d``) and for a module with weights of a kind no cost model
knows. :class:`UnpricedWatch` sees both while the trace runs -- calls of :data:`MULTIPLIES` outside
every priced module (a ``TorchFunctionMode``) and the modules with parameters of their own, other
than the priced and :data:`FREE` kinds, that run -- and :meth:`UnpricedWatch.warn` logs them in one
line. Which kinds were named already is the caller's (``warned``): a study that prices many networks
passes one set and hears of each kind once; nothing is remembered at module level.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrize import ParametrizationList
from torch.overrides import TorchFunctionMode

logger = logging.getLogger("uboost.hardware")

FREE = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
        nn.Embedding, nn.EmbeddingBag, nn.PReLU, ParametrizationList)
"""Module kinds with weights whose work is elementwise or a lookup (0 cycles, rightly): no warning."""

MULTIPLIES = frozenset({
    torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.__rmatmul__, torch.mm, torch.Tensor.mm,
    torch.bmm, torch.Tensor.bmm, torch.addmm, torch.baddbmm, torch.addbmm, torch.einsum, torch.tensordot,
    F.linear, F.bilinear, F.conv1d, F.conv2d, F.conv3d, F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d,
    F.scaled_dot_product_attention, F.multi_head_attention_forward,
})
"""Functions that multiply on the array: unpriced outside a priced module."""

class UnpricedWatch(TorchFunctionMode):
    """Within (``with watch:``, its :attr:`handles` registered on ``model``): records unpriced work."""

    def __init__(self, model: nn.Module, priced: tuple[type, ...]) -> None:
        super().__init__()
        self.priced = priced
        self.found: dict[str, dict[str, set[str]]] = {}  # kind -> what ("matmuls", "own weights") -> module names
        self._names = {module: name for name, module in model.named_modules()}
        self._stack: list[nn.Module] = []
        self._inside_priced = 0
        self.handles = [h for m in model.modules() for h in (m.register_forward_pre_hook(self._enter),
                                                            m.register_forward_hook(self._leave, always_call=True))]

    def _note(self, module: nn.Module, what: str) -> None:
        name = self._names.get(module) or "the network"
        self.found.setdefault(type(module).__name__, {}).setdefault(what, set()).add(name)

    def _enter(self, module: nn.Module, args) -> None:
        self._stack.append(module)
        if isinstance(module, self.priced):
            self._inside_priced += 1
        elif not isinstance(module, FREE) and any(p is not None for p in module._parameters.values()):
            self._note(module, "own weights")

    def _leave(self, module: nn.Module, args, output) -> None:
        if self._stack and self._stack[-1] is module:
            self._stack.pop()
            self._inside_priced -= isinstance(module, self.priced)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in MULTIPLIES and not self._inside_priced and self._stack:
            self._note(self._stack[-1], "matmuls")
        return func(*args, **(kwargs or {}))

    def warn(self, warned: set[str] | None = None) -> None:
        """Log what was found in one line: the kinds not in ``warned`` (then added to it; ``None``: every kind)."""
        kinds = sorted(kind for kind in self.found if warned is None or kind not in warned)
        if not kinds:
            return
        if warned is not None:
            warned.update(kinds)

        def listed(names: set[str]) -> str:
            return ", ".join(sorted(names)[:2]) + (", ..." if len(names) > 2 else "")

        where = "; ".join(f"{kind} ({', '.join(f'{what}: {listed(names)}' for what, names in sorted(self.found[kind].items()))})"
                          for kind in kinds)
        logger.warning("the cost models price Conv2d, Linear and MultiheadAttention modules; ran unpriced (0 cycles): %s",
                       where)

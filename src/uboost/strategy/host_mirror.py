"""A host copy of the alphas, taken without making the host wait for the accelerator.

What the search does on the host with the alphas -- draw the single path (which candidate runs is
Python control flow), solve the commit phase's integer program (scipy) -- used to read them from
the device in the middle of a step: on a GPU every such read drains the stream and the GPU idles
(:mod:`uboost.host_syncs`). A :class:`HostMirror` is captured right after the architecture
optimizer's step: one ``copy_(non_blocking=True)`` of all alphas into one (pinned) host buffer and
a CUDA event after it; the GPU keeps computing the weight step meanwhile. Whoever reads it later
(the next step's path draws, the commit solve on a background thread) waits on that event, which
by then has long passed. On a CPU the copy is an ordinary copy and the event is absent.

The mirror taken in step ``t`` after the architecture update holds the alphas the step ``t + 1``
starts with (the weight step does not move them), bit for bit: what is computed from it is what
would be computed from the live alphas at the start of step ``t + 1``.
"""

from __future__ import annotations

import torch


def as_vector(t: torch.Tensor) -> torch.Tensor:
    """``t.reshape(-1)``, without the dispatch when ``t`` is already a vector (alphas are: ~10^3 calls a step with bits)."""
    return t if t.dim() == 1 else t.reshape(-1)


class HostMirror:
    """One snapshot of ``alphas`` (float64, on the host); ``values()[id(alpha)]`` reads it."""

    def __init__(self, alphas: list[torch.Tensor]) -> None:
        self._ids = [id(a) for a in alphas]
        self._sizes = [a.numel() for a in alphas]
        with torch.no_grad():  # no graph: the alphas need no detach
            values = torch.cat([as_vector(a) for a in alphas]).to(torch.float64)
        cuda = values.is_cuda
        self._buffer = torch.empty(values.numel(), dtype=torch.float64, pin_memory=cuda)
        self._buffer.copy_(values, non_blocking=True)
        self._event = None
        if cuda:
            self._event = torch.cuda.Event()
            self._event.record()
        self._values = dict(zip(self._ids, self._buffer.split(self._sizes)))  # views, made on this thread
        self._waited = self._event is None

    def ready(self) -> bool:
        """True once the copy has landed (always on a CPU)."""
        return self._event is None or self._event.query()

    def values(self) -> dict[int, torch.Tensor]:
        """``id(alpha) -> its flat values`` (waits for the copy: long done when read a step later)."""
        if not self._waited:
            if not self._event.query():  # only when the copy has not landed yet: a real wait
                self._event.synchronize()
            self._waited = True
        return self._values

    def flat(self) -> torch.Tensor:
        """The whole snapshot as one float64 vector, alphas in :attr:`ids` order (waits like :meth:`values`)."""
        self.values()
        return self._buffer

    @property
    def ids(self) -> list[int]:
        return self._ids

    def positions(self, alphas) -> torch.Tensor:
        """Where each entry of ``alphas`` (flat, in that order) lies in :meth:`flat`."""
        starts, at = {}, 0
        for i, n in zip(self._ids, self._sizes):
            starts[i] = at
            at += n
        return torch.cat([torch.arange(starts[id(a)], starts[id(a)] + a.numel()) for a in alphas])

    def covers(self, alphas) -> bool:
        known = set(self._ids)
        return all(id(a) in known for a in alphas)

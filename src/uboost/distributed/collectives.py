"""What the ranks of a data-parallel search exchange (torch.distributed; gloo on CPUs, NCCL on GPUs).

The search is not wrapped in ``DistributedDataParallel``: one search step runs two backward
passes (architecture, then weights) through the same forward machinery, and a single-path
step uses a different subset of the weights every step, which DDP's reducer cannot follow
without ``find_unused_parameters`` and a graph walk per pass. Instead each backward is
followed by one all-reduce of exactly the gradients its optimizer steps
(:func:`average_gradients_`): the architecture gradients after the architecture backward,
the weight gradients after the weight backward. Every rank then holds the same averaged
gradient, steps the same optimizer state, and keeps bit-identical alphas, weights, budget
multiplier and path-sampler state. The hardware term depends on the alphas only, so it is
the same on every rank and the average counts it once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import torch
from torch.utils.data import DistributedSampler, RandomSampler


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised process group, or ``(0, 1)`` without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def _groups(tensors: Iterable[torch.Tensor]) -> list[list[torch.Tensor]]:
    by_kind: dict[tuple, list[torch.Tensor]] = defaultdict(list)
    for t in tensors:
        by_kind[(t.device, t.dtype)].append(t)
    return list(by_kind.values())


def average_gradients_(params: Iterable[torch.Tensor]) -> None:
    """Replace the gradient of every parameter in ``params`` that has one by its mean over the
    ranks: one all-reduce per (device, dtype), no host synchronisation.

    Which parameters have a gradient is the same on every rank (every rank runs the same
    sampled path), so the flattened buffers line up."""
    import torch.distributed as dist

    _, size = world()
    if size == 1:
        return
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    for grads in _groups(p.grad for p in params if p.grad is not None):
        flat = _flatten_dense_tensors(grads)
        dist.all_reduce(flat)
        flat.div_(size)
        for grad, mean in zip(grads, _unflatten_dense_tensors(flat, grads)):
            grad.copy_(mean)


def broadcast_state_(module: torch.nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers to every rank (once, when a search starts)."""
    import torch.distributed as dist

    if world()[1] == 1:
        return
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=src)


def same_on_all_ranks(tensor: torch.Tensor) -> bool:
    """True when ``tensor`` is bitwise equal on every rank (a check for tests; it syncs the host)."""
    import torch.distributed as dist

    _, size = world()
    if size == 1:
        return True
    gathered = [torch.empty_like(tensor) for _ in range(size)]
    dist.all_gather(gathered, tensor.contiguous())
    return all(torch.equal(gathered[0], other) for other in gathered[1:])


def _padded(indices: list[int], size: int) -> list[int]:
    """``indices`` repeated from their start up to a multiple of ``size`` (as ``DistributedSampler`` pads)."""
    pad = -len(indices) % size
    return indices + (indices * -(-pad // len(indices)))[:pad] if pad and indices else indices


class ShardSampler(DistributedSampler):
    """A shuffling sampler that shards the data over the ranks once a process group exists.

    The loaders of a search are built before Lightning starts the process group, so the number
    of ranks is read when an epoch is drawn, not when the sampler is made. Without a process
    group it is exactly ``RandomSampler(dataset, generator=generator)`` (a one-process search is
    unchanged); with one it is torch's ``DistributedSampler`` (seeded with ``seed``, reshuffled
    by ``set_epoch``, padded to equal shards): rank ``r`` of ``n`` gets positions ``r, r+n, ...``
    of the epoch's permutation, so ``n`` ranks at batch ``b`` see, step by step, the same
    samples as one ``ddp`` process at batch ``n*b``, and ``n`` ranks that trained ``k`` batches
    of ``B`` have trained exactly the first ``k*n*B`` positions of that order.

    :meth:`resume_at` makes the next pass of an epoch start after such a prefix: it draws the
    epoch's order as the saved run did, drops the positions that run trained and shards the rest
    over this run's ranks (on one process too). On as many ranks as before, each rank gets what it
    would have trained next; on another number, every remaining sample once (and the padding that
    makes the shards equal). Its length stays the whole epoch's: Lightning counts the batches done.
    """

    def __init__(self, dataset, *, seed: int, generator: torch.Generator | None = None) -> None:  # noqa: D107
        # DistributedSampler.__init__ needs a process group: set its fields here instead
        self.dataset, self.seed, self.generator = dataset, int(seed), generator
        self.shuffle, self.drop_last, self.epoch = True, False, 0
        self._resume: tuple[int, int, int] | None = None

    @property
    def num_replicas(self) -> int:
        return world()[1]

    @property
    def rank(self) -> int:
        return world()[0]

    @property
    def num_samples(self) -> int:
        return -(-len(self.dataset) // self.num_replicas)

    @property
    def total_size(self) -> int:
        return self.num_samples * self.num_replicas

    def resume_at(self, *, epoch: int, done: int, saved_world: int) -> None:
        """The next pass of ``epoch`` leaves out the first ``done`` positions of its order padded for ``saved_world`` ranks."""
        self._resume = (int(epoch), int(done), int(saved_world))

    def remaining(self, *, done: int, saved_world: int) -> int:
        """Samples each rank of this run gets in a pass resumed after ``done`` positions (see :meth:`resume_at`)."""
        left = max(0, -(-len(self.dataset) // saved_world) * saved_world - done)
        return -(-left // world()[1])

    def __iter__(self):
        # a generator: the resume is spent by the pass that yields its first index, not by one made and dropped
        resume, self._resume = self._resume, None
        if resume is not None and resume[0] == self.epoch:
            _, done, saved_world = resume
            generator = torch.Generator().manual_seed(self.seed + self.epoch)  # DistributedSampler's order
            rest = _padded(torch.randperm(len(self.dataset), generator=generator).tolist(), saved_world)[done:]
            rank, size = world()
            yield from _padded(rest, size)[rank::size]
        elif not distributed():
            yield from RandomSampler(self.dataset, generator=self.generator)
        else:
            yield from super().__iter__()

    def __len__(self) -> int:
        return self.num_samples if distributed() else len(self.dataset)

"""An epoch that resumes where it stopped: the same order, from the first batch not trained.

Lightning restarts a part-done epoch with a fresh pass over its loaders: a new shuffled order, so
the resumed epoch saw some samples twice and others not at all, and the run it continued was not
repeated. :class:`ResumableLoader` is a ``DataLoader`` that remembers, for its last few passes, the
state of its generator before the pass drew its order and how many batches the pass yielded. A
checkpoint stores that history (:func:`save_passes`) with the number of fetched batches not yet
trained; on resume (:func:`resume_passes`) the loader's next pass draws the same order again and
skips the batches already trained, without loading them. Together with a Ctrl-C that stops at a batch's
end, before the next batch is fetched (:func:`uboost.checkpointing.stop_between_batches`; augmentation
draws from the global RNG as a batch loads), and the RNG state in the checkpoint, a resumed epoch
repeats the uninterrupted one.

A multi-process search draws each epoch's order from its seed and the epoch
(:class:`~uboost.distributed.collectives.ShardSampler`): its checkpoint stores how many positions
of that order each loader has trained (:func:`save_shards`), and the resume leaves them out and
shards the rest over the ranks it runs on (:func:`resume_shards`), on one process too.
"""

from __future__ import annotations

import logging

from torch.utils.data import DataLoader

logger = logging.getLogger(__name__)

SHARDS_KEY = "uboost_shard_place"  # {"epoch", "world", "batches": done, "lengths": {name: batches}, "done": {name: positions}}
KEY = "uboost_loader_passes"  # {"pending": fetched - done, "done": batches done, "loaders": {name: [[state, yielded], ...]}}
HISTORY = 4  # passes remembered per loader (a mid-epoch resume needs the current one, a cycled loader one more)


class _Skipping:
    """An index (batch) sampler without its first ``skip`` batches."""

    def __init__(self, sampler, skip: int) -> None:
        self.sampler, self.skip = sampler, skip

    def __iter__(self):
        it = iter(self.sampler)
        for _ in range(self.skip):
            if next(it, None) is None:
                return
        yield from it

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)


class _Counting:
    """The loader's iterator, counting the batches its pass has yielded (skipped ones included). Its first
    ``next`` spends the loader's pending resume (a batch, or the end of a pass resumed at its end): a pass
    begun and dropped before it (``iter`` called twice) leaves the resume for the next."""

    def __init__(self, inner, record: list, loader) -> None:
        self._inner, self._record, self._loader = inner, record, loader

    def __iter__(self):
        return self

    def __next__(self):
        try:
            batch = next(self._inner)
        finally:  # a batch, or the end of a pass resumed at its end: the resume is spent either way
            if self._loader is not None:
                self._loader.__dict__.pop("_uboost_resume", None)
                self._loader = None
                self._record[2] = True  # touched: the pass counts
        self._record[1] += 1
        return batch

    def __len__(self) -> int:
        return len(self._inner)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class ResumableLoader(DataLoader):
    """A ``DataLoader`` whose next pass can start part-way through a pass it made before (same
    arguments as ``DataLoader``; it needs a ``generator`` to resume an order)."""

    def __iter__(self):
        passes = self.__dict__.setdefault("_uboost_passes", [])
        if passes and not passes[-1][2] and passes[-1][0] is not None:
            # a pass begun and dropped before its first batch (Lightning makes one on a restart at an epoch's end)
            # drew a worker seed from the generator: undone, so the next pass draws what it would have
            self.generator.set_state(passes.pop()[0])
        resume = self.__dict__.get("_uboost_resume")
        skip = 0
        if resume is not None and self.generator is not None:
            state, skip = resume
            self.generator.set_state(state)
        start = self.generator.get_state() if self.generator is not None else None
        self._uboost_skip = skip
        try:
            inner = super().__iter__()
        finally:
            self._uboost_skip = 0
        record = [start, skip, False]  # [generator state before the pass, batches yielded, touched]
        passes.append(record)
        del passes[:-HISTORY]
        return _Counting(inner, record, self)

    @property
    def _index_sampler(self):
        sampler = super()._index_sampler
        skip = self.__dict__.get("_uboost_skip", 0)
        return _Skipping(sampler, skip) if skip else sampler

    def passes(self) -> list[list]:
        """``[[generator state before the pass, batches yielded], ...]``, oldest first (none where a pass
        cannot be replayed: no generator, or persistent workers, whose iterator keeps its own sampler)."""
        if self.persistent_workers and self.num_workers > 0:
            return []
        return [[state, int(n)] for state, n, _ in self.__dict__.get("_uboost_passes", []) if state is not None]

    def resume_at(self, state, skip: int) -> None:
        """The next pass draws its order from ``state`` and starts at batch ``skip``."""
        self._uboost_resume = (state, int(skip))


def completed_batches(checkpoint: dict) -> int | None:
    """The training batches of the checkpoint's epoch that a resume will not run again (Lightning's rule:
    a batch stopped in ``on_train_batch_end`` counts as done)."""
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.batch_progress")
    if not isinstance(progress, dict):
        return None
    current, total = progress.get("current", {}), progress.get("total", {})
    try:
        done = int(current["completed"])
        if total["started"] == total["ready"] and total["processed"] == total["started"] \
                and total["completed"] == total["processed"] - 1:
            done += 1
    except (KeyError, TypeError, ValueError):
        return None
    return done


def save_passes(checkpoint: dict, loaders: dict, *, world_size: int) -> None:
    """Store the loaders' pass history and how many fetched batches the checkpoint has not trained
    (a multi-process run: the place in each sharded loader's order, :func:`save_shards`)."""
    if world_size != 1:
        save_shards(checkpoint, loaders, world_size=world_size)
        return
    history = {name: loader.passes() for name, loader in loaders.items() if isinstance(loader, ResumableLoader)}
    done = completed_batches(checkpoint)
    if not history or done is None:
        return
    fetched = max((passes[-1][1] for passes in history.values() if passes), default=0)  # the longest loader's pass
    checkpoint[KEY] = {"pending": fetched - done, "done": done, "loaders": history}


def resume_passes(checkpoint: dict, loaders: dict, *, world_size: int) -> bool:
    """Point each loader at the pass and batch the checkpoint stopped at; whether it did (only for a
    checkpoint taken inside an epoch, by one process, resumed by one). Lightning fetches a sized epoch's
    batches one by one up to its length, so a loader that cycles (the shorter of a search's two) is never
    asked for a batch past the epoch's end, resumed or not."""
    saved = checkpoint.get(KEY)
    if world_size != 1 or not isinstance(saved, dict):
        return False
    lengths = [len(loader) for loader in loaders.values() if isinstance(loader, ResumableLoader)]
    if not lengths or not 0 < saved.get("done", 0) < max(lengths):  # at an epoch's start or end: nothing to resume
        return False
    plans = {}
    for name, passes in saved.get("loaders", {}).items():
        loader = loaders.get(name)
        if not isinstance(loader, ResumableLoader):
            return False
        remaining = int(saved["pending"])
        for state, yielded in reversed(passes):
            if yielded >= remaining:
                plans[name] = (state, yielded - remaining)
                break
            remaining -= yielded
        else:
            logger.info("loader %s: its history does not reach the batch to resume at; the epoch restarts its order", name)
            return False
    for name, (state, skip) in plans.items():
        loaders[name].resume_at(state, skip)
    return bool(plans)


def _sharded(loaders: dict) -> dict:
    from uboost.distributed.collectives import ShardSampler

    return {name: loader for name, loader in loaders.items() if isinstance(getattr(loader, "sampler", None), ShardSampler)}


def save_shards(checkpoint: dict, loaders: dict, *, world_size: int) -> None:
    """A multi-process checkpoint: the positions of the epoch's order each sharded loader has trained. ``world_size``
    ranks that trained ``k`` batches of ``B`` have trained its first ``k x world_size x B`` (a loader shorter than the
    epoch, cycled, the part of its current pass)."""
    sharded, done = _sharded(loaders), completed_batches(checkpoint)
    if not sharded or done is None:
        return
    lengths = {name: len(loader) for name, loader in sharded.items()}
    checkpoint[SHARDS_KEY] = {
        "epoch": int(checkpoint.get("epoch", 0)), "world": int(world_size), "batches": done, "lengths": lengths,
        "done": {name: done % max(1, lengths[name]) * world_size * loader.batch_size for name, loader in sharded.items()},
    }


def resume_shards(checkpoint: dict, loaders: dict) -> int | None:
    """Point each sharded loader past the positions a multi-process checkpoint trained in its epoch; returns how
    many batches of that epoch this run's ranks count as done (its length less the batches left on each rank),
    or ``None`` when there is nothing to resume (no such checkpoint, or taken at an epoch's start or end)."""
    saved, sharded = checkpoint.get(SHARDS_KEY), _sharded(loaders)
    if not isinstance(saved, dict) or not sharded or set(saved.get("done", {})) != set(sharded):
        return None
    lengths = saved.get("lengths", {})
    if not 0 < saved.get("batches", 0) < max(lengths.values(), default=0):
        return None
    for name, loader in sharded.items():
        loader.sampler.resume_at(epoch=saved["epoch"], done=saved["done"][name], saved_world=saved["world"])
    name = max(sharded, key=lambda n: lengths[n])  # the longest loader sets the epoch's length (the others cycle)
    loader = sharded[name]
    samples = loader.sampler.remaining(done=saved["done"][name], saved_world=saved["world"])
    left = samples // loader.batch_size if loader.drop_last else -(-samples // loader.batch_size)
    return max(0, len(loader) - left)


def restore_epoch_place(checkpoint: dict, loaders: dict, *, world_size: int) -> int | None:
    """On resume (a module's ``on_load_checkpoint``, before Lightning restores its loops): an epoch stopped as it
    began runs whole (:func:`uboost.checkpointing.restart_unstarted_epoch`), one stopped inside goes on in its own
    order from its place (:func:`resume_passes`; a multi-process checkpoint's, :func:`resume_shards`, whose count
    of the epoch's batches done on this run's ranks this returns)."""
    from uboost.checkpointing import restart_unstarted_epoch

    if restart_unstarted_epoch(checkpoint):
        return None
    if SHARDS_KEY in checkpoint:
        return resume_shards(checkpoint, loaders)
    resume_passes(checkpoint, loaders, world_size=world_size)
    return None

"""A multi-process search stopped inside an epoch resumes its sharded loaders after the samples it trained
(the ranks are simulated: the sampler reads the rank and the number of ranks when a pass is drawn)."""

from collections import Counter
from contextlib import contextmanager
from unittest import mock

import pytest
import torch

EPOCH, DONE, BATCH = 1, 3, 2


@contextmanager
def as_rank(rank: int, size: int):
    with mock.patch("uboost.distributed.collectives.world", return_value=(rank, size)), \
            mock.patch("uboost.distributed.collectives.distributed", return_value=size > 1):
        yield


def loaders():
    """A search's two loaders: 28 weight samples and 8 architecture samples (the shorter one cycles)."""
    from uboost.distributed.collectives import ShardSampler
    from uboost.resumable_loader import ResumableLoader

    made = {}
    for name, n, seed in (("train", 28, 1), ("val", 8, 2)):
        sampler = ShardSampler(torch.arange(n), seed=seed, generator=torch.Generator().manual_seed(seed))
        sampler.set_epoch(EPOCH)  # as Lightning does when the epoch starts
        made[name] = ResumableLoader(torch.arange(n), batch_size=BATCH, sampler=sampler,
                                     generator=torch.Generator().manual_seed(seed))
    return made


def epoch(made: dict, done: int = 0) -> list[tuple]:
    """The epoch's batches as Lightning fetches them (max_size_cycle, up to the epoch's length), ``done`` of them
    counted as done."""
    from pytorch_lightning.utilities.combined_loader import CombinedLoader

    combined = CombinedLoader(made, "max_size_cycle")
    it = iter(combined)
    n = len(combined) - done
    batches = []
    for _ in range(n):
        try:
            batch = next(it)[0]
        except StopIteration:
            pytest.fail("the resumed pass ended before the epoch's length")
        batches.append(tuple(tuple(b.tolist()) for b in batch.values()))
    return batches


def checkpoint_of_two_ranks() -> tuple[dict, dict]:
    """Rank 0's checkpoint after DONE batches of epoch EPOCH on 2 ranks, and each rank's uninterrupted epoch."""
    from uboost.resumable_loader import save_passes

    whole = {}
    for rank in (0, 1):
        with as_rank(rank, 2):
            whole[rank] = epoch(loaders())
    current = dict.fromkeys(("ready", "started", "processed", "completed"), DONE)
    checkpoint = {"epoch": EPOCH, "loops": {"fit_loop": {"epoch_loop.batch_progress": {"current": current,
                                                                                        "total": dict(current)}}}}
    with as_rank(0, 2):
        save_passes(checkpoint, loaders(), world_size=2)
    return checkpoint, whole


def test_on_as_many_ranks_each_rank_trains_what_the_uninterrupted_run_had_left():
    from uboost.resumable_loader import restore_epoch_place

    checkpoint, whole = checkpoint_of_two_ranks()
    assert len(whole[0]) == 7 and whole[0][3][1] == whole[0][1][1]  # the architecture loader cycled
    for rank in (0, 1):
        with as_rank(rank, 2):
            again = loaders()
            assert restore_epoch_place(checkpoint, again, world_size=2) == DONE
            assert epoch(again, DONE) == whole[rank][DONE:]
            assert epoch(again) == whole[rank]  # the epoch's next pass is whole again


@pytest.mark.parametrize("size", [1, 3])
def test_on_another_number_of_ranks_every_sample_left_is_trained_once(size):
    from uboost.resumable_loader import restore_epoch_place

    checkpoint, whole = checkpoint_of_two_ranks()
    trained = {rank: [s for batch in whole[rank][:DONE] for s in batch[0]] for rank in (0, 1)}
    left = set(range(28)) - set(trained[0]) - set(trained[1])
    seen, counts = [], set()
    for rank in range(size):
        with as_rank(rank, size):
            again = loaders()
            done = restore_epoch_place(checkpoint, again, world_size=size)
            batches = epoch(again, done)
            seen += [s for batch in batches for s in batch[0]]
            counts.add(done)
    assert set(seen) == left and len(seen) - len(left) < size  # the padding of equal shards, nothing else
    if size == 1:
        assert counts == {14 - 16 // BATCH}  # one process: 14 batches, 16 samples (8 batches) left
    assert max(Counter(seen).values()) <= 2


def test_a_checkpoint_at_the_epochs_start_or_of_one_process_resumes_no_shard():
    from uboost.resumable_loader import SHARDS_KEY, restore_epoch_place, save_passes

    checkpoint, _ = checkpoint_of_two_ranks()
    assert checkpoint[SHARDS_KEY]["done"] == {"train": DONE * 2 * BATCH, "val": DONE % 2 * 2 * BATCH}
    one = {"epoch": EPOCH, "loops": checkpoint["loops"]}
    save_passes(one, loaders(), world_size=1)
    assert SHARDS_KEY not in one
    with as_rank(0, 2):
        assert restore_epoch_place(one, loaders(), world_size=2) is None

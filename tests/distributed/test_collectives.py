"""Issue 25: what the ranks exchange, on 2 gloo processes (torch.multiprocessing, 127.0.0.1)."""

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.distributed.conftest import free_port


def _worker(rank: int, size: int, port: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=size)
    try:
        from uboost.distributed.collectives import ShardSampler, average_gradients_, broadcast_state_, same_on_all_ranks

        # the hardware term depends on the alphas only: the same gradient on every rank, counted once
        alpha = torch.nn.Parameter(torch.tensor([0.5, -0.5]))
        unused = torch.nn.Parameter(torch.ones(3))  # a candidate no rank ran this step: stays without gradient
        task = (rank + 1.0) * alpha.sum()  # rank 0: 1, rank 1: 2 -> mean 1.5
        hardware = 3.0 * (alpha ** 2).sum()  # 6 alpha on every rank
        (task + hardware).backward()
        average_gradients_([alpha, unused])
        # a module whose ranks start apart: rank 0's copy wins
        module = torch.nn.Linear(2, 2)
        torch.nn.init.constant_(module.weight, float(rank))
        broadcast_state_(module)
        sampler = ShardSampler(list(range(10)), seed=3)
        sampler.set_epoch(1)
        results[rank] = {"grad": alpha.grad.tolist(), "unused": unused.grad, "weight": module.weight.flatten().tolist(),
                         "same": same_on_all_ranks(alpha.grad), "differ": same_on_all_ranks(torch.tensor([float(rank)])),
                         "shard": list(sampler), "len": len(sampler)}
    finally:
        dist.destroy_process_group()


def test_gradients_averaged_once_state_broadcast_and_data_sharded():
    results = mp.Manager().dict()
    mp.spawn(_worker, args=(2, free_port(), results), nprocs=2, join=True)
    for rank in (0, 1):
        r = results[rank]
        assert r["grad"] == [1.5 + 6 * 0.5, 1.5 + 6 * -0.5]  # mean task gradient + the hardware gradient once
        assert r["unused"] is None and r["same"] and not r["differ"]
        assert r["weight"] == [0.0] * 4
        assert r["len"] == 5
    # the two shards are the halves of torch's one-process order at world size 1: rank r takes positions r, r+2, ...
    g = torch.Generator().manual_seed(3 + 1)
    order = torch.randperm(10, generator=g).tolist()
    assert results[0]["shard"] == order[0::2] and results[1]["shard"] == order[1::2]


def test_without_a_process_group_the_sampler_is_the_plain_shuffle():
    from torch.utils.data import RandomSampler

    from uboost.distributed.collectives import ShardSampler

    a = list(ShardSampler(list(range(20)), seed=0, generator=torch.Generator().manual_seed(7)))
    b = list(RandomSampler(list(range(20)), generator=torch.Generator().manual_seed(7)))
    assert a == b and sorted(a) == list(range(20))

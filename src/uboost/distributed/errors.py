"""A rank that died or hung, as one line (the others stop at the collective timeout at the latest)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from uboost.exceptions import SearchError

_SIGNS = ("connection closed", "connection reset", "broken pipe", "timed out", "timeout", "gloo", "nccl",
          "peer", "socket", "store")


class RankFailure(SearchError):
    """Another process of a data-parallel run stopped (killed, crashed or unreachable)."""


def as_rank_failure(exc: BaseException, ckpt_dir: Path | None = None, *, rank: int = 0,
                    size: int = 1) -> RankFailure | None:
    """``exc`` as a :class:`RankFailure` when it is a failed collective of a multi-process run, else ``None``.
    ``rank`` and ``size``: this process's place as launched, for a process group that never formed."""
    import torch.distributed as dist

    from uboost.distributed.collectives import distributed, world

    if isinstance(exc, SearchError):
        return None
    formed = distributed()
    if formed:
        rank, size = world()
    known = tuple(t for t in (getattr(dist, "DistError", None),) if t is not None)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if size == 1 and not isinstance(exc, known):
        return None
    if not (isinstance(exc, known) or any(sign in text.lower() for sign in _SIGNS)):
        return None
    if not formed and size > 1:  # the rendezvous failed: no peer stopped, none ever joined
        where = f"{os.environ.get('MASTER_ADDR', '127.0.0.1')}:{os.environ.get('MASTER_PORT', '?')}"
        return RankFailure(f"rank {rank} of {size}: could not reach the master at {where}, or not every process came "
                           f"({text[:160]}); {next_step(ckpt_dir)}")
    return RankFailure(rank_failure_text(rank, size, text[:160], ckpt_dir))


def next_step(ckpt_dir: Path | str | None) -> str:
    """Continue from a checkpoint that trained something (a step-0 one continues nothing), else start over."""
    from uboost.runs import checkpoint_progress

    paths = sorted(Path(ckpt_dir).glob("*.ckpt")) if ckpt_dir is not None and Path(ckpt_dir).is_dir() else []
    if any(checkpoint_progress(path)[0] > 0 for path in paths):
        return f"the last checkpoint is in {ckpt_dir}, continue with --resume"
    return "no checkpoint trained anything: start over (with --force where the output exists)"


def rank_failure_text(rank: int, size: int, why: str, ckpt_dir: Path | str | None = None) -> str:
    """The one line of a data-parallel run whose other process stopped."""
    where = f"; {next_step(ckpt_dir)}" if ckpt_dir is not None else ""
    return f"rank {rank} of {size}: another process of the run stopped ({why}){where}"


@contextmanager
def fit_outcome(trainer, interrupted: Exception, ckpt_dir: Path | None = None) -> Iterator[None]:
    """Around ``trainer.fit``: a graceful Ctrl-C (Lightning exits, or only sets ``trainer.interrupted``)
    becomes ``interrupted``, a failed collective of a multi-process run one :class:`RankFailure` line;
    anything else passes through. Shared by search and retrain."""
    try:
        yield
    except (SystemExit, KeyboardInterrupt):  # Lightning exits after a graceful Ctrl-C shutdown
        if trainer.interrupted or trainer.state.status.value == "interrupted":
            raise interrupted from None
        raise
    except Exception as exc:
        size = int(getattr(trainer, "num_devices", 1) or 1) * int(getattr(trainer, "num_nodes", 1) or 1)
        raise as_rank_failure(exc, ckpt_dir, rank=int(getattr(trainer, "global_rank", 0) or 0), size=size) or exc
    if trainer.interrupted:
        raise interrupted

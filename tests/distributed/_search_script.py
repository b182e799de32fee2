"""One rank of a test search: ``python _search_script.py OUT REPORT_DIR CONFIG_JSON [--resume]``.

Every rank runs this file (Lightning's launcher re-runs it; torchrun starts it). It registers a
tiny space without batch norm (where N ranks at batch b equal one process at batch N*b), checks
after every training step that alphas, weights, budget multiplier and sampled path are bitwise
the same on every rank, audits what each process opens for writing under OUT, and writes
``REPORT_DIR/rank<R>.json`` (with the samples of every training batch, as checksums). ``UBOOST_TEST_PAUSE_EPOCH=E`` makes every rank write
``REPORT_DIR/paused<R>`` and sleep after the first step of epoch E (a test then sends Ctrl-C or kills
one); ``UBOOST_TEST_PAUSE_RANK=R`` pauses rank R only; ``UBOOST_TEST_PAUSE_VALIDATION=E`` pauses every
rank in epoch E's validation instead; ``UBOOST_TEST_PAUSE_START_RANK=R`` makes rank R (R > 0) write
``REPORT_DIR/starting<R>`` and sleep before it joins the run. Errors end as the CLI's one red line.
"""

import json
import os
import sys
import time
from pathlib import Path

out, report_dir, config_json = Path(sys.argv[1]).resolve(), Path(sys.argv[2]), json.loads(sys.argv[3])
resume = "--resume" in sys.argv[4:]
written: list[str] = []


def audit(event, args):  # every path this process opens for writing (or creates, moves, removes) under OUT
    if event == "open" and args and isinstance(args[0], (str, os.PathLike)):
        mode = args[1] if len(args) > 1 and isinstance(args[1], str) else "r"
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        if not any(c in mode for c in "wax+") and not flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            return
    elif event not in ("os.mkdir", "os.rename", "os.replace", "os.remove", "os.unlink", "shutil.rmtree"):
        return
    path = args[0] if args else None
    if isinstance(path, (str, os.PathLike)) and os.path.abspath(path).startswith(str(out)):
        written.append(f"{event} {os.path.relpath(os.path.abspath(path), out)}")


sys.addaudithook(audit)

if os.environ.get("LOCAL_RANK", "0") == os.environ.get("UBOOST_TEST_PAUSE_START_RANK"):  # before any import of note
    (report_dir / f"starting{os.environ['LOCAL_RANK']}").write_text(str(os.getpid()))
    try:
        time.sleep(120)  # rank 0 waits for this rank in the rendezvous; a test sends Ctrl-C now
    except KeyboardInterrupt:
        sys.exit(130)

import pytorch_lightning as pl  # noqa: E402

from uboost.distributed import global_rank  # noqa: E402
from uboost.distributed.checks import RankConsistency, register_no_norm  # noqa: E402
from uboost.exceptions import UBoostError  # noqa: E402
from uboost.search import SearchConfig, run_search  # noqa: E402

register_no_norm()


class Batches(pl.Callback):
    """Per training batch ``[epoch, batch_idx, weight samples, architecture samples]``, each sample a checksum."""

    def __init__(self) -> None:
        self.batches: list[list] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        import zlib

        def samples(part):
            return [zlib.crc32(x.numpy().tobytes()) ^ int(y) for x, y in zip(*part)]

        self.batches.append([trainer.current_epoch, batch_idx, samples(batch["train"]), samples(batch["val"])])


class Pause(pl.Callback):
    def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
        if not trainer.sanity_checking and str(trainer.current_epoch) == os.environ.get("UBOOST_TEST_PAUSE_VALIDATION"):
            (report_dir / f"paused{trainer.global_rank}").write_text(str(os.getpid()))
            _pause(trainer)

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        rank = trainer.global_rank
        if batch_idx == 1 and str(trainer.current_epoch) == os.environ.get("UBOOST_TEST_PAUSE_EPOCH") and \
                os.environ.get("UBOOST_TEST_PAUSE_RANK", str(rank)) == str(rank):
            (report_dir / f"paused{rank}").write_text(str(os.getpid()))
            _pause(trainer)  # a test sends Ctrl-C (SIGINT) now, or kills a rank


def _pause(trainer, seconds=120.0):
    """Sleep until a test stops the run: a Ctrl-C raises here on several ranks; on one process it only asks the
    run to stop at the batch's end (uboost.checkpointing.stop_between_batches), so the pause ends then."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not any(getattr(cb, "requested", False) for cb in trainer.callbacks):
        time.sleep(0.1)


config = SearchConfig(**config_json)
rank = global_rank(devices=config.devices, num_nodes=config.num_nodes)
check, seen = RankConsistency(), Batches()
try:
    result = run_search(config, out, resume=resume, force=not resume, callbacks=[check, seen, Pause()])
except UBoostError as exc:  # as the CLI: one red line, exit 1 (130 for Ctrl-C)
    from uboost.cli._common import fail

    try:
        fail(str(exc), getattr(exc, "exit_code", 1))
    except SystemExit:
        raise
    except Exception as done:  # typer.Exit
        sys.exit(getattr(done, "exit_code", 1))
report = {
    "rank": rank, "pid": os.getpid(), "world": check.size, "records": check.records, "arch": result.arch,
    "written": written, "seconds": result.seconds, "batches": seen.batches,
}
(report_dir / f"rank{rank}.json").write_text(json.dumps(report))

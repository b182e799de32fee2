"""One rank of a test search: ``python _search_script.py OUT REPORT_DIR CONFIG_JSON [--resume]``.

Every rank runs this file (Lightning's launcher re-runs it; torchrun starts it). It registers a
tiny space without batch norm (where N ranks at batch b equal one process at batch N*b), checks
after every training step that alphas, weights, budget multiplier and sampled path are bitwise
the same on every rank, audits what each process opens for writing under OUT, and writes
``REPORT_DIR/rank<R>.json``. ``UBOOST_TEST_PAUSE_EPOCH=E`` makes every rank write
``REPORT_DIR/paused<R>`` and sleep after the first step of epoch E (a test then sends Ctrl-C or kills
one); ``UBOOST_TEST_PAUSE_RANK=R`` pauses rank R only. Errors end as the CLI's one red line.
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

import nni  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from nni.nas.nn.pytorch import ModelSpace, MutableConv2d, MutableLinear  # noqa: E402
from torch import nn  # noqa: E402

from uboost.distributed import global_rank  # noqa: E402
from uboost.exceptions import UBoostError  # noqa: E402
from uboost.search import SearchConfig, run_search  # noqa: E402
from uboost.search_spaces import register  # noqa: E402


class NoNorm(ModelSpace):
    """Kernel and width choices, no batch norm: a step's gradient is the mean over its samples."""

    def __init__(self, *, num_classes=10, input_shape=(1, 8, 8)):
        super().__init__()
        w, k = nni.choice("conv_width", [4, 8]), nni.choice("conv_kernel", [1, 3])
        self.conv = MutableConv2d(input_shape[0], w, k, padding=k // 2)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = MutableLinear(w * 4, num_classes)

    def forward(self, x):
        x = self.pool(self.conv(x).relu())
        return self.fc(x.view(x.size(0), -1))


@register("no-norm", description="test: conv width/kernel choices without batch norm")
def no_norm(**options):
    return NoNorm(num_classes=options["num_classes"], input_shape=tuple(options["input_shape"]))


no_norm.input_channels = 1


class Check(pl.Callback):
    """After every step: is the state the same on every rank? (gathers and compares)"""

    def __init__(self):
        self.records, self.rank, self.size = [], None, None

    def on_fit_start(self, trainer, module):
        from uboost.distributed.collectives import world

        self.rank, self.size = world()

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if batch_idx == 1 and str(trainer.current_epoch) == os.environ.get("UBOOST_TEST_PAUSE_EPOCH") and \
                os.environ.get("UBOOST_TEST_PAUSE_RANK", str(self.rank)) == str(self.rank):
            (report_dir / f"paused{self.rank}").write_text(str(os.getpid()))
            time.sleep(120)  # a test sends Ctrl-C (SIGINT) now

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        from uboost.distributed.collectives import same_on_all_ranks
        from uboost.strategy.single_path import find_sampler

        flat = lambda ts: torch.cat([t.detach().reshape(-1).double() for t in ts])  # noqa: E731
        sampler = find_sampler(module.model)
        path = torch.tensor(sorted(sampler._index.values()) if sampler is not None else [0], dtype=torch.float64)
        rng = sampler.generator.get_state().double() if sampler is not None else torch.zeros(1, dtype=torch.float64)
        self.records.append({
            "step": trainer.global_step, "epoch": trainer.current_epoch,
            "alphas": same_on_all_ranks(flat(module.arch_parameters())),
            "weights": same_on_all_ranks(flat(module.parameters())),
            "multiplier": same_on_all_ranks(module.hardware_loss.multiplier.detach().double().reshape(1)),
            "path": same_on_all_ranks(torch.cat([path, rng])),
        })


config = SearchConfig(**config_json)
rank = global_rank(devices=config.devices, num_nodes=config.num_nodes)
check = Check()
try:
    result = run_search(config, out, resume=resume, force=not resume, callbacks=[check])
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
    "written": written, "seconds": result.seconds,
}
(report_dir / f"rank{rank}.json").write_text(json.dumps(report))

"""Data-parallel search and retraining on Lightning's DDP: launch settings and ranks.

This module is light (no torch): the CLI and :class:`~uboost.search_config.SearchConfig` validate
``devices``, ``num_nodes``, ``strategy`` and ``precision`` with it before anything heavy loads.

How processes are started (one process per device, as Lightning's ``strategy="ddp"``):

* ``uboost search --devices N``: Lightning's own launcher re-runs the same command once per
  extra device with ``LOCAL_RANK`` set (``_SubprocessScriptLauncher``). ``ddp_spawn`` is not used:
  it pickles the NNI experiment into workers and brings back only the weights, so the
  strategy's hardware state (cost rows, budget multiplier) would stay in the workers.
* ``torchrun --nproc_per_node N uboost search --devices N``: every process is started by torchrun
  (``RANK``, ``LOCAL_RANK``, ``GROUP_RANK``, ``LOCAL_WORLD_SIZE``); Lightning detects it.
* SLURM (``srun`` with ``--ntasks-per-node N``, ``SLURM_NTASKS = devices x num_nodes``): Lightning's
  SLURM environment; ranks from ``SLURM_PROCID``.
* Several nodes without either: ``MASTER_ADDR``, ``MASTER_PORT`` and ``NODE_RANK`` on every node.

Every process runs the whole command; only global rank 0 touches the run directory (lock,
manifest, config, checkpoints, metrics, plots, final files). The rank is known from these
variables before Lightning starts, as Lightning's cluster environments read them.
"""

from __future__ import annotations

import os

from uboost.exceptions import ConfigError

STRATEGIES = ("auto", "ddp")  # auto: one process on one device, DDP on more
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")  # Lightning's names (16-mixed needs a GPU)
LAUNCH_FIELDS = ("accelerator", "devices", "num_nodes", "strategy", "precision")  # may change when a run resumes
TIMEOUT_ENV = "UBOOST_DDP_TIMEOUT_S"  # collective timeout: a rank that died stops the others after it
DEFAULT_TIMEOUT_S = 600.0


def check_settings(*, devices, num_nodes, strategy, precision) -> None:
    """Validate the launch settings of a config (values only; :func:`check_launch` checks the machine)."""
    for name, value in (("devices", devices), ("num_nodes", num_nodes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; expected one of: {', '.join(STRATEGIES)}")
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; expected one of: {', '.join(PRECISIONS)}")


def uses_ddp(*, devices: int, num_nodes: int, strategy: str) -> bool:
    return strategy == "ddp" or devices * num_nodes > 1


def torchrun_env() -> bool:
    """Started by ``torchrun`` (Lightning's ``TorchElasticEnvironment.detect``)."""
    return all(k in os.environ for k in ("RANK", "GROUP_RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"))


def slurm_env(devices: int, num_nodes: int) -> bool:
    """SLURM starts the tasks (as Lightning's ``_is_slurm_managing_tasks``)."""
    if "SLURM_NTASKS" not in os.environ or os.environ.get("SLURM_JOB_NAME") in ("bash", "interactive"):
        return False
    return int(os.environ["SLURM_NTASKS"]) == devices * num_nodes


def manual_multinode_env() -> bool:
    return all(k in os.environ for k in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK"))


def _env_int(name: str) -> int | None:
    """The launcher variable ``name`` as an integer (``None`` where unset or empty)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name}={os.environ[name]!r} is not an integer") from None


def global_rank(*, devices: int = 1, num_nodes: int = 1) -> int:
    """This process's global rank, read from the launcher's variables (0 before Lightning launches)."""
    if torchrun_env():
        return _env_int("RANK") or 0
    if slurm_env(devices, num_nodes):
        return _env_int("SLURM_PROCID") or 0
    return (_env_int("NODE_RANK") or 0) * devices + (_env_int("LOCAL_RANK") or 0)


def _check_rank(name: str, count: int, what: str) -> None:
    """Refuse a launcher variable set to anything but a rank below ``count`` (a stale one from another run)."""
    text = os.environ.get(name, "").strip()
    if text and not (text.lstrip("-").isdigit() and 0 <= int(text) < count):
        raise ConfigError(f"{name}={os.environ[name]!r} is not a {what}: expected an integer from 0 to {count - 1}")


def _check_ranks(devices: int, num_nodes: int) -> None:
    """The launcher's variables, before any of them reaches Lightning or the rendezvous (a bad one ended in a
    traceback, a wait for a node that never comes, or a C++ stack, after the run directory was written)."""
    local = os.environ.get("LOCAL_WORLD_SIZE", "").strip()
    if torchrun_env() and local != str(devices):
        raise ConfigError(f"torchrun started {local} processes per node (--nproc_per_node) but --devices is {devices}; "
                          f"pass --devices {local}")
    nodes, world = f"node rank (--num-nodes {num_nodes})", devices * num_nodes
    for name, count, what in (("NODE_RANK", num_nodes, nodes), ("GROUP_RANK", num_nodes, nodes),
                              ("LOCAL_RANK", devices, f"local rank (--devices {devices})"),
                              ("RANK", world, f"global rank (devices x num_nodes = {world})"),
                              ("SLURM_PROCID", world, f"SLURM task rank (devices x num_nodes = {world})")):
        if name != "SLURM_PROCID" or slurm_env(devices, num_nodes):
            _check_rank(name, count, what)
    port = os.environ.get("MASTER_PORT", "").strip()
    if port and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise ConfigError(f"MASTER_PORT={os.environ['MASTER_PORT']!r} is not a port: expected an integer from 1 to 65535")
    collective_timeout_s()  # a bad UBOOST_DDP_TIMEOUT_S, before the run directory is written


def is_rank_zero(config=None) -> bool:
    """True in the process that owns the run directory (always, for a one-process run)."""
    if config is None:
        return global_rank() == 0
    if not uses_ddp(devices=config.devices, num_nodes=config.num_nodes, strategy=config.strategy):
        return True
    return global_rank(devices=config.devices, num_nodes=config.num_nodes) == 0


def check_launch(*, accelerator: str, devices: int, num_nodes: int, precision: str = "32-true",
                 strategy: str = "auto") -> None:
    """Refuse, in one line and before anything is written, a launch this machine cannot run."""
    import multiprocessing

    external = torchrun_env() or slurm_env(devices, num_nodes) or "LOCAL_RANK" in os.environ
    if devices > 1 and not external and multiprocessing.parent_process() is not None:
        raise ConfigError(f"devices={devices} in a worker process (an Optuna trial?): Lightning starts the other ranks by "
                          "re-running the command, which a worker cannot do; use devices=1 there, or torchrun")
    if num_nodes > 1 and not (torchrun_env() or slurm_env(devices, num_nodes) or manual_multinode_env()):
        raise ConfigError(f"num_nodes={num_nodes} needs a launcher on every node: torchrun (--nnodes {num_nodes}), "
                          f"SLURM (srun, {devices * num_nodes} tasks), or MASTER_ADDR, MASTER_PORT and NODE_RANK set")
    if uses_ddp(devices=devices, num_nodes=num_nodes, strategy=strategy):
        _check_ranks(devices, num_nodes)
    if torchrun_env():
        world = _env_int("WORLD_SIZE") or 0
        if world and world != devices * num_nodes:
            raise ConfigError(f"torchrun started {world} processes but devices x num_nodes = {devices} x {num_nodes}; "
                              f"pass --devices {os.environ['LOCAL_WORLD_SIZE']} (--nproc_per_node) and --num-nodes (--nnodes)")
    import torch

    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if gpu:
        from uboost.accelerators import check_accelerator

        check_accelerator("gpu", devices)  # one message for a missing GPU, here and before a single-device run
    elif accelerator == "mps" and devices > 1:
        raise ConfigError("devices > 1 is not supported on mps (one device)")
    else:
        if precision == "16-mixed":
            raise ConfigError("precision 16-mixed needs a GPU; use bf16-mixed on the CPU")
        cores = os.cpu_count() or 1
        if devices > cores:
            raise ConfigError(f"devices={devices} CPU processes but this machine has {cores} cores")


def collective_timeout_s() -> float:
    text = os.environ.get(TIMEOUT_ENV)
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{TIMEOUT_ENV} must be a number of seconds, got {text!r}") from None
    if not value > 0:
        raise ConfigError(f"{TIMEOUT_ENV} must be positive, got {text!r}")
    return value


def on_cuda(accelerator: str) -> bool:
    import torch

    return accelerator not in ("cpu", "mps") and torch.cuda.is_available()


def log_every_n_steps(accelerator: str) -> int:
    """Every search step logs a row on the CPU (steps are slow); on a GPU each logged row reads
    every metric to the host, so the logger samples every 25th step (the progress bar still moves)."""
    return 25 if on_cuda(accelerator) else 1


def loader_options(accelerator: str, devices: int) -> dict:
    """DataLoader options where they help: worker processes and pinned memory to feed a GPU. On the
    CPU the loaders stay in-process (workers would compete with training for the same cores)."""
    if not on_cuda(accelerator):
        return {}
    return {"num_workers": min(4, max(1, (os.cpu_count() or 1) // max(1, devices))), "pin_memory": True,
            "persistent_workers": True}

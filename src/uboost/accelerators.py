"""Is the accelerator a config asks for on this machine? Asked before anything is written.

Lightning finds out only when the Trainer is built -- after the run directory has its config, so
a failed ``--accelerator gpu`` left a directory that refused the corrected command. The names
are Lightning's: ``auto`` and ``cpu`` always work, ``gpu``/``cuda`` need CUDA (or Apple's MPS,
which Lightning's ``gpu`` also means), ``mps`` needs MPS.
"""

from __future__ import annotations

from uboost.exceptions import ConfigError


def _mps() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices(accelerator: str) -> int | None:
    """How many devices of ``accelerator`` this machine has (None: any number, e.g. CPU processes)."""
    import torch

    if accelerator in ("auto", "cpu"):
        return None
    if accelerator in ("gpu", "cuda"):
        cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return cuda or (1 if accelerator == "gpu" and _mps() else 0)
    if accelerator == "mps":
        return 1 if _mps() else 0
    raise ConfigError(f"accelerator must be cpu, gpu, mps or auto, got {accelerator!r}")


def check_accelerator(accelerator: str, devices: int = 1) -> None:
    """Refuse, in one line, an accelerator (or a device count) this machine does not have."""
    found = available_devices(accelerator)
    if found is None or (isinstance(devices, int) and devices <= found):
        return
    what = "an MPS (Apple) GPU" if accelerator == "mps" else "a CUDA GPU"
    if found == 0:
        raise ConfigError(f"--accelerator {accelerator} needs {what}, and none is available here; "
                          "use --accelerator cpu (or auto: a GPU where there is one)")
    raise ConfigError(f"--devices {devices} with --accelerator {accelerator}: this machine has {found}")

"""The known, harmless warnings and log noise of NNI and Lightning (see NNI-NOTES), in one place.

Kept free of heavy imports so the CLI can call it before NNI or torch load.
"""

from __future__ import annotations

import logging
import warnings


def quiet_nni_import() -> None:
    """Filter only the warnings NNI prints while it is imported (one per torch class it does not know,
    e.g. ``LinearCrossEntropyOptions`` of torch 2.14): what importing ``uboost.strategy`` may do to a
    user's process. Logging is left alone (that is :func:`quiet_nni`'s, for uboost's own commands)."""
    warnings.filterwarnings("ignore", message=r".*is found to be not a nn\.Module.*")


def quiet_nni() -> None:
    """Filter NNI's known harmless warnings and its console logging."""
    quiet_nni_import()
    warnings.filterwarnings("ignore", message=r".*training_service.*")
    warnings.filterwarnings("ignore", message=r".*val_dataloader.*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*training service to spawn trials.*")
    warnings.filterwarnings("ignore", message=r".*ckpt_path.*")
    warnings.filterwarnings("ignore", message=r".*treespec.*")
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*exists and is not empty.*")
    warnings.filterwarnings("ignore", message=r".*dataloader is not resumable.*")
    for name in ("nni", "lightning.pytorch", "pytorch_lightning", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # failures surface as exceptions

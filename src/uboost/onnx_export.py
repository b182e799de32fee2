"""``torch.onnx.export`` with one red line for a missing ``onnx`` package (torch wraps the
ImportError in its own ``OnnxExporterError``; the export command, ``exits --onnx`` and the
per-segment export all go through here)."""

from __future__ import annotations

from typing import Any

from uboost.exceptions import ConfigError


def onnx_export(*args: Any, **kwargs: Any) -> None:
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # torch's notes on its own export (constant folding steps, ...): noise here
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx.*")
            warnings.filterwarnings("ignore", message=r".*[Cc]onstant folding.*")
            torch.onnx.export(*args, **kwargs)
    except Exception as exc:
        if isinstance(exc, ImportError) or "onnx is not installed" in str(exc).lower():
            raise ConfigError(f"ONNX export needs the onnx package (pip install onnx): {exc}") from None
        if type(exc).__name__ == "SymbolicValueError" and str(exc).startswith("Unsupported:"):
            # an op ONNX lacks, e.g. adaptive pooling to a size that does not divide its input (lenet at 10x10)
            why = str(exc).split("[Caused by", 1)[0].splitlines()[0].split(". Please", 1)[0].strip()
            raise ConfigError(f"ONNX cannot express this network: {why}; export it with --format torchscript, or "
                              "search at another --image-size") from None
        raise

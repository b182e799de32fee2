"""Processing-element modes: how a layer's weight and activation bits change its compute time.

A PE mode is data the cycle models read (not a model per combination). Each gives, per layer
(one tensor expression over a :class:`~uboost.hardware.layers.LayerTable`'s ``weight_bits`` and
``act_bits`` columns):

* ``perf``: MACs one PE does per cycle. The extra MACs go to the **reduction** side of the GEMM
  (im2col ``K``), as in BitFusion's simulator (``ceil(K / (N * perf))``):

  - weight- and input-stationary (``K`` on the rows): the array tiles ``K`` as one of
    ``rows * perf`` rows -- folds ``ceil(K / (rows * perf))`` -- while fill and drain still cross
    the ``rows`` physical rows (a fused PE takes its ``perf`` operands in one cycle). So
    ``bitfusion`` on ``R x C`` has the folds of ``systolic`` on ``(R * perf) x C`` and each fold
    is ``2 R (perf - 1)`` cycles shorter than there. (Pricing the fill of an ``R * perf``-row
    array instead makes 2-bit layers slower than 4-bit ones on small layers: 16x the fill.)
  - output-stationary (``K`` streamed through each PE in time): each PE accumulates ``perf``
    products per cycle, so a fold streams ``ceil(K / perf)`` cycles instead of ``K``.

* ``slowdown``: cycles each streamed step takes (bit-serial PEs), multiplying the streamed length.

Modes (REFERENCES §1):

==============  =====================================================  ==================
mode            perf                                                    slowdown
==============  =====================================================  ==================
``fixed``       1 (bit-parallel PEs of fixed width: compute unchanged)  1
``bitfusion``   ``floor(8 / max(b_a, 2)) * floor(8 / max(b_w, 2))``     1
``bit-serial``  1                                                       ``ceil(b_a / spec.serial_bits)``
==============  =====================================================  ==================

``bit-serial`` follows Stripes (time proportional to the **activation** bits, weights held in
parallel), processing ``serial_bits`` activation bits per cycle. ``bitfusion`` fuses 2-bit
BitBricks into PEs of at most 8x8 bits: a layer above 8 bits is refused (:func:`check_bits`);
6 bits gets nothing over 8.

Utilization under a PE mode counts **effective** MACs over effective PEs: a PE that could do
``perf / slowdown`` MACs per cycle is fully used at that rate, so a layer's utilization is
``MACs * slowdown / perf / (rows * cols * cycles)`` (:meth:`~uboost.hardware.base.CostModel.effective_macs`).

Storage is the other half of precision and holds in every mode: a ``b``-bit operand takes
``b / 8`` bytes, so under ``systolic-mem`` an SRAM of ``S`` bytes holds ``8 S / b`` elements and
DRAM moves bits (narrow operands fit more and stall less).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from uboost.exceptions import ConfigError


@dataclass(frozen=True)
class PEMode:
    """How one kind of processing element turns operand bits into MACs per cycle."""

    name: str
    description: str
    perf: Callable[[object, torch.Tensor, torch.Tensor], torch.Tensor]  # (spec, weight_bits, act_bits) -> MACs/PE/cycle
    slowdown: Callable[[object, torch.Tensor, torch.Tensor], torch.Tensor]  # -> cycles per streamed step
    max_bits: int | None = None  # operand bits the PE takes at most (None: any)


def _ones(spec, weight_bits: torch.Tensor, act_bits: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(weight_bits)


def _fusion(spec, weight_bits: torch.Tensor, act_bits: torch.Tensor) -> torch.Tensor:
    return torch.floor(8.0 / act_bits.clamp_min(2.0)) * torch.floor(8.0 / weight_bits.clamp_min(2.0))


def _serial(spec, weight_bits: torch.Tensor, act_bits: torch.Tensor) -> torch.Tensor:
    return torch.ceil(act_bits / float(spec.serial_bits))


PE_MODES: dict[str, PEMode] = {
    mode.name: mode
    for mode in (
        PEMode("fixed", "bit-parallel PEs of fixed width: compute independent of bits, storage counts bits", _ones, _ones),
        PEMode("bitfusion", "BitFusion: floor(8/max(b_a,2)) * floor(8/max(b_w,2)) MACs per PE per cycle, up to 8 bits",
               _fusion, _ones, max_bits=8),
        PEMode("bit-serial", "Stripes: cycles scale with activation bits / serial_bits per cycle", _ones, _serial),
    )
}


def pe_mode(name: str) -> PEMode:
    if not isinstance(name, str) or name not in PE_MODES:
        raise ConfigError(f"unknown PE mode {name!r}; expected one of: {', '.join(PE_MODES)}")
    return PE_MODES[name]


def check_bits(spec, bits: Iterable[float]) -> None:
    """Refuse operand widths the spec's PEs cannot run (e.g. ``bitfusion`` above 8 bits)."""
    mode = pe_mode(spec.pe)
    values = [float(b) for b in bits]
    bad = [b for b in values if not b >= 1 or b != int(b)]
    if bad:
        raise ConfigError(f"operand bits must be positive whole numbers, got {bad[0]:g}")
    if mode.max_bits is not None and values and max(values) > mode.max_bits:
        raise ConfigError(f"the {mode.name} PE takes at most {mode.max_bits} bits per operand, got {max(values):g}")


def perf_and_slowdown(spec, weight_bits: torch.Tensor, act_bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(perf, slowdown)`` of every layer on ``spec``'s PEs (see the module docstring)."""
    mode = pe_mode(spec.pe)
    if mode.max_bits is not None and weight_bits.device.type == "cpu" and weight_bits.numel():
        # a table priced directly (cycles(), energy_pj()) gets evaluate()'s refusal, not inf cycles; tables on an
        # accelerator are the search's, whose widths its config checked (a check there would wait for the device)
        widest = float(torch.maximum(weight_bits.max(), act_bits.max()))  # (a mixture's soft widths are fine)
        if widest > mode.max_bits:
            raise ConfigError(f"the {mode.name} PE takes at most {mode.max_bits} bits per operand, got {widest:g}")
    return mode.perf(spec, weight_bits, act_bits), mode.slowdown(spec, weight_bits, act_bits)

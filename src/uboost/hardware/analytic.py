"""Array-agnostic baselines: ideal FLOPs throughput and a roofline."""

from __future__ import annotations

import torch

from uboost.hardware.base import CostModel
from uboost.hardware.layers import LayerTable
from uboost.hardware.registry import register


@register("flops", description="MACs / (rows*cols): every PE busy every cycle (utilization 1; PE modes scale the MACs)")
class FlopsModel(CostModel):
    """Ideal compute time: the MACs spread over all processing elements, no tiling losses."""

    name = "flops"

    def cycles(self, layers: LayerTable, *, in_channels=None, out_channels=None, temperature=None) -> torch.Tensor:
        return self.effective_macs(layers, in_channels=in_channels, out_channels=out_channels) / self.spec.pes


@register("roofline", description="max(compute at full PE use, memory time of weights+inputs+outputs at mem_bw_gbps)")
class RooflineModel(CostModel):
    """Roofline: a layer takes the longer of its ideal compute time and its memory time.

    Memory traffic is every operand moved once at its layer's bits (weights at ``weight_bits``, inputs and
    outputs at ``act_bits``; ``b / 8`` bytes a value, as ``systolic-mem`` and SCALE-Sim count them): weights
    ``out * in/groups * kh * kw`` (``B`` times that for a ``per_sample`` layer: an attention's
    keys and values are each sample's own), inputs ``B * in * in_h * in_w`` and outputs
    ``B * out * out_h * out_w`` (no reuse across layers, no on-chip caching of activations).

    The bandwidth is the spec's DRAM bandwidth where it has one (``dram_bw_words`` or
    ``dram_bw_gbps``: the three ports of the ifmap, filter and ofmap buffers together, so the
    roofline of a memory-bounded accelerator sees the same DRAM as ``systolic-mem`` and SCALE-Sim's
    USER mode), else ``mem_bw_gbps``.
    """

    DRAM_PORTS = 3  # ifmap, filter and ofmap: each moves dram_words_per_cycle words (bytes) per cycle

    name = "roofline"

    def memory_note(self) -> str | None:
        """The roofline reads the DRAM bandwidth (its memory time) but not the SRAM sizes: say that, not
        that the limits change no cycle count (they do, through the bandwidth)."""
        if not self.spec.memory_bound:
            return None
        return (f"roofline reads the DRAM bandwidth of {self.spec.memory_text} (every operand moved once) but not the "
                "SRAM sizes: no refetches (use --cost-model systolic-mem or scalesim for stalls)")

    def cycles(self, layers: LayerTable, *, in_channels=None, out_channels=None, temperature=None) -> torch.Tensor:
        spec = self.spec
        cin = layers.in_channels if in_channels is None else in_channels
        cout = layers.out_channels if out_channels is None else out_channels
        groups = torch.where(layers.depthwise, cin, layers.groups)
        weights = cout * cin / groups * layers.kernel_h * layers.kernel_w
        weights = torch.where(layers.per_sample, spec.batch_size * weights, weights)
        inputs = spec.batch_size * cin * layers.in_h * layers.in_w
        outputs = spec.batch_size * cout * layers.out_h * layers.out_w
        moved = weights * (layers.weight_bits / 8.0) + (inputs + outputs) * (layers.act_bits / 8.0)  # bytes (= words)
        per_cycle = spec.dram_words_per_cycle
        memory = (moved / (self.DRAM_PORTS * per_cycle) if per_cycle is not None
                  else moved / (spec.mem_bw_gbps * 1e9) * spec.clock_hz)
        compute = self.effective_macs(layers, in_channels=in_channels, out_channels=out_channels) / spec.pes
        return torch.maximum(compute, memory)

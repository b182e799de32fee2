"""Shapes of the layers a cost model prices, traced from any ``nn.Module``.

Only layers that multiply on the array are costed: ``nn.Conv2d`` (grouped, depthwise,
dilated and strided included), ``nn.Linear`` and ``nn.MultiheadAttention`` (its projections and
its two batched matmuls, :mod:`uboost.hardware.attention`). Pooling, identity, batch and layer
norms, embeddings, activations, softmax, additions and concatenations cost 0 cycles: they run on
the vector unit next to the array in the accelerators U-Boost models, overlapped with the array's
work. So does a matmul a module computes with ``torch.matmul``/``@`` or ``F.linear`` of its own
(NNI's AutoFormer attention's ``Q K^T``): tracing prices modules, not functions. Such a matmul
or convolution outside the priced modules, and a module with weights of its own of any other kind
that runs in the trace, are named in one logged warning (:mod:`uboost.hardware.unpriced`).

Every layer becomes one im2col GEMM per group: ``M = batch * out_h * out_w`` streamed rows,
``K = kernel_h * kernel_w * in_channels / groups`` reduction and ``N = out_channels / groups``
filters. A ``Linear`` is a 1x1 convolution whose positions are its leading dimensions. A layer
whose second operand differs per sample (``per_sample``: an attention's ``Q K^T`` and attention x
``V``, whose keys and values stand where a layer's weights stand) shares nothing across the batch:
it is ``batch * groups`` GEMMs of one sample's ``M = out_h * out_w`` rows each.

Each layer also has a weight and an activation bitwidth (default 8). A traced module carries
its own as ``module.uboost_precision = (weight_bits, act_bits)`` (set by :mod:`uboost.quant`).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace

import torch
from torch import nn

from uboost.exceptions import ConfigError


KINDS = ("conv", "depthwise", "pointwise", "linear")
SIZES = ("in_channels", "out_channels", "groups", "kernel_h", "kernel_w", "stride", "in_h", "in_w", "out_h", "out_w")
"""The fields of a :class:`LayerShape` that count something: whole numbers >= 1."""


@dataclass(frozen=True, kw_only=True)
class LayerShape:
    """One costed layer, per inference sample (the batch comes from the hardware spec)."""

    name: str
    kind: str  # "conv" | "depthwise" | "pointwise" | "linear"
    in_channels: int
    out_channels: int
    groups: int = 1
    kernel_h: int = 1
    kernel_w: int = 1
    stride: int = 1
    in_h: int = 1
    in_w: int = 1
    out_h: int = 1
    out_w: int = 1
    weight_bits: int = 8
    act_bits: int = 8
    per_sample: bool = False
    """The second operand (what stands where the weights stand) differs per sample, as an attention's keys
    and values do: at a batch above 1 the layer is ``batch * groups`` GEMMs, not ``groups`` over the batch."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"layer {self.name}: unknown kind {self.kind!r}; expected one of: {', '.join(KINDS)}")
        if not isinstance(self.per_sample, bool):
            raise ConfigError(f"layer {self.name}: per_sample must be True or False, got {self.per_sample!r}")
        for field in SIZES + ("weight_bits", "act_bits"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ConfigError(f"layer {self.name}: {field} must be a positive whole number, got {value!r}")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ConfigError(
                f"layer {self.name}: channels {self.in_channels}->{self.out_channels} not divisible by groups={self.groups}"
            )
        if self.kind == "depthwise" and self.groups != self.in_channels:  # priced by its groups: the kind would mislabel it
            raise ConfigError(f"layer {self.name}: a depthwise layer has groups == in_channels, got groups={self.groups} "
                              f"for {self.in_channels} input channels (kind='conv' for a grouped or dense one)")
        if self.kind == "pointwise" and (self.kernel_h, self.kernel_w) != (1, 1):
            raise ConfigError(f"layer {self.name}: a pointwise layer has a 1x1 kernel, got {self.kernel_h}x{self.kernel_w} "
                              "(kind='conv')")

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_channels

    @property
    def macs(self) -> int:
        """Multiply-accumulates per sample."""
        return self.out_h * self.out_w * self.kernel_h * self.kernel_w * (self.in_channels // self.groups) * self.out_channels

    @property
    def shape_text(self) -> str:
        bits = f" w{self.weight_bits}a{self.act_bits}" if (self.weight_bits, self.act_bits) != (8, 8) else ""
        g = f" g{self.groups}" if self.groups > 1 else ""
        if self.kind == "linear":
            tokens = f" x{self.out_h * self.out_w}" if self.out_h * self.out_w > 1 else ""
            return f"{self.in_channels}->{self.out_channels}{g}{tokens}{bits}"
        return (
            f"{self.in_channels}x{self.in_h}x{self.in_w} -> {self.out_channels}x{self.out_h}x{self.out_w}"
            f" k{self.kernel_h}x{self.kernel_w} s{self.stride}{g}{bits}"
        )

    def to_dict(self) -> dict:
        return asdict(self)


def _check_one_input(model: nn.Module) -> None:
    """A network is priced by calling it on one tensor: one whose forward needs more (nn.MultiheadAttention's query,
    key and value) is refused by its signature, before the call (a TypeError inside its own code stays its own)."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):  # no signature to read: the call says
        return
    required = [p.name for p in params if p.default is p.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if len(required) > 1:
        raise ConfigError(f"the network is priced by calling it on one input tensor, and its forward needs "
                          f"{len(required)} ({', '.join(required)}); wrap it in a module whose forward takes one tensor")


def with_channels(shape: LayerShape, in_channels: int, out_channels: int, *, groups: int | None = None,
                  name: str | None = None) -> LayerShape:
    """``shape`` at other channel counts (and groups), its kind following them (a 1-channel "depthwise" layer widened
    is a dense conv): what a table tabulates over a channel grid."""
    groups = shape.groups if groups is None else groups
    kind = shape.kind if shape.kind == "linear" else conv_kind(in_channels, groups, shape.kernel_h, shape.kernel_w)
    return replace(shape, name=shape.name if name is None else name, in_channels=in_channels, out_channels=out_channels,
                   groups=groups, kind=kind)


def conv_kind(in_channels: int, groups: int, kernel_h: int, kernel_w: int) -> str:
    if groups > 1 and groups == in_channels:
        return "depthwise"
    if kernel_h == kernel_w == 1 and groups == 1:
        return "pointwise"
    return "conv"


PRECISION_ATTR = "uboost_precision"  # a module's (weight_bits, act_bits), when it has its own


def _bits(module: nn.Module) -> dict[str, int]:
    weight_bits, act_bits = getattr(module, PRECISION_ATTR, (8, 8))
    return {"weight_bits": int(weight_bits), "act_bits": int(act_bits)}


def _shape_of(module: nn.Module, name: str, inp: torch.Tensor, out: torch.Tensor) -> LayerShape | None:
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        in_ch = inp.shape[1]  # the tensor, not the attribute: supernets mask channels
        groups = module.groups
        return LayerShape(
            name=name,
            kind=conv_kind(in_ch, groups, kh, kw),
            in_channels=in_ch,
            out_channels=out.shape[1],
            groups=groups,
            kernel_h=kh,
            kernel_w=kw,
            stride=module.stride[0],
            in_h=inp.shape[-2],
            in_w=inp.shape[-1],
            out_h=out.shape[-2],
            out_w=out.shape[-1],
            **_bits(module),
        )
    if isinstance(module, nn.Linear):
        positions = inp.numel() // (inp.shape[0] * inp.shape[-1]) if inp.dim() > 1 else 1
        return LayerShape(
            name=name, kind="linear", in_channels=inp.shape[-1], out_channels=out.shape[-1], out_h=positions, in_h=positions,
            **_bits(module),
        )
    return None


PRICED = (nn.Conv2d, nn.Linear, nn.MultiheadAttention)
"""The module kinds a trace prices (the rest cost 0 cycles)."""


def _refuse_open_space(model: nn.Module) -> None:
    """An NNI model space with choices left is not one network: tracing it prices its first choices (its
    cheapest network, quietly). Duck-typed (``simplify()``, NNI's), so this module needs no NNI."""
    simplify = getattr(model, "simplify", None)
    if not callable(simplify):
        return
    try:
        open_choices = simplify()
    except Exception:  # not NNI's simplify: nothing to say
        return
    if isinstance(open_choices, dict) and open_choices:
        labels = ", ".join(list(open_choices)[:3])
        raise ConfigError(f"the model is an NNI model space with {len(open_choices)} open choices ({labels}...): price one "
                          "network of it, space.freeze(arch)")


def extract_layers(model: nn.Module, input_shape: Sequence[int], *, warned: set[str] | None = None) -> list[LayerShape]:
    """Trace ``model`` once on a zero input of ``input_shape`` (C, H, W; no batch) and
    return every costed layer in execution order. Layers called twice appear twice.

    Work the cost models do not price is named in one logged warning (:mod:`uboost.hardware.unpriced`);
    ``warned``, a set the caller keeps across networks, names each module kind once (``None``: every trace)."""
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence) or not all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in input_shape):
        raise ConfigError(f"input shape must be a sequence of whole numbers (C, H, W), e.g. (3, 32, 32), got {input_shape!r}")
    if any(int(d) < 1 for d in input_shape):
        raise ConfigError(f"input shape must be positive, got {tuple(input_shape)}")
    _refuse_open_space(model)
    names = {module: name for name, module in model.named_modules()}
    found: list[LayerShape] = []

    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if not args or not isinstance(args[0], torch.Tensor) or not isinstance(output, torch.Tensor):
            return
        shape = _shape_of(module, names.get(module, type(module).__name__), args[0], output)
        if shape is not None:
            found.append(shape)

    from uboost.hardware.attention import attention_inputs, attention_shapes
    from uboost.hardware.unpriced import UnpricedWatch

    def attention_hook(module: nn.MultiheadAttention, args: tuple, kwargs: dict, output) -> None:
        inputs = attention_inputs(args, kwargs)
        if inputs is not None:
            found.extend(attention_shapes(module, names.get(module, type(module).__name__), *inputs))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles += [m.register_forward_hook(attention_hook, with_kwargs=True) for m in model.modules()
                if isinstance(m, nn.MultiheadAttention)]
    watch = UnpricedWatch(model, PRICED)
    handles += watch.handles
    was_training = model.training
    _check_one_input(model)
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else "cpu"
        model.eval()
        with torch.no_grad(), watch:
            model(torch.zeros(1, *[int(d) for d in input_shape], device=device))
        watch.warn(warned)
    except (RuntimeError, ValueError) as exc:  # a shape the network cannot take (an allocation failure stays itself)
        if "alloc" in str(exc) or isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ConfigError(f"the network does not run on input shape {'x'.join(str(int(d)) for d in input_shape)} "
                          f"({type(exc).__name__}: {first}); pass the --input CxHxW it expects") from None
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return found


_COLUMNS = ("in_channels", "out_channels", "groups", "kernel_h", "kernel_w", "stride", "in_h", "in_w", "out_h", "out_w",
            "weight_bits", "act_bits")


@dataclass(frozen=True)
class LayerTable:
    """Struct-of-tensors view of many layers: one float64 tensor of length L per column.

    Built once (``LayerTable.from_shapes``) so a cost model prices every layer with a single
    batched tensor expression. ``depthwise`` marks layers whose groups follow their input
    channels (``groups == in_channels``), so soft input channels keep them depthwise;
    ``per_sample`` the layers whose second operand differs per sample (:attr:`LayerShape.per_sample`;
    left out: none).
    """

    in_channels: torch.Tensor
    out_channels: torch.Tensor
    groups: torch.Tensor
    kernel_h: torch.Tensor
    kernel_w: torch.Tensor
    stride: torch.Tensor
    in_h: torch.Tensor
    in_w: torch.Tensor
    out_h: torch.Tensor
    out_w: torch.Tensor
    weight_bits: torch.Tensor
    act_bits: torch.Tensor
    depthwise: torch.Tensor
    linear: torch.Tensor
    per_sample: torch.Tensor | None = None
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.per_sample is None:  # a table built without the column: every layer shares its weights
            object.__setattr__(self, "per_sample", torch.zeros_like(self.linear, dtype=torch.bool))

    @classmethod
    def from_shapes(cls, shapes: Iterable[LayerShape], *, device: torch.device | str | None = None) -> "LayerTable":
        shapes = list(shapes)
        cols = {
            c: torch.tensor([float(getattr(s, c)) for s in shapes], dtype=torch.float64, device=device) for c in _COLUMNS
        }
        depthwise = torch.tensor([s.depthwise for s in shapes], dtype=torch.bool, device=device)
        linear = torch.tensor([s.kind == "linear" for s in shapes], dtype=torch.bool, device=device)
        per_sample = torch.tensor([s.per_sample for s in shapes], dtype=torch.bool, device=device)
        return cls(**cols, depthwise=depthwise, linear=linear, per_sample=per_sample, names=tuple(s.name for s in shapes))

    def shapes(self) -> list[LayerShape]:
        """The layers of the table as :class:`LayerShape` objects (for simulators that take one layer at a time)."""
        cols = {c: [int(v) for v in getattr(self, c).tolist()] for c in _COLUMNS}
        linear, per_sample = self.linear.tolist(), self.per_sample.tolist()
        return [
            LayerShape(
                name=self.names[i] if self.names else f"#{i}",
                kind="linear" if linear[i] else conv_kind(cols["in_channels"][i], cols["groups"][i], cols["kernel_h"][i], cols["kernel_w"][i]),
                **{c: cols[c][i] for c in _COLUMNS},
                per_sample=bool(per_sample[i]),
            )
            for i in range(len(self))
        ]

    def __len__(self) -> int:
        return self.in_channels.shape[0]

    def to(self, device: torch.device | str) -> "LayerTable":
        return LayerTable(
            **{f.name: getattr(self, f.name).to(device) for f in fields(self) if f.name != "names"}, names=self.names
        )

    def gemm(
        self, batch_size: int, in_channels: torch.Tensor | None = None, out_channels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(groups, M, K, N)`` of each layer's per-group GEMM; channels may be soft tensors.

        A layer shares its weights across the batch: ``groups`` GEMMs of ``M = batch * out_h * out_w``;
        a ``per_sample`` one (keys and values) is ``batch * groups`` GEMMs of ``M = out_h * out_w``."""
        cin = self.in_channels if in_channels is None else in_channels
        cout = self.out_channels if out_channels is None else out_channels
        groups = torch.where(self.depthwise, cin, self.groups)
        k = self.kernel_h * self.kernel_w * cin / groups
        n = cout / groups
        positions = self.out_h * self.out_w
        m = torch.where(self.per_sample, positions, batch_size * positions)
        return torch.where(self.per_sample, batch_size * groups, groups), m, k, n

    def macs(
        self, batch_size: int, in_channels: torch.Tensor | None = None, out_channels: torch.Tensor | None = None
    ) -> torch.Tensor:
        groups, m, k, n = self.gemm(batch_size, in_channels, out_channels)
        return groups * m * k * n

"""Bitwidths as local-search choices (``uboost tune --local-search N`` on a study run with ``--bits``,
``--weight-bits`` or ``--act-bits``).

A trial of such a study is a network **and** the bits of each of its layers (``precision.json``, the trial's
``precision`` attribute). The local search (:mod:`~uboost.tuning.local_search`) varies one choice at a time; here
each layer's width is one more choice. A network's *genome* is its architecture dict plus one entry per layer:

* ``bits:<layer>`` -> one width for weights and activations together (a study with ``--bits``), or
* ``weight_bits:<layer>`` / ``act_bits:<layer>`` -> each operand's width (``--weight-bits`` / ``--act-bits``; an
  operand the study did not search stays at 8 and is not varied).

A neighbor changes one architecture choice or one layer's width. After an architecture change the layers the new
network keeps (by name) keep their widths and a layer it gains takes the study's widest (the accurate side: a
later move can narrow it). A layer matched by the study's ``pin_bits`` patterns (``fnmatch``, on the frozen
network's layer names) keeps its pinned width and is not varied. The widths a move can take are the study's own
choices, so every neighbor is a network the search itself could have returned.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from uboost.exceptions import ConfigError

if TYPE_CHECKING:
    from uboost.search_config import SearchConfig

BITS, WEIGHT, ACT = "bits:", "weight_bits:", "act_bits:"
PREFIXES = (BITS, WEIGHT, ACT)


def is_bits_label(label: str) -> bool:
    return label.startswith(PREFIXES)


class BitsMoves:
    """The precision choices of a bits study's networks (``config``: the study's base configuration)."""

    def __init__(self, config: "SearchConfig"):
        from uboost.strategy.precision import BitsSpace

        options = config.bits_options()
        if options is None:
            raise ConfigError("a local search over bitwidths needs a study with --bits, --weight-bits or --act-bits")
        self.space = BitsSpace(bits=options["bits"], weight_bits=options["weight_bits"], act_bits=options["act_bits"],
                               pin=options["pin_bits"])

    @staticmethod
    def for_config(config: "SearchConfig") -> "BitsMoves | None":
        """The moves of ``config``'s study, or ``None`` when it searched no bits."""
        return None if config.bits_options() is None else BitsMoves(config)

    def default(self, layer: str) -> tuple[int, int]:
        """A layer new to the network: its pinned width, else the widest of each operand's choices."""
        pinned = self.space.pinned(layer)
        if pinned is not None:
            return pinned, pinned
        values = self.space.values
        return max(values["weight"]), max(values["act"])

    def entries(self, precision: dict[str, tuple[int, int]]) -> dict[str, int]:
        """Genome entries of ``precision`` (``{layer: (weight bits, act bits)}``)."""
        out: dict[str, int] = {}
        for layer, (w, a) in precision.items():
            if self.space.coupled:
                if w != a:
                    raise ConfigError(f"layer {layer!r} has weight bits {w} and act bits {a}: a --bits study couples them")
                out[BITS + layer] = int(w)
            else:
                out[WEIGHT + layer], out[ACT + layer] = int(w), int(a)
        return out

    def genome(self, attrs: dict) -> dict:
        """A trial's (or neighbor's) genome from its user attributes: ``arch`` plus its ``precision``."""
        from uboost.quant import check_precision

        precision = attrs.get("precision")
        found = check_precision(precision, "the trial's precision") if precision else {}
        return {**attrs["arch"], **self.entries(found)}

    def split(self, genome: dict) -> tuple[dict, dict[str, tuple[int, int]]]:
        """``(architecture, {layer: (weight bits, act bits)})`` of ``genome``."""
        arch = {k: v for k, v in genome.items() if not is_bits_label(k)}
        precision: dict[str, list[int]] = {}
        for label, value in genome.items():
            for prefix, slot in ((BITS, None), (WEIGHT, 0), (ACT, 1)):
                if label.startswith(prefix):
                    layer = label[len(prefix):]
                    pair = precision.setdefault(layer, list(self.default(layer)))
                    if slot is None:
                        pair[0] = pair[1] = int(value)
                    else:
                        pair[slot] = int(value)
        return arch, {layer: (w, a) for layer, (w, a) in precision.items()}

    def settle(self, genome: dict, layers: Iterable[str]) -> dict:
        """``genome`` with bits for exactly ``layers`` (the network's quantized layers, in order): the ones it has
        keep their widths, the others take :meth:`default`."""
        arch, precision = self.split(genome)
        names = list(dict.fromkeys(layers))
        return {**arch, **self.entries({name: precision.get(name, self.default(name)) for name in names})}

    def choices(self, genome: dict) -> dict[str, list[int]]:
        """The width choices of ``genome``'s layers: label -> the widths it can take (pinned layers and operands with
        one width are left out)."""
        values = self.space.values
        out: dict[str, list[int]] = {}
        for label in genome:
            if not is_bits_label(label):
                continue
            layer = label.split(":", 1)[1]
            if self.space.pinned(layer) is not None:
                continue
            options = list(self.space.bits if label.startswith(BITS) else values["weight" if label.startswith(WEIGHT) else "act"])
            if len(options) > 1:
                out[label] = options
        return out


def parts(bits: BitsMoves | None, genome: dict) -> tuple[dict, dict | None]:
    """``(arch.json, precision.json)`` contents of ``genome`` (precision ``None`` outside a bits study)."""
    if bits is None:
        return genome, None
    from uboost.quant import precision_dict

    arch, precision = bits.split(genome)
    return arch, precision_dict(precision) if precision else None


__all__ = ["ACT", "BITS", "BitsMoves", "PREFIXES", "WEIGHT", "is_bits_label", "parts"]

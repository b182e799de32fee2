"""What defines a search: :class:`SearchConfig` (stored as ``config.json``) and the objects built from it.

Kept apart from :mod:`uboost.search` (which runs the search) so the CLI, the tuner and the run
directory can read and validate a config without the training machinery.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from uboost.exceptions import ConfigError
from uboost.search_spaces.registry import default_options

if TYPE_CHECKING:  # pragma: no cover  (uboost.hardware imports torch: loaded when a config is used)
    from uboost.hardware import CostModel, HardwareSpec

SAMPLING_MODES = ("mixture", "single-path")  # as uboost.strategy.single_path (not imported here: NNI is heavy)
SCORE_SCOPES = ("all", "blind")  # as uboost.strategy.score_function.SCOPES (torch is heavy; a test checks they agree)
COST_MODES = ("expected", "smooth")  # as uboost.strategy.supernet_cost
UTILIZATION_SCALES = ("fixed", "lambda")  # as uboost.strategy.loss
WIDEN_MODES = ("bits", "all")  # what the export raises at no extra cost (uboost.strategy.widening)


MAX_BUDGET_MS = 1e9  # a latency budget of 11 days: beyond, its cycle count overflows
MAX_SEED = 2**32 - 1  # numpy's and Lightning's seed_everything range


def check_seed(seed: object, name: str = "seed") -> int:
    """A seed every generator accepts: an integer in [0, 2**32 - 1]."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{name} must be an integer from 0 to {MAX_SEED} (2**32 - 1), got {seed!r}")
    return seed


def check_gumbel_tau(value: object, name: str = "gumbel_tau") -> tuple[float, float]:
    """``(start, end)`` of the Gumbel-softmax temperature: finite numbers with ``start >= end > 0``."""
    pair = tuple(value) if isinstance(value, (list, tuple)) else ()
    if len(pair) != 2 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in pair) \
            or not pair[0] >= pair[1] > 0:
        raise ConfigError(f"{name} must be (start, end) with start >= end > 0, got {value!r}")
    return float(pair[0]), float(pair[1])


def parse_gumbel_tau(text: str) -> tuple[float, float]:
    """``"1,0.1"`` -> ``(1.0, 0.1)``; bad text raises a ConfigError."""
    try:
        pair = tuple(float(p) for p in str(text).split(","))
    except ValueError:
        raise ConfigError(f"--gumbel-tau must be START,END (e.g. 1,0.1), got {text!r}") from None
    return check_gumbel_tau(pair, "--gumbel-tau")


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """Everything that defines a search; stored as ``config.json`` in the run directory."""

    space: str = "darts-cifar"
    space_options: dict | None = None  # merged over the space's own defaults (search_spaces.default_options)
    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    image_size: int | None = None  # None: the dataset's own resolution (digits 8x8, CIFAR 32x32)
    max_samples: int | None = None
    cost_model: str = "systolic"
    array: str = "16x16"  # sized to CPU-scale demo networks (on 128x128 they use 0.3% of the array); --array for others
    dataflow: str = "ws"
    inference_batch: int = 1
    sram_kb: int | None = None  # each of the ifmap/filter/ofmap SRAMs (kB); None = unbounded
    dram_bw_words: float | None = None  # DRAM words per cycle per port; None = unbounded
    clock_hz: float | None = None  # None: 1 GHz, or the fastest point of operating_points (stored resolved)
    energy: str | dict = "horowitz45"  # energy-table preset, or a TOML file / table (stored as its fields)
    voltage_v: float | None = None  # None: the operating-point table's at clock_hz, else the energy table's v_ref
    operating_points: str | dict | None = None  # DVFS table: preset name, or a TOML file / table (stored as its points)
    hardware: dict | None = None  # what an accelerator file (--hardware) says beyond these fields (uboost.accelerator)
    operating_point: str | None = None  # "auto": export the most preferred (network, operating point) within the budgets
    latency_weight: float = 1.0
    energy_weight: float = 0.0  # gamma: weight of energy / energy_ref (the uniform supernet's energy)
    target_energy_uj: float | None = None  # energy budget of the derived network (µJ per inference)
    utilization_weight: float = 1.0
    # "lambda": the utilization term is weighed by lambda too, lambda * (L / L_ref + beta * (1 - U)) (lambda = 0: the task
    # alone); with a latency target it stays beta * (1 - U) either way (uboost.strategy.loss)
    utilization_scale: str = "fixed"
    target_latency_ms: float | None = None
    budget_lr: float = 0.5
    budget_floor: float = 0.9  # with a target: export (and steer to) a network using >= this share of it
    budget_commit: float = 0.2  # with a target: the last share of the search pulls the alphas to the budget's projection
    entropy_weight: float = 0.0
    cost_mode: str = "expected"
    temperature: float = 10.0
    sampling: str = "single-path"  # one sampled candidate per choice runs per step (or "mixture": all of them, DARTS)
    # single-path: weight of the score-function (REINFORCE) estimate of the task's gradient beside the straight-through
    # one (strategy/score_function.py): it reaches choices whose output feeds a batch norm; 0: straight-through only
    score_weight: float = 0.0
    # which sampled choices get it: "all", or "blind" (those whose straight-through task gradient vanishes, measured)
    score_on: str = "all"
    sharpen: bool = True  # the hardware term prices softmax(alpha / gumbel tau): the search commits
    # (start, end) of the Gumbel-softmax temperature, annealed linearly per architecture step (NNI's GumbelDARTS
    # anneals it too): the straight-through relaxation and, with sharpen, the priced distribution follow it
    gumbel_tau: tuple[float, float] = (1.0, 0.1)
    epochs: int = 6
    warmup_epochs: int = 0  # weights-only epochs first (the architecture and the Gumbel schedule start after them)
    batch_size: int = 64
    learning_rate: float = 0.01
    arch_lr: float = 0.1  # with sharpen and exportable cells the default search commits (gap 0.1-2.3 %, RESULTS.md)
    data_split: float = 0.8
    seed: int = 0
    accelerator: str = "auto"  # as Lightning: a GPU where there is one, else the CPU
    # launch settings (uboost.distributed): may differ when a run resumes
    devices: int = 1  # devices per node, one process each
    num_nodes: int = 1
    strategy: str = "auto"  # auto: DDP when devices x num_nodes > 1; ddp: always (also on one device)
    precision: str = "32-true"  # Lightning's: 32-true | bf16-mixed | 16-mixed (GPU)
    # precision (strategy/precision.py): searched bitwidths, and the PEs that price them (hardware/precision.py)
    bits: tuple[int, ...] | None = None  # one choice per layer for weights and activations together
    weight_bits: tuple[int, ...] | None = None  # or independent choices per operand
    act_bits: tuple[int, ...] | None = None
    pin_bits: dict | None = None  # layer-name pattern -> fixed width
    bits_noise_weight: float = 0.0  # the bits' quantization-noise loss in the architecture loss (strategy/bits_noise.py)
    # whether the utilization term's gradient reaches the searched bits (strategy/precision.py); None ("auto"): on
    # fixed PEs only (on bitfusion/bit-serial a narrow width runs faster at a lower utilization), decided by the
    # strategy from the PEs it prices, so a tuner that changes the PEs per trial keeps an explicit true/false
    utilization_on_bits: bool | None = None
    pe: str = "fixed"
    # at export: "bits" raises each layer's bits where that costs nothing; "all" raises channel counts and bits
    # jointly as far as the exported network's cost allows (uboost.strategy.widening). None: "all" when bits are
    # searched (a narrow layer can hold another at high bits: benchmarks/RESULTS.md, "widening channel counts and
    # bits jointly"), else "bits" (the search's own argmax); stored resolved
    widen: str | None = None

    def __post_init__(self) -> None:
        from uboost.hardware import parse_array

        if self.space_options is not None and not isinstance(self.space_options, dict):
            raise ConfigError(f"space_options must be a dict of options, got {type(self.space_options).__name__}")
        object.__setattr__(self, "space_options", {**default_options(self.space), **(self.space_options or {})})
        _store_paths_absolute(self)
        parse_array(self.array)
        from uboost import accelerator

        # stored resolved (uboost.accelerator): presets by name, files and tables by their contents, never a path
        object.__setattr__(self, "energy", accelerator.stored_energy(self.energy))
        object.__setattr__(self, "operating_points", accelerator.stored_points(self.operating_points))
        object.__setattr__(self, "hardware", accelerator.check_extras(self.hardware))
        if self.clock_hz is None:
            points = accelerator.points_table(self.operating_points)
            object.__setattr__(self, "clock_hz", points.points[-1].freq_hz if points is not None else 1.0e9)
        if isinstance(self.inference_batch, bool) or not isinstance(self.inference_batch, int) or self.inference_batch < 1:
            raise ConfigError(f"inference_batch must be a positive integer, got {self.inference_batch!r}")  # (the spec's batch)
        self.hardware_spec()  # memory, energy table, voltage, operating points and the file's extras checked up front
        if self.operating_point not in (None, "auto"):
            raise ConfigError(f"operating_point must be 'auto' (or unset: the spec's clock_hz), got {self.operating_point!r}")
        if self.operating_point == "auto" and self.operating_points is None:
            raise ConfigError("operating_point 'auto' needs an operating-point table: set operating_points (--operating-points: a preset or a TOML file)")
        if self.operating_point == "auto" and self.voltage_v is not None:  # it took each point's voltage, silently
            raise ConfigError(f"voltage_v {self.voltage_v:g} V fixes one supply voltage, operating_point 'auto' runs each "
                              "point at its table's voltage: give one or the other")
        for name in ("epochs", "batch_size", "inference_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.warmup_epochs, bool) or not isinstance(self.warmup_epochs, int) or not 0 <= self.warmup_epochs < self.epochs:
            raise ConfigError(f"warmup_epochs must be an integer in [0, epochs) = [0, {self.epochs}), got {self.warmup_epochs!r}")
        from uboost.distributed import check_settings

        check_settings(devices=self.devices, num_nodes=self.num_nodes, strategy=self.strategy, precision=self.precision)
        for name in ("learning_rate", "arch_lr", "temperature", "clock_hz"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{name} must be a positive number, got {value!r}")
        if self.target_latency_ms is not None and (
            isinstance(self.target_latency_ms, bool) or not isinstance(self.target_latency_ms, (int, float))
            or not math.isfinite(self.target_latency_ms) or not 0 < self.target_latency_ms <= MAX_BUDGET_MS
        ):
            raise ConfigError(f"target_latency_ms must be a positive number of milliseconds (at most {MAX_BUDGET_MS:g}), "
                              f"got {self.target_latency_ms!r}")
        if self.target_energy_uj is not None and (
            isinstance(self.target_energy_uj, bool) or not isinstance(self.target_energy_uj, (int, float))
            or not math.isfinite(self.target_energy_uj) or self.target_energy_uj <= 0
        ):
            raise ConfigError(f"target_energy_uj must be a positive number of microjoules, got {self.target_energy_uj!r}")
        if isinstance(self.budget_floor, bool) or not isinstance(self.budget_floor, (int, float)) or not 0 <= self.budget_floor < 1:
            raise ConfigError(f"budget_floor must be a fraction of the budget in [0, 1), got {self.budget_floor!r}")
        if isinstance(self.budget_commit, bool) or not isinstance(self.budget_commit, (int, float)) or not 0 <= self.budget_commit <= 1:
            raise ConfigError(f"budget_commit must be a fraction of the search in [0, 1], got {self.budget_commit!r}")
        for name in ("latency_weight", "utilization_weight", "budget_lr", "entropy_weight", "energy_weight", "bits_noise_weight",
                     "score_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be a non-negative number, got {value!r}")
        if isinstance(self.data_split, bool) or not isinstance(self.data_split, (int, float)) or not 0 < self.data_split < 1:
            raise ConfigError(f"data_split must be a fraction between 0 and 1 (exclusive), got {self.data_split!r}")
        for name in ("sharpen", "download"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if isinstance(self.utilization_on_bits, str) and self.utilization_on_bits.strip().lower() in ("auto", "on", "off"):
            spelled = {"auto": None, "on": True, "off": False}[self.utilization_on_bits.strip().lower()]
            object.__setattr__(self, "utilization_on_bits", spelled)  # as the command line spells them
        if self.utilization_on_bits is not None and not isinstance(self.utilization_on_bits, bool):
            raise ConfigError(f'utilization_on_bits must be true or false or "auto", got {self.utilization_on_bits!r}')
        object.__setattr__(self, "gumbel_tau", check_gumbel_tau(self.gumbel_tau))
        if self.sampling not in SAMPLING_MODES:
            raise ConfigError(f"sampling must be one of {', '.join(SAMPLING_MODES)}, got {self.sampling!r}")
        if self.score_weight and self.sampling != "single-path":
            raise ConfigError("score_weight estimates single-path sampling's task gradient: it needs sampling single-path")
        if self.score_on not in SCORE_SCOPES:
            raise ConfigError(f"score_on must be one of {', '.join(SCORE_SCOPES)}, got {self.score_on!r}")
        if self.score_on != "all" and not self.score_weight:
            raise ConfigError(f"score_on={self.score_on!r} picks the choices the score function reaches: it needs a score_weight above 0")
        if self.utilization_scale not in UTILIZATION_SCALES:
            raise ConfigError(f"utilization_scale must be one of {', '.join(UTILIZATION_SCALES)}, got {self.utilization_scale!r}")
        if self.cost_mode not in COST_MODES:
            raise ConfigError(f"unknown cost mode {self.cost_mode!r}; expected one of: {', '.join(COST_MODES)}")
        check_seed(self.seed)
        if self.accelerator not in ("cpu", "gpu", "cuda", "mps", "auto"):
            raise ConfigError(f"accelerator must be cpu, gpu, mps or auto, got {self.accelerator!r}")
        if self.image_size is not None and (isinstance(self.image_size, bool) or not isinstance(self.image_size, int)
                                            or self.image_size < 4):
            raise ConfigError(f"image_size must be a whole number >= 4, got {self.image_size!r}")
        if self.max_samples is not None and (isinstance(self.max_samples, bool) or not isinstance(self.max_samples, int) or self.max_samples < 1):
            raise ConfigError(f"max_samples must be a positive integer, got {self.max_samples!r}")
        self._check_precision()
        if self.widen is None:
            object.__setattr__(self, "widen", self._default_widen())
        if self.widen not in WIDEN_MODES:
            raise ConfigError(f"widen must be one of {', '.join(WIDEN_MODES)}, got {self.widen!r}")

    def _check_precision(self) -> None:
        from uboost.quant import check_bits

        for name in ("bits", "weight_bits", "act_bits"):  # JSON lists become tuples
            if getattr(self, name) is not None:
                object.__setattr__(self, name, check_bits(getattr(self, name), name))
        if self.pin_bits is not None and not isinstance(self.pin_bits, dict):
            raise ConfigError(f"pin_bits must map layer-name patterns to bits, got {self.pin_bits!r}")
        if self.bits is not None and (self.weight_bits is not None or self.act_bits is not None):
            raise ConfigError("give either bits (weights and activations together) or weight_bits/act_bits, not both")
        options = self.bits_options()
        if options is None and self.pin_bits:
            raise ConfigError("pin_bits needs a precision search (bits, weight_bits or act_bits)")
        if options is None and self.bits_noise_weight:
            raise ConfigError("bits_noise_weight needs a precision search (bits, weight_bits or act_bits)")
        pinned = [check_bits(v, f"pin_bits[{k!r}]")[0] for k, v in (self.pin_bits or {}).items()]
        widths = {*(self.bits or ()), *(self.weight_bits or ()), *(self.act_bits or ()), *pinned}
        from uboost.hardware.precision import check_bits as check_pe

        check_pe(self.hardware_spec(), sorted(widths))  # e.g. bitfusion above 8 bits
        if options is not None and self.cost_model == "scalesim" and self.hardware_spec().memory_bound:
            self._check_scalesim_bits(options, pinned)

    def _check_scalesim_bits(self, options: dict[str, Any], pinned: list[int]) -> None:
        """SCALE-Sim with limited memory runs equal weight and activation bits only, at sizes it can scale
        (:func:`~uboost.hardware.scalesim_runner.user_memory`): refused here, before a run directory is made."""
        from itertools import product

        from uboost.hardware.scalesim_runner import user_memory

        pairs = {(b, b) for b in pinned}  # a pinned layer takes its width for both operands
        if options["bits"]:  # weights and activations searched together
            pairs |= {(b, b) for b in options["bits"]}
        else:  # each operand over its own widths (one not searched stays at 8)
            pairs |= set(product(options["weight_bits"] or (8,), options["act_bits"] or (8,)))
        for w, a in sorted(pairs):
            user_memory(self.hardware_spec(), w, a)

    def bits_options(self) -> dict[str, Any] | None:
        """``UBoost``'s precision keywords (``bits``, ``weight_bits``, ``act_bits``, ``pin_bits``), or ``None``."""
        if self.bits is None and self.weight_bits is None and self.act_bits is None:
            return None
        return {"bits": self.bits, "weight_bits": self.weight_bits, "act_bits": self.act_bits, "pin_bits": dict(self.pin_bits or {}),
                "bits_noise_weight": self.bits_noise_weight, "utilization_on_bits": self.utilization_on_bits}

    @property
    def rows(self) -> int:
        from uboost.hardware import parse_array

        return parse_array(self.array)[0]

    @property
    def cols(self) -> int:
        from uboost.hardware import parse_array

        return parse_array(self.array)[1]

    def hardware_spec(self) -> HardwareSpec:
        from uboost import accelerator
        from uboost.hardware import HardwareSpec

        return HardwareSpec(
            rows=self.rows, cols=self.cols, dataflow=self.dataflow, batch_size=self.inference_batch, clock_hz=self.clock_hz,
            sram_kb=self.sram_kb, dram_bw_words=self.dram_bw_words, energy=accelerator.energy_table(self.energy),
            voltage_v=self.voltage_v, operating_points=accelerator.points_table(self.operating_points), pe=self.pe,
            **accelerator.spec_extras(self.hardware),
        )

    def area_table(self):
        """The area table of the run's accelerator (its file's, else the default preset)."""
        from uboost.hardware.area import resolve_area

        return resolve_area((self.hardware or {}).get("area"))

    def to_dict(self) -> dict[str, Any]:
        """The settings as ``config.json`` holds them (tuples as lists): equal to a stored config read back."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SearchConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"a search config must be a JSON/TOML object of settings, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}; valid keys: {', '.join(sorted(known))}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"bad config: {exc}") from None

    def replace(self, **changes: Any) -> "SearchConfig":
        """A copy with ``changes``; a ``widen`` that was the default follows a change of the searched bits."""
        if "widen" not in changes and {"bits", "weight_bits", "act_bits"} & set(changes) and \
                self.widen == self._default_widen():
            changes["widen"] = None
        return dataclasses.replace(self, **changes)

    def bits_note(self, model: CostModel | None = None) -> str | None:
        """A one-line note when bits are searched but nothing the search optimizes depends on them:
        PEs and a memory model that price a layer the same at every searched width (cycles and
        utilization of a large probe layer at the narrowest and the widest) and no energy term. The
        bits alphas then follow the task alone and the export raises them to the widest free width.
        ``None`` otherwise. ``scalesim`` is told without simulating: its fixed PEs price every width the same
        unless the memory is limited (then a width scales the buffers and the bandwidth). ``model``: this
        config's cost model when the caller has built it already."""
        options = self.bits_options()
        if options is None or self.energy_weight or self.target_energy_uj is not None:
            return None
        if self.cost_model == "scalesim":
            return None if self.hardware_spec().memory_bound else self._same_bits_note()
        from uboost.hardware import LayerShape

        # each operand over its own searched widths (an operand not searched stays at 8, as the search keeps it)
        weights = options["bits"] or options["weight_bits"] or (8,)
        acts = options["bits"] or options["act_bits"] or (8,)
        model = model if model is not None else build_cost_model(self)
        probe = dict(name="probe", kind="conv", in_channels=256, out_channels=256, kernel_h=3, kernel_w=3,
                     in_h=32, in_w=32, out_h=32, out_w=32)
        narrow, wide = (model.evaluate([LayerShape(**probe, weight_bits=pick(weights), act_bits=pick(acts))])
                        for pick in (min, max))
        if (narrow.cycles, narrow.utilization) != (wide.cycles, wide.utilization):
            return None
        return self._same_bits_note()

    def _same_bits_note(self) -> str:
        return (f"{self.pe} PEs priced by {self.cost_model} cost every bitwidth the same (cycles and utilization) and "
                "there is no energy term: the bits follow the task alone and the export raises them to the widest free "
                "width; to trade bits for latency use --pe bitfusion or bit-serial, or a memory limit (--sram-kb, "
                "--dram-bw-words) with --cost-model systolic-mem or scalesim; for energy, --energy-weight")

    def resolved_utilization_on_bits(self) -> bool:
        """What the search does with ``utilization_on_bits``: the value given, or for auto (None) False only where it
        acts -- a choice among widths on precision-aware PEs (:func:`uboost.strategy.precision.blind_utilization`);
        True elsewhere, what every search did before the option."""
        if self.utilization_on_bits is not None:
            return self.utilization_on_bits
        searched = any(len(widths or ()) > 1 for widths in (self.bits, self.weight_bits, self.act_bits))
        return not searched or self.hardware_spec().pe == "fixed"

    def _default_widen(self) -> str:
        """``widen`` when not given: ``all`` when bits are searched, else ``bits`` (the search's own argmax)."""
        return "all" if self.bits_options() is not None else "bits"


def refuse_tableless_lookup(config: SearchConfig, cost_model=None) -> None:
    """A search config holds no table for the lookup model: refused up front unless the model is given built."""
    if config.cost_model == "lookup" and cost_model is None:
        raise ConfigError("cost_model lookup prices from a table, which a search config cannot hold: use it with "
                          "`uboost profile --cost-model lookup --table FILE`, or pass run_search(..., cost_model="
                          "create('lookup', table=FILE, spec=config.hardware_spec())); or search with the model the "
                          "table was made with")


def _store_paths_absolute(config: SearchConfig) -> None:
    """A ``folder:`` dataset and a ``data_dir`` as absolute paths: a run read from another directory (profile,
    export and retrain rebuild its network from the dataset's classes and shape) found "folder does not exist"."""
    import os

    prefix = "folder:"  # uboost.data.FOLDER_PREFIX (not imported: it brings torch)
    if isinstance(config.dataset, str) and config.dataset.strip().lower().startswith(prefix):
        path = config.dataset.strip()[len(prefix):].strip()
        if path:
            object.__setattr__(config, "dataset", prefix + os.path.abspath(os.path.expanduser(path)))
    if isinstance(config.data_dir, str) and config.data_dir:
        object.__setattr__(config, "data_dir", os.path.abspath(os.path.expanduser(config.data_dir)))


def refuse_choiceless(config: SearchConfig, space) -> None:
    """A space with nothing to search, said before the run directory is written (NNI found it after: a run
    directory whose --resume could not work)."""
    options = config.bits_options()
    if options is not None and any(len(options[k] or ()) > 1 for k in ("bits", "weight_bits", "act_bits")):
        return  # the bitwidths are the choices (UBoost attaches them to every layer)
    if not space.simplify():
        raise ConfigError(f"space {config.space} with these options has no choices to search (e.g. --cell-arch fixes "
                          "every cell: add --channels to search widths); retrain or profile it instead")


def build_cost_model(config: SearchConfig) -> CostModel:
    from uboost.hardware import create

    return create(config.cost_model, spec=config.hardware_spec())


def data_spec(config: SearchConfig):
    """The classes and input shape the config's space is sized to (its dataset, at the space's input channels)."""
    from uboost.data import dataset_spec
    from uboost.search_spaces import SPACES

    channels = getattr(SPACES.get(config.space), "input_channels", 3)
    return dataset_spec(config.dataset, data_dir=config.data_dir, image_size=config.image_size, channels=channels)


def build_space(config: SearchConfig):
    """A fresh model space sized to the dataset: ``(space, input_shape, data_spec)``."""
    from uboost.search_spaces import SPACES

    factory = SPACES.get(config.space)
    spec = data_spec(config)
    from uboost.search_spaces.registry import construct

    given = sorted({"num_classes", "input_shape"} & set(config.space_options))
    if given:  # stored and then overridden by the dataset's, silently
        raise ConfigError(f"space option {' and '.join(given)} comes from the dataset ({spec.num_classes} classes of "
                          f"{'x'.join(map(str, spec.input_shape))}): choose it with --dataset, --image-size")
    space = construct(config.space, factory, {**config.space_options, "num_classes": spec.num_classes,
                                             "input_shape": spec.input_shape})
    return space, tuple(spec.input_shape), spec


def check_pins(config: SearchConfig) -> None:
    """Refuse (ConfigError) a ``pin_bits`` pattern that matches no ``Conv2d``/``Linear`` of the supernet,
    by building one (only when there are pins): the search itself finds out after its directory exists."""
    if not config.pin_bits:
        return
    from uboost.strategy import UBoost

    supernet = UBoost(sampling=config.sampling, **config.bits_options()).mutate_model(build_space(config)[0])
    if not any(True for m in supernet.modules() if hasattr(m, "arch_parameters") for _ in m.arch_parameters()):
        raise ConfigError(f"space {config.space} with these options has no choices to search (the pins fix every "
                          "searched bitwidth and the space has no other choice); retrain or profile it instead")

"""The accelerator column of ``uboost tune``'s results table (the co-searched part of each trial's accelerator), and
what tune says of the accelerators it prices."""

from __future__ import annotations

from typing import Any

BUFFERS = ("ifmap_sram_kb", "filter_sram_kb", "ofmap_sram_kb")
ACCELERATOR_PARAMS = (*BUFFERS, "dram_bw_words", "clock_hz", "pe")


def _accelerator_text(params: dict, fixed: dict[str, Any] | None = None) -> str:
    """``"8/16/8 kB, 4 w/c, 700 MHz, bitfusion"``: the co-searched part of a trial's accelerator. A buffer not
    searched shows its size in ``fixed`` (the trial's own accelerator: the --hardware file's or --sram-kb), ``-``
    where it has none (unbounded, or unknown)."""
    fixed = fixed or {}
    parts = []
    if any(k in params for k in BUFFERS):
        sizes = (params.get(k, fixed.get(k)) for k in BUFFERS)
        parts.append("/".join("-" if v is None else str(v) for v in sizes) + " kB")
    if "dram_bw_words" in params:
        parts.append(f"{params['dram_bw_words']:g} w/c")
    if "clock_hz" in params:
        parts.append(f"{params['clock_hz'] / 1e6:g} MHz")
    if "pe" in params:
        parts.append(str(params["pe"]))
    return ", ".join(parts)


def _resolved(trial) -> dict[str, Any]:
    """The trial's accelerator as it was priced (buffers, bandwidth, clock, PE mode), from its resolved config;
    empty when it stored none or it no longer resolves."""
    from uboost.exceptions import UBoostError
    from uboost.search_config import SearchConfig
    from uboost.tuning.warm_start import searched_values

    config = trial.user_attrs.get("config")
    if not isinstance(config, dict):
        return {}
    try:
        return searched_values(SearchConfig.from_dict(config))
    except (UBoostError, TypeError, ValueError, KeyError):
        return {}


def _chosen_params(trial) -> dict:
    """The trial's parameters, its accelerator's as priced: after an inner accelerator choice the chosen one's
    (buffers, bandwidth, clock, PE mode from the trial's resolved config), not the sampled ones."""
    params = dict(trial.params)
    if "inner_accelerator" in trial.user_attrs:
        values = _resolved(trial)
        params.update({k: values[k] for k in ACCELERATOR_PARAMS if k in params and values.get(k) is not None})
    return params


def _accelerator_cell(trial) -> str:
    """The table's accelerator cell of ``trial``: :func:`_accelerator_text` of :func:`_chosen_params`, buffers not
    searched at the trial's own sizes (``4/4/4 kB`` when only the ifmap SRAM is searched, not ``4/-/-``)."""
    params = _chosen_params(trial)
    fixed = _resolved(trial) if any(k in params for k in BUFFERS) and not all(k in params for k in BUFFERS) else {}
    return _accelerator_text(params, fixed)


def _wide_fixed_area_note(base, tune_space, priced: bool) -> str | None:
    """As ``profile`` says it (:func:`uboost.hardware.area.wide_fixed_pe_note`): an area of fixed PEs is the area
    table's 8-bit PE, whatever the searched widths."""
    from uboost.hardware.area import wide_fixed_pe_note

    options = base.bits_options() or {}
    widest = max([b for key in ("bits", "weight_bits", "act_bits") for b in (options.get(key) or ())] or [8])
    modes = getattr(tune_space.accelerator, "pe_modes", None) or (base.pe,)
    return wide_fixed_pe_note(widest, base.area_table().name) if priced and "fixed" in modes else None

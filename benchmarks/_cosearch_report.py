"""The markdown table of ``bench_cosearch.py``'s summaries: one block of rows per (space, budget) pair."""

from __future__ import annotations


def markdown(results: list[dict]) -> str:
    lines = ["| space | budget mm² | design | accelerator | accuracy | latency µs | energy µJ | EDP µJ·µs | trials (skipped) | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "pick" not in r:
            lines.append(f"| {r['space']} | {r['budget_mm2']:.4f} | (no finished trial) | | | | | | | |")
            continue
        for label, row, kind in (("16x16 baseline", r["reference"], "baseline"), ("co-search", r["pick"], "cosearch")):
            k = r[kind]
            bits = ", " + " + ".join(f"{n} {k}" for k, n in row["bits"].items()) if row.get("bits") else ""
            spread = f" ± {100 * row['accuracy_std']:.1f}" if "accuracy_std" in row else ""
            lines.append(f"| {r['space']} | {r['budget_mm2']:.4f} | {label} (trial {row['trial']}) | {row['accelerator']}{bits} | "
                         f"{100 * row['accuracy']:.1f}{spread} % | {1e3 * row['latency_ms']:.2f} | {row['energy_uj']:.3f} | "
                         f"{1e3 * row['edp_uj_ms']:.3f} | {k['searched_trials']} ({k['skipped_over_budget']}) | {k['wall_s']:.0f} |")
        same = r["reference_on_picked_accelerator"]
        lines.append(f"| {r['space']} | {r['budget_mm2']:.4f} | baseline network on the co-searched accelerator | | "
                     f"{100 * r['reference']['accuracy']:.1f} % | {1e3 * same['latency_ms']:.2f} | {same['energy_uj']:.3f} | "
                     f"{1e3 * same['edp_uj_ms']:.3f} | | |")
        head = r.get("best_accelerator_for_reference")
        if head and "edp_uj_ms" in head:
            lines.append(f"| {r['space']} | {r['budget_mm2']:.4f} | baseline network on the best of {head['accelerators_within_budget']} "
                         f"accelerators within budget (enumerated) | {head['accelerator']} | {100 * r['reference']['accuracy']:.1f} % | "
                         f"{1e3 * head['latency_ms']:.2f} | {head['energy_uj']:.3f} | {1e3 * head['edp_uj_ms']:.3f} | | |")
        for label, row in (("co-search pick's network at 8 bits on its accelerator", "pick_at_8_bits_on_its_accelerator"),
                           ("co-search pick's network at 8 bits on its best accelerator (enumerated)", "pick_at_8_bits_on_its_best_accelerator"),
                           ("co-search pick's network at its bits on the 16x16 baseline", "pick_at_its_bits_on_the_16x16_baseline")):
            if row in r.get("bits_split", {}):
                b = r["bits_split"][row]
                lines.append(f"| {r['space']} | {r['budget_mm2']:.4f} | {label} | {b.get('accelerator', '')} | | {1e3 * b['latency_ms']:.2f} | {b['energy_uj']:.3f} | "
                             f"{1e3 * b['edp_uj_ms']:.3f} | | |")
        for u in r.get("reference_uniform_bits", []):
            lines.append(f"| {r['space']} | {r['budget_mm2']:.4f} | baseline network retrained at uniform {u['bits']} bits (fairness) | "
                         f"{r['reference']['accelerator']} | {100 * u['accuracy']:.1f} % | {1e3 * u['latency_ms']:.2f} | "
                         f"{u['energy_uj']:.3f} | {1e3 * u['edp_uj_ms']:.3f} | | |")
            if "best_accelerator" in u:
                h = u["best_accelerator"]
                lines.append(f"| {r['space']} | {r['budget_mm2']:.4f} | the same on the best accelerator within budget (enumerated) | "
                             f"{h['accelerator']} | {100 * u['accuracy']:.1f} % | {1e3 * h['latency_ms']:.2f} | {h['energy_uj']:.3f} | "
                             f"{1e3 * h['edp_uj_ms']:.3f} | | |")
        lines.append(f"| {r['space']} | {r['budget_mm2']:.4f} | **EDP gain {r['edp_gain']:.2f}x**, accuracy "
                     f"{r['accuracy_delta_points']:+.1f} points{'' if r['pick_within_tolerance'] else ' (none within tolerance)'} | | | | | | | |")
        if r.get("retrains"):
            k = r["retrains"]
            lines.append(f"| {r['space']} | {r['budget_mm2']:.4f} | accuracies: means of {k['seeds']} retrains (± sample std); "
                         f"{k['distinct_retrains']} distinct retrains, {k['retrained_now']} run now in {k['wall_s']:.0f} s | | | | | | | |")
    for r in results:
        for g in r.get("front_gains", []):
            found = (f"co-search trial {g['cosearch_trial']} ({100 * g['cosearch_accuracy']:.1f} %): EDP gain {g['gain']:.2f}x"
                     if g["gain"] is not None else "no co-search trial within tolerance")
            lines.append(f"\n- {r['space']}, {r['budget_mm2']:.4f} mm²: baseline front point trial {g['baseline_trial']} "
                         f"({100 * g['accuracy']:.1f} %, EDP {1e3 * g['edp_uj_ms']:.3f} µJ·µs) -> {found}")
    for r in results:
        if r.get("inner_rounds"):
            k, best = r["inner_rounds"], r["inner_rounds"]["best_pair_any_round"]
            lines.append(f"\n- {r['space']}, {r['budget_mm2']:.4f} mm², inner rounds: round 2 ran in {k['round_2_ran']} of {k['trials']} "
                         f"trials, derived another network in {k['round_2_other_network']}, chose another accelerator in "
                         f"{k['round_2_other_accelerator']}, lowered EDP in {k['round_2_lower_edp']}, was kept in {k['kept_round_2']}; "
                         + (f"best pair of any round within tolerance: trial {best['trial']} round {best['round']} "
                            f"({100 * best['accuracy']:.1f} %), EDP gain {k['edp_gain_any_round']:.2f}x" if best else "no pair within tolerance"))
    return "\n".join(lines) + "\n"

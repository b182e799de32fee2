import pytest

from tests.cli.conftest import cli, tiny_search  # noqa: F401  (cli: the CLI runner fixture)


@pytest.fixture(scope="session")
def retrained_run(tmp_path_factory):
    """A tiny lenet search on 8x8 digits, retrained for one epoch (RUN/retrain/model.pt)."""
    from uboost.retrain import RetrainConfig, retrain

    out = tiny_search(tmp_path_factory.mktemp("dynamic") / "tiny", accelerator="cpu")
    retrain(out, RetrainConfig(epochs=1, max_samples=128, accelerator="cpu", augment=False))
    return out


def hand_priced(costs, shares, kept, p):
    """Expected and worst ``(latency_ms, energy_uj)`` written out loop by loop (the module docstring's
    formula): exit ``k`` costs the segments up to ``k`` plus every kept head up to ``k``; the final
    classifier every segment and every kept head."""
    k_exits = costs.exits
    rows = []
    for k in range(k_exits + 1):
        last_head = k if k < k_exits else k_exits - 1
        cycles = sum(costs.segment_cycles[p][i] for i in range(k + 1))
        cycles += sum(costs.head_cycles[p][j] for j in range(last_head + 1) if kept[j])
        energy = sum(costs.segment_energy_uj[p][i] for i in range(k + 1))
        energy += sum(costs.head_energy_uj[p][j] for j in range(last_head + 1) if kept[j])
        rows.append((cycles / costs.freq_hz[p] * 1e3, energy))
    expected = (sum(s * r[0] for s, r in zip(shares, rows)), sum(s * r[1] for s, r in zip(shares, rows)))
    return expected, rows[-1]


def assert_priced(rows, costs):
    """Every candidate's expected and worst costs are those of its own shares, kept exits and operating point."""
    assert rows
    for row in rows:
        kept = [t is not None for t in row["thresholds"]]
        p = row["point"]
        expected, worst = hand_priced(costs, row["shares"], kept, p)
        assert (row["expected_latency_ms"], row["expected_energy_uj"]) == pytest.approx(costs.expected(row["shares"], kept, p), rel=1e-12)
        assert (row["expected_latency_ms"], row["expected_energy_uj"]) == pytest.approx(expected, rel=1e-12)
        assert (row["worst_latency_ms"], row["worst_energy_uj"]) == pytest.approx(costs.worst(kept, p), rel=1e-12)
        assert (row["worst_latency_ms"], row["worst_energy_uj"]) == pytest.approx(worst, rel=1e-12)
        assert (row["freq_hz"], row["voltage_v"]) == (costs.freq_hz[p], costs.voltage_v[p])

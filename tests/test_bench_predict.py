"""benchmarks/bench_predict.py: the held-out networks of ``--part loo`` are none the fit measured
(fast: the supernet is stubbed, the space is lenet's), the retrain part scores the table's
unclipped sum, and RESULTS's commands make every row of its K table."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_predict  # noqa: E402


class _Supernet:
    """lenet's choices (300 networks) with an accuracy that is a function of the network, and no weights."""

    def __init__(self):
        import torch

        from uboost.search_config import SearchConfig, build_space
        from uboost.strategy import UBoost
        from uboost.strategy.architecture import choice_groups

        config = SearchConfig(space="lenet")
        space, _, _ = build_space(config)
        self.choices, self.nodes = choice_groups(UBoost(sampling=config.sampling, seed=0).mutate_model(space))
        with torch.no_grad():
            for c in self.choices:
                c.alpha.zero_()  # the argmax: entry 0 of every choice, as the default lenet-s0 search's

    def fine_tune_uniform(self, epochs):
        pass

    def accuracy(self, network):
        entries = [v for _, v in sorted(network.items())]
        return 0.5 + sum((i + 1) * 0.01 * v for i, v in enumerate(entries)) + 0.002 * (entries[0] * entries[-1] % 3)


def test_no_held_out_network_is_one_the_fit_measured_at_any_k(monkeypatch):
    """lenet has 300 networks: drawn uniformly, 20 of the 40 "held-out" ones were in the K = 160 fit."""
    from uboost.predict import supernet, table

    fitted, predicted = [], []
    fit, predict = table.fit_additive, table.AdditiveTable.predict

    def recording_fit(names, center, networks, accuracies):
        fitted.append({tuple(sorted(n.items())) for n in networks})
        return fit(names, center, networks, accuracies)

    def recording_predict(self, network):
        predicted.append(tuple(sorted(network.items())))
        return predict(self, network)

    monkeypatch.setattr(supernet, "load_trained_supernet", lambda run: _Supernet())
    monkeypatch.setattr(table, "fit_additive", recording_fit)
    monkeypatch.setattr(table.AdditiveTable, "predict", recording_predict)
    rows = bench_predict.part_loo(Path("lenet-s0"), 0)
    assert [r["K"] for r in rows] == list(bench_predict.K_GRID) and len(fitted) == len(rows)
    assert len(predicted) == len(rows) * bench_predict.HOLDOUT
    held = set(predicted)
    assert [len(held & networks) for networks in fitted] == [0] * len(fitted)  # were 0 3 6 11 15 19 23 of 39
    assert len(held) == bench_predict.HOLDOUT  # the same 40 distinct networks at every K


def test_the_retrain_part_scores_the_unclipped_table_sum():
    """RESULTS: "Predictions are the table's sum, unclipped" (its frontier table shows 112.7 %)."""
    from uboost.predict import AdditiveTable, Predictor

    made = AdditiveTable(values={"a": ["1", "2"]}, reference={"a": 0}, base=0.9, delta={"a": [0.0, 0.227]},
                         loo_rmse=0.1, loo_mae=0.1, ridge=0.0, samples=2)
    predictor = Predictor(made, {})
    assert predictor.predict({"a": 1}).accuracy == 1.0  # what uboost predict reports
    assert bench_predict.predicted(predictor, {"a": 1}) == pytest.approx(1.127)
    assert bench_predict.predicted(predictor, {"a": 0}) == pytest.approx(0.9)


def test_the_results_commands_make_every_row_of_the_k_table(monkeypatch, tmp_path):
    """RESULTS listed only `--part loo --seeds 0` (the fine-tune 1 rows), and a second `--part loo` run
    replaced the first one's file: the listed commands, run as written, give every (run, fine-tuning)."""
    import json
    import logging
    import re
    import shlex

    import torch

    text = (Path(__file__).resolve().parents[1] / "benchmarks" / "RESULTS.md").read_text()
    section = text[text.index("# Predict before you train"):]
    section = section[:section.index("\n# ")]
    table = section[section.index("| run | fine-tune epochs | K |"):]
    wanted = {(cells[0], int(cells[1])) for cells in
              ([c.strip() for c in line.strip("|").split("|")] for line in table.split("\n\n")[0].splitlines()[2:])}
    commands = re.findall(r"^python benchmarks/bench_predict.py (--part loo.*?)(?:#.*)?$", section, flags=re.M)
    monkeypatch.setattr(bench_predict, "search", lambda root, space, seed: root / f"{space}-s{seed}")
    monkeypatch.setattr(bench_predict, "part_loo", lambda run, epochs: [{"run": run.name, "fine_tune_epochs": epochs}])
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: None)
    for command in commands:
        bench_predict.main([*shlex.split(command), "--out", str(tmp_path)])
    made = {(row["run"], row["fine_tune_epochs"]) for path in tmp_path.glob("loo-*.json") for row in json.loads(path.read_text())}
    assert made == wanted == {(run, epochs) for run in ("lenet-s0", "darts-cifar-s0") for epochs in (0, 1)}

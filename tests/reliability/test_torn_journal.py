"""Issue 27, data loss: a journal with a torn last record is never appended to (that would make it
unreadable for good); the command says so in one line and --repair-journal cuts it back."""

import pytest

from tests.reliability.conftest import one_line_error

TORN = b'{"op_code": 5, "worker_id": "abc", "trial_id": 1, "sta'


def _study_with_trials(out, n=3):
    import optuna

    from uboost.tuning import create_study

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = create_study(out)
    for i in range(n):
        study.add_trial(optuna.trial.create_trial(values=[0.5 + 0.1 * i, 0.01 * (i + 1)],
                                                  params={"x": float(i)},
                                                  distributions={"x": optuna.distributions.FloatDistribution(0, 10)}))
    return out / "study.journal"


def _trials(journal):
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    storage = JournalStorage(JournalFileBackend(str(journal)))
    return len(optuna.load_study(study_name="uboost", storage=storage).trials)


def test_a_torn_journal_is_refused_untouched_and_repaired_on_request(cli, tmp_path):
    out = tmp_path / "tune"
    journal = _study_with_trials(out)
    with open(journal, "ab") as f:
        f.write(TORN)
    assert _trials(journal) == 3  # Optuna itself still reads it
    before = journal.read_bytes()

    one_line_error(cli("tune", "--trials", "0", "--out", out), "torn record", "--repair-journal")
    one_line_error(cli("tune", "--trials", "1", "--space", "lenet", "--out", out), "--repair-journal")
    assert journal.read_bytes() == before  # never made worse

    result = cli("tune", "--trials", "0", "--out", out, "--repair-journal")
    assert result.code == 0, result.err
    assert journal.read_bytes() == before[: -len(TORN)]
    backups = list(out.glob("study.journal.damaged-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == before
    assert _trials(journal) == 3
    assert cli("tune", "--trials", "0", "--out", out).code == 0


def test_a_broken_middle_record_is_reported_and_never_cut(cli, tmp_path):
    out = tmp_path / "tune"
    journal = _study_with_trials(out)
    lines = journal.read_bytes().splitlines(keepends=True)
    lines.insert(len(lines) - 1, b'{"op_code": oops}\n')
    journal.write_bytes(b"".join(lines))
    before = journal.read_bytes()
    one_line_error(cli("tune", "--trials", "0", "--out", out), "not valid JSON")
    one_line_error(cli("tune", "--trials", "0", "--out", out, "--repair-journal"), "not valid JSON")
    assert journal.read_bytes() == before
    assert not list(out.glob("study.journal.damaged-*"))


def test_repairing_an_intact_journal_changes_nothing(cli, tmp_path):
    out = tmp_path / "tune"
    journal = _study_with_trials(out)
    before = journal.read_bytes()
    result = cli("tune", "--trials", "0", "--out", out, "--repair-journal")
    assert result.code == 0 and "nothing to repair" in result.out
    assert journal.read_bytes() == before


@pytest.mark.parametrize("storage", ["sqlite:///x.db", "study.db"])
def test_repair_journal_on_a_database_is_one_line(cli, tmp_path, storage):
    one_line_error(cli("tune", "--trials", "0", "--out", tmp_path / "t", "--storage", storage, "--repair-journal"), "journal files")


def test_two_repairs_in_one_second_keep_both_damaged_copies(tmp_path, monkeypatch):
    import time

    from uboost.tuning.journal import repair_journal

    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20261205-120000")  # the same second, twice
    journal = _study_with_trials(tmp_path / "tune")
    copies = []
    for torn in (TORN, TORN[:-7]):
        with open(journal, "ab") as f:
            f.write(torn)
        damaged = journal.read_bytes()
        backup = repair_journal(journal)
        copies.append((backup, damaged))
    assert copies[0][0] != copies[1][0]
    assert all(backup.read_bytes() == damaged for backup, damaged in copies)
    assert _trials(journal) == 3


def test_repair_of_a_journal_that_does_not_exist_does_not_call_it_intact(cli, tmp_path):
    result = cli("tune", "--trials", "0", "--out", tmp_path / "none", "--repair-journal")
    assert "is intact" not in result.out and f"no journal {tmp_path / 'none' / 'study.journal'} yet" in result.out


@pytest.mark.parametrize("bad", [["--trials", "1", "--space", "lenet", "--dram-bw-choices", "0"],
                                 ["--trials", "0", "--epochs", "3"]])
def test_a_refused_command_does_not_repair_the_journal_first(cli, tmp_path, bad):
    out = tmp_path / "tune"
    journal = _study_with_trials(out)
    with open(journal, "ab") as f:
        f.write(TORN)
    before = journal.read_bytes()
    result = cli("tune", "--out", out, "--repair-journal", *bad)
    assert result.code == 1 and "repaired" not in result.out, result.out
    assert journal.read_bytes() == before and not list(out.glob("study.journal.damaged-*"))

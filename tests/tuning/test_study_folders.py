"""Each study's trials get their own folder, whatever its name."""

from uboost.tuning import DEFAULT_STUDY, safe_name, trial_dir


def test_safe_names_are_kept_as_they_are():
    for name in (DEFAULT_STUDY, "lenet-16x16", "sweep_2.b"):
        assert safe_name(name) == name


def test_names_that_clean_up_alike_get_different_folders(tmp_path):
    names = ["a b", "a_b", "a/b", "a  b", "a:b", "", "study", "..", "._a_b"]
    folders = {trial_dir(tmp_path, name, 0) for name in names}
    assert len(folders) == len(names)
    for name in names:
        folder = safe_name(name)
        assert "/" not in folder and folder not in ("", ".", "..") and not folder.startswith(".")
        assert safe_name(name) == folder  # stable: a resumed study finds its trials


def test_a_study_name_with_spaces_keeps_its_readable_part():
    assert safe_name("my study").startswith("my_study-")


def test_a_new_study_refuses_a_folder_holding_another_storages_trials(tmp_path):
    """Same --out and study name, another --storage: refused before any journal is written (the new study's trials
    would have failed on every taken number, and its report replaced the other study's plot)."""
    import pytest

    from uboost.exceptions import ConfigError
    from uboost.tuning import create_study

    first = create_study(tmp_path / "tune", mode="pareto", seed=0)
    run = trial_dir(tmp_path / "tune", first.study_name, 0)
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    other = tmp_path / "other.journal"
    with pytest.raises(ConfigError, match="holds 1 trial run of another study named 'uboost'"):
        create_study(tmp_path / "tune", mode="pareto", storage=str(other))
    assert not other.exists()  # nothing written
    with pytest.raises(ConfigError, match="another study"):  # a storage file that exists but lacks this study
        other.write_text("")
        create_study(tmp_path / "tune", mode="pareto", storage=str(other))
    assert other.read_text() == ""
    create_study(tmp_path / "tune", mode="pareto", storage=str(other), study_name="second")  # another name: its own folder
    assert create_study(tmp_path / "tune", mode="pareto").study_name == "uboost"  # the first study continues

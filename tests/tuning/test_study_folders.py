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

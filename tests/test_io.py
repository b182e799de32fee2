import os
import stat

import pytest

from uboost.io import atomic_path, write_json, write_text


@pytest.fixture
def umask():
    def set_(mask):
        os.umask(mask)

    old = os.umask(0o022)
    yield set_
    os.umask(old)


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    write_json(tmp_path / "a.json", {"x": 1})
    write_text(tmp_path / "b.txt", "hi")
    with atomic_path(tmp_path / "c.bin") as tmp:
        tmp.write_bytes(b"\0")  # e.g. torch.save into the temporary path
    for name in ("a.json", "b.txt", "c.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_a_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "x.json"):
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []

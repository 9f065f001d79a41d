"""fastdeps.utils.filesystem: atomic writes with the modes stock pip gives."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from fastdeps.utils.filesystem import atomic_write, default_file_mode

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_file_appears_complete_with_nothing_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "demo-1.0-py3-none-any.whl"
    with atomic_write(str(target)) as file:
        file.write(b"first half, ")
        assert not target.exists()
        file.write(b"second half")

    assert target.read_bytes() == b"first half, second half"
    assert os.listdir(tmp_path) == [target.name]


@pytest.mark.parametrize("error", [OSError(28, "No space left"), KeyboardInterrupt()])
def test_an_interrupted_write_leaves_the_old_file_and_no_temporary_one(
    tmp_path: Path, error: BaseException
) -> None:
    target = tmp_path / "entry"
    target.write_bytes(b"old")

    with pytest.raises(type(error)), atomic_write(str(target), 0o644) as file:
        file.write(b"new, but not all of it")
        raise error

    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["entry"]


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600, 0o755], ids=oct)
def test_the_file_gets_the_mode_asked_for(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "file"
    with atomic_write(str(target), mode) as file:
        file.write(b"x")

    assert mode_of(target) == mode


@posix_only
def test_without_a_mode_the_file_stays_private(tmp_path: Path) -> None:
    """adjacent_tmp_file's 0600: the cache sets its own mode, as pip's does."""
    target = tmp_path / "file"
    with atomic_write(str(target)) as file:
        file.write(b"x")

    assert mode_of(target) == 0o600


@posix_only
@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077, 0o002], ids=oct)
def test_default_file_mode_is_what_open_gives(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        expected = default_file_mode()
        with open(tmp_path / "opened", "wb"):
            pass
        assert os.umask(umask) == umask  # reading it left it as it was
    finally:
        os.umask(previous)

    assert expected == mode_of(tmp_path / "opened") == 0o666 & ~umask


def test_a_file_is_flushed_to_disk_before_it_replaces_the_old_one(
    tmp_path: Path, fsynced: list[int]
) -> None:
    """Cache entries must survive a crash: pip's HTTP cache syncs its files too."""
    with atomic_write(str(tmp_path / "entry")) as file:
        file.write(b"x")

    assert len(fsynced) == 1


def test_a_file_in_a_temporary_directory_is_not_flushed_to_disk(
    tmp_path: Path, fsynced: list[int]
) -> None:
    """Stock pip writes its downloads with ``open()``: no sync, same rename."""
    target = tmp_path / "demo-1.0-py3-none-any.whl"
    with atomic_write(str(target), 0o644, durable=False) as file:
        file.write(b"first half, ")
        assert not target.exists()
        file.write(b"second half")

    assert fsynced == []
    assert target.read_bytes() == b"first half, second half"
    assert os.listdir(tmp_path) == [target.name]
    assert mode_of(target) == 0o644 or sys.platform == "win32"


@pytest.mark.parametrize("error", [OSError(28, "No space left"), KeyboardInterrupt()])
def test_an_interrupted_temporary_write_leaves_nothing(
    tmp_path: Path, error: BaseException
) -> None:
    target = tmp_path / "demo-1.0-py3-none-any.whl"

    with pytest.raises(type(error)), atomic_write(str(target), durable=False) as file:
        file.write(b"not all of it")
        raise error

    assert os.listdir(tmp_path) == []

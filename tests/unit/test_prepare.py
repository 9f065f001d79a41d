"""The metadata check after download, the parallel downloads and their progress."""

from __future__ import annotations

import logging
import os
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from pip._internal.exceptions import InstallationError
from pip._internal.metadata import BaseDistribution, get_metadata_distribution
from pip._internal.models.link import Link
from pip._internal.network.session import PipSession
from pip._internal.utils.temp_dir import global_tempdir_manager

from fastdeps.cli.progress_bars import LogLineProgress, make_progress
from fastdeps.network.download import download_files
from fastdeps.operations.metadata import (
    FROM_CACHE,
    FROM_LAZY_WHEEL,
    FROM_PEP_658,
    CacheOutcome,
)
from fastdeps.operations.metadata_check import (
    FieldDifference,
    MetadataMismatch,
    difference_unless_identical,
    metadata_difference,
)
from fastdeps.operations.prepare import FastDepsRequirementPreparer
from fastdeps.utils.filesystem import copy_atomically, link_or_copy_atomically
from tests.lib.server import FileServer, LoggedRequest
from tests.lib.wheels import build_wheel, metadata_text, wheel_filename

FILENAME = wheel_filename("demo", "1.0")


@pytest.fixture(autouse=True)
def _pip_temp_dirs() -> Iterator[None]:
    """pip builds metadata distributions in its globally managed temp dirs."""
    with global_tempdir_manager():
        yield


def distribution(**fields: object) -> BaseDistribution:
    text = metadata_text("demo", str(fields.pop("version", "1.0")), **fields)  # type: ignore[arg-type]
    return get_metadata_distribution(text, FILENAME, "demo")


BASE = {
    "requires_dist": ["leaf>=1", 'speedup; extra == "fast"'],
    "requires_python": ">=3.9",
    "provides_extra": ["fast"],
}


def test_identical_metadata_passes() -> None:
    assert metadata_difference(distribution(**BASE), distribution(**BASE)) is None


class Unreadable:
    """A distribution whose fields must not be read."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"{name} was read")


def test_identical_metadata_bytes_are_not_parsed_again() -> None:
    text = metadata_text("demo", "1.0", **BASE)  # type: ignore[arg-type]
    used, actual = Unreadable(), Unreadable()

    assert difference_unless_identical(used, text, actual, text) is None  # type: ignore[arg-type]


def test_metadata_bytes_that_differ_are_compared_field_by_field() -> None:
    used_text = metadata_text("demo", "1.0", **BASE)  # type: ignore[arg-type]
    other = {**BASE, "requires_python": ">=3.10"}
    actual_text = metadata_text("demo", "1.0", **other)  # type: ignore[arg-type]

    difference = difference_unless_identical(
        distribution(**BASE), used_text, distribution(**other), actual_text
    )

    assert difference == FieldDifference("Requires-Python", ">=3.9", ">=3.10")


def test_requirement_spelling_does_not_matter() -> None:
    spelled = {**BASE, "requires_dist": ["leaf >= 1", "speedup ; extra=='fast'"]}

    assert metadata_difference(distribution(**BASE), distribution(**spelled)) is None


@pytest.mark.parametrize(
    ("field", "change", "shown"),
    [
        ("Version", {"version": "1.1"}, "'1.0' during resolution but is '1.1'"),
        (
            "Requires-Dist",
            {"requires_dist": ["leaf>=2", 'speedup; extra == "fast"']},
            "'leaf>=1' during resolution but is 'leaf>=2'",
        ),
        ("Requires-Python", {"requires_python": ">=3.10"}, "'>=3.9'"),
        ("Provides-Extra", {"provides_extra": ["fast", "slow"]}, "is 'slow'"),
    ],
)
def test_each_compared_field_is_named_in_the_error(
    field: str, change: dict[str, object], shown: str
) -> None:
    difference = metadata_difference(
        distribution(**BASE), distribution(**{**BASE, **change})
    )
    assert difference is not None

    error = MetadataMismatch(
        FILENAME, FROM_LAZY_WHEEL, difference, CacheOutcome.NOT_CACHED
    )

    assert error.field_name == field
    assert isinstance(error, InstallationError)
    assert f"for {FILENAME} does not match the METADATA" in str(error.message)
    assert f"{field} was" in str(error.context)
    assert shown in str(error.context)
    assert f"read from {FROM_LAZY_WHEEL}" in str(error.context)


@pytest.mark.parametrize(
    ("outcome", "note", "hint"),
    [
        (
            CacheOutcome.REPLACED,
            "now holds the METADATA of the downloaded file",
            "Run the same command again: it will resolve with the file's own",
        ),
        (
            CacheOutcome.REMOVED,
            "The entry for this file in pip's metadata cache has been removed.",
            "Run the same command again to read the metadata afresh.",
        ),
        (
            CacheOutcome.NOT_CACHED,
            "Nothing about this file was kept",
            "run the command without --use-feature=fast-deps",
        ),
    ],
)
def test_the_error_says_what_was_done_to_the_cache_and_what_to_run(
    outcome: CacheOutcome, note: str, hint: str
) -> None:
    difference = FieldDifference("Requires-Dist", "leaf", "")

    error = MetadataMismatch(FILENAME, FROM_CACHE, difference, outcome)

    assert error.reference == "fast-deps-metadata-mismatch"
    assert note in str(error.note_stmt)
    assert hint in str(error.hint_stmt)
    assert f"read from {FROM_CACHE}; an earlier run stored it" in str(error.context)


def test_values_are_not_read_as_rich_markup() -> None:
    difference = FieldDifference("Requires-Dist", "app[fast]", "")

    error = MetadataMismatch(
        "app[x]-1.0.whl", FROM_PEP_658, difference, CacheOutcome.REMOVED
    )

    assert "app\\[x]-1.0.whl" in str(error.message)
    assert "'app\\[fast]'" in str(error.context)


def _no_fallback(link: Link, location: str) -> tuple[str, str]:
    raise AssertionError(f"unexpected fallback for {link}")


def test_downloads_land_complete_and_alone(
    file_server: FileServer, pip_session: PipSession, tmp_path: Path
) -> None:
    wheels = {
        wheel_filename(f"p{n}", "1.0"): build_wheel(
            f"p{n}", "1.0", payload_size=n * 999
        )
        for n in range(5)
    }
    links = [
        Link(file_server.add_file(f"/files/{name}", data))
        for name, data in wheels.items()
    ]

    files = download_files(
        pip_session,
        links,
        str(tmp_path),
        jobs=3,
        progress=LogLineProgress(len(links)),
        fallback=_no_fallback,
    )

    assert {
        Path(path).name: Path(path).read_bytes() for path, _ in files.values()
    } == wheels
    assert sorted(os.listdir(tmp_path)) == sorted(wheels)
    assert len(file_server.log) == 5


def test_downloads_into_pips_temporary_directory_are_not_flushed_to_disk(
    file_server: FileServer, pip_session: PipSession, tmp_path: Path, fsynced: list[int]
) -> None:
    """As stock pip's are not; the rename still hides a partial file."""
    links = [
        Link(file_server.add_file(f"/files/{wheel_filename(name, '1.0')}", data))
        for name, data in (("one", build_wheel("one")), ("two", build_wheel("two")))
    ]

    download_files(
        pip_session,
        links,
        str(tmp_path),
        jobs=2,
        progress=LogLineProgress(len(links)),
        fallback=_no_fallback,
    )

    assert sorted(os.listdir(tmp_path)) == sorted(link.filename for link in links)
    assert fsynced == []


def test_a_failed_download_goes_to_pips_downloader(
    file_server: FileServer, pip_session: PipSession, tmp_path: Path
) -> None:
    good = Link(file_server.add_file(f"/files/{FILENAME}", build_wheel()))
    missing = Link(file_server.url("/files/missing-1.0-py3-none-any.whl"))
    handed_over: list[Link] = []

    def fallback(link: Link, location: str) -> tuple[str, str]:
        handed_over.append(link)
        path = os.path.join(location, "from-pip.whl")
        Path(path).write_bytes(b"pip's")
        return path, "application/octet-stream"

    ready: list[tuple[Link, str]] = []

    files = download_files(
        pip_session,
        [good, missing],
        str(tmp_path),
        jobs=8,
        progress=LogLineProgress(2),
        fallback=fallback,
        ready=lambda link, path: ready.append((link, path)),
    )

    assert handed_over == [missing]
    # A file is handed on once it is there, whoever downloaded it.
    assert sorted(ready) == sorted(
        [(good, str(tmp_path / FILENAME)), (missing, str(tmp_path / "from-pip.whl"))]
    )
    assert files[missing] == (
        str(tmp_path / "from-pip.whl"),
        "application/octet-stream",
    )
    assert sorted(os.listdir(tmp_path)) == [FILENAME, "from-pip.whl"]


def test_copy_is_atomic(tmp_path: Path) -> None:
    source = tmp_path / "source.whl"
    source.write_bytes(b"x" * 3_000_000)
    destination = tmp_path / "out" / "copy.whl"
    destination.parent.mkdir()

    copy_atomically(str(source), str(destination))
    with pytest.raises(FileNotFoundError):
        copy_atomically(str(tmp_path / "absent.whl"), str(destination.parent / "b.whl"))

    assert destination.read_bytes() == source.read_bytes()
    assert os.listdir(destination.parent) == ["copy.whl"]


@pytest.mark.parametrize("bar", ["on", "off", "raw"])
def test_without_a_terminal_progress_is_log_lines(bar: str) -> None:
    # pytest captures stdout, so this process has no terminal.
    assert isinstance(make_progress(bar, 3), LogLineProgress)


posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


@posix_only
@pytest.mark.parametrize("umask", [0o022, 0o027], ids=oct)
def test_downloads_get_the_mode_of_pips_open(
    file_server: FileServer, pip_session: PipSession, tmp_path: Path, umask: int
) -> None:
    """Stock pip writes a download with open(path, "wb"): 0666 less the umask."""
    link = Link(file_server.add_file(f"/files/{FILENAME}", build_wheel()))
    previous = os.umask(umask)
    try:
        files = download_files(
            pip_session,
            [link],
            str(tmp_path),
            jobs=8,
            progress=LogLineProgress(1),
            fallback=_no_fallback,
        )
    finally:
        os.umask(previous)

    path, _ = files[link]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600, 0o755], ids=oct)
def test_copy_keeps_the_sources_mode_as_shutil_copy_does(
    tmp_path: Path, mode: int
) -> None:
    source = tmp_path / "source.whl"
    source.write_bytes(b"wheel")
    source.chmod(mode)
    destination = tmp_path / "copy.whl"

    copy_atomically(str(source), str(destination))

    assert stat.S_IMODE(destination.stat().st_mode) == mode


def test_a_failed_download_is_logged_without_the_password_or_query(
    file_server: FileServer,
    pip_session: PipSession,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # pip's raise_for_status names the URL it was given, query included.
    caplog.set_level(logging.DEBUG, logger="fastdeps")
    url = file_server.url("/files/missing-1.0-py3-none-any.whl")
    secret = "Canary7f3aS3cr3t"
    missing = Link(
        url.replace("http://", f"http://alice:{secret}@") + f"?X-Amz-Signature={secret}"
    )

    def fallback(link: Link, location: str) -> tuple[str, str]:
        path = os.path.join(location, "from-pip.whl")
        Path(path).write_bytes(b"pip's")
        return path, "application/octet-stream"

    download_files(
        pip_session,
        [missing],
        str(tmp_path),
        jobs=8,
        progress=LogLineProgress(1),
        fallback=fallback,
    )

    shown = url.replace("http://", "http://alice:****@")
    (line,) = [m for m in caplog.messages if m.startswith("Parallel download of ")]
    assert line == (
        f"Parallel download of {shown} failed (NetworkConnectionError (HTTP 404)); "
        "retrying with pip's downloader"
    )
    assert secret not in caplog.text


def test_a_downloaded_file_is_linked_with_its_mode_and_nothing_else_left(
    tmp_path: Path,
) -> None:
    source = tmp_path / "pip-download" / "demo.whl"
    source.parent.mkdir()
    source.write_bytes(b"wheel")
    source.chmod(0o640)
    destination = tmp_path / "dest" / "demo.whl"
    destination.parent.mkdir()

    link_or_copy_atomically(str(source), str(destination))

    assert destination.stat().st_ino == source.stat().st_ino
    assert stat.S_IMODE(destination.stat().st_mode) == 0o640
    assert os.listdir(destination.parent) == ["demo.whl"]


def test_where_no_link_can_be_made_the_file_is_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: str, destination: str) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    source = tmp_path / "demo.whl"
    source.write_bytes(b"wheel")
    destination = tmp_path / "dest" / "demo.whl"
    destination.parent.mkdir()

    link_or_copy_atomically(str(source), str(destination))

    assert destination.read_bytes() == b"wheel"
    assert destination.stat().st_ino != source.stat().st_ino
    assert os.listdir(destination.parent) == ["demo.whl"]


def test_each_file_is_handed_on_complete_while_the_others_download(
    file_server: FileServer, pip_session: PipSession, tmp_path: Path
) -> None:
    """The server holds the second file until the first has been handed
    on: so the first is handed on as soon as it is there, not at the end."""
    first = Link(file_server.add_file(f"/files/{FILENAME}", build_wheel()))
    later_data = build_wheel("later")
    later_name = wheel_filename("later", "1.0")
    later = Link(file_server.add_file(f"/files/{later_name}", later_data))
    moved = tmp_path / "arrived-whole.whl"
    moved.write_bytes(b"whole")
    whole = Link(file_server.url("/files/whole-1.0-py3-none-any.whl"))
    first_handed_on = threading.Event()
    handed_on: list[tuple[str, bytes]] = []

    held_until_first: list[bool] = []

    def hold_later(entry: LoggedRequest) -> None:
        if entry.path == f"/files/{later_name}":
            held_until_first.append(first_handed_on.wait(timeout=10))

    def ready(link: Link, path: str) -> None:
        handed_on.append((link.filename, Path(path).read_bytes()))
        if link == first:
            first_handed_on.set()

    file_server.behave(on_request=hold_later)
    (tmp_path / "d").mkdir()
    download_files(
        pip_session,
        [first, later, whole],
        str(tmp_path / "d"),
        jobs=2,
        progress=LogLineProgress(2),
        fallback=_no_fallback,
        received={whole: str(moved)},
        ready=ready,
    )

    assert held_until_first == [True]
    assert handed_on == [
        ("whole-1.0-py3-none-any.whl", b"whole"),
        (FILENAME, build_wheel()),
        (later_name, later_data),
    ]


def test_a_wheel_arrived_is_handed_on_with_its_requirement() -> None:
    """What ``download_files`` hands on reaches ``wheel_arrived``, for
    wheels only (an sdist is built before pip installs anything)."""
    wheel, sdist = (
        Link("https://x.invalid/a-1.0-py3-none-any.whl"),
        Link("https://x.invalid/b-1.0.tar.gz"),
    )
    reqs = [
        SimpleNamespace(link=wheel, is_wheel=True),
        SimpleNamespace(link=sdist, is_wheel=False),
    ]
    arrived: list[tuple[object, str]] = []
    preparer = SimpleNamespace(
        wheel_arrived=lambda req, path: arrived.append((req, path))
    )

    ready = FastDepsRequirementPreparer._file_ready_for(preparer, reqs)  # type: ignore[arg-type]
    ready(wheel, "/tmp/a.whl")
    ready(sdist, "/tmp/b.tar.gz")

    assert arrived == [(reqs[0], "/tmp/a.whl")]

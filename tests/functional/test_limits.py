"""Hostile files cannot make pip with fast-deps grow: the limits, through pip.

Each file is a candidate that stock pip never opens: ``top 2.0`` is the
likely candidate, so its dependencies are read ahead, among them
``hostile``; the resolver rejects ``top 2.0`` on ``dep>=2`` and never asks
for ``hostile``. So stock pip's own memory says nothing about the file, and
what is measured is the plugin's speculative read, which must stay bounded
and leave nothing over the limit in the metadata cache. (Stock pip, asked
for such a file, itself reads a 150 MiB METADATA or central directory into
memory: a file pip chooses is pip's own business.)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.functional.conftest import (
    METADATA_CACHE_SUBDIR,
    Venv,
    run_pip,
    run_pip_measured,
)
from tests.lib.server import FileServer, LoggedRequest
from tests.lib.wheels import (
    build_wheel,
    claims_large_directory,
    many_entries_archive,
    wheel_filename,
    zip_bomb_wheel,
)

FAST_DEPS = "--use-feature=fast-deps"
MiB = 1024 * 1024

#: fastdeps.network.limits.METADATA_SIZE_LIMIT, written out: with a patched
#: pip (nox -s upstream) there is no fastdeps to import it from.
METADATA_SIZE_LIMIT = 4 * MiB

#: The bound on the whole pip process: about 60 MB for pip itself, 16
#: prefetch threads and the read of one file at the limits.
PEAK_RSS_BOUND = 150 * 1000 * 1000

HOSTILE = wheel_filename("hostile", "1.0")
EXPECTED = {("top", "1.0"), ("dep", "1.0")}


def huge_directory() -> bytes:
    return claims_large_directory(300 * MiB)


def many_entries() -> bytes:
    return many_entries_archive(1_500_000)  # 70 MB of directory


def zip_bomb() -> bytes:
    return zip_bomb_wheel("hostile", "1.0", 150 * MiB)


HOSTILE_FILES: dict[str, tuple[Callable[[], bytes], bool]] = {
    "directory-size": (huge_directory, False),
    "entries": (many_entries, False),
    "zip-bomb": (zip_bomb, False),
    "pep658-file": (zip_bomb, True),
}


def publish(server: FileServer, hostile: bytes, pep_658: bool) -> None:
    for name, version, requires in (
        ("top", "1.0", []),
        ("top", "2.0", ["dep>=2", "hostile"]),
        ("dep", "1.0", []),
        ("dep", "2.0", []),
    ):
        data = build_wheel(name, version, requires_dist=requires)
        server.add_project(name, {wheel_filename(name, version): data})
    server.add_project("hostile", {HOSTILE: hostile}, metadata=pep_658)


def top_1_held_until_hostile_is_read() -> Callable[[LoggedRequest], None]:
    """Hold every request for top 1.0 until the hostile file has been asked for.

    The resolver rejects top 2.0 (it needs dep>=2, against dep<2) and is done
    with top 1.0, which the hold makes it wait for: the read ahead of
    hostile, a dependency of top 2.0 only, then always happens, as it does
    whenever the resolver is slower than the prefetcher. (The timeout only
    keeps a broken run from hanging; the test then fails on its assertion.)
    """
    hostile_asked = threading.Event()

    def on_request(entry: LoggedRequest) -> None:
        if "hostile" in entry.path:
            hostile_asked.set()
        elif "top-1.0" in entry.path:
            hostile_asked.wait(timeout=30)

    return on_request


def resolution(report: Path) -> set[tuple[str, str]]:
    items = json.loads(report.read_text(encoding="utf-8"))["install"]
    return {(i["metadata"]["name"], i["metadata"]["version"]) for i in items}


@pytest.mark.parametrize("case", list(HOSTILE_FILES))
def test_a_hostile_candidate_leaves_memory_and_cache_bounded(
    stock_venv: Venv,
    plugin_venv: Venv,
    file_server: FileServer,
    tmp_path: Path,
    case: str,
) -> None:
    build, pep_658 = HOSTILE_FILES[case]
    publish(file_server, build(), pep_658)
    args = ["install", "--dry-run", "--ignore-installed", "--index-url"]
    args += [file_server.index_url, "top", "dep<2"]
    stock_report = tmp_path / "stock.json"
    stock = run_pip(
        stock_venv,
        [*args, "--no-cache-dir", "--report", str(stock_report)],
        cwd=tmp_path,
    )
    assert stock.returncode == 0, stock.stderr
    assert not [e for e in file_server.log if "hostile" in e.path]
    file_server.clear_log()
    file_server.behave(on_request=top_1_held_until_hostile_is_read())
    cache = tmp_path / "cache"
    report = tmp_path / "plugin.json"

    result, peak_rss = run_pip_measured(
        plugin_venv,
        [*args, FAST_DEPS, "--cache-dir", str(cache), "--report", str(report)],
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert resolution(report) == resolution(stock_report) == EXPECTED
    hostile_path = f"/files/{HOSTILE}.metadata" if pep_658 else f"/files/{HOSTILE}"
    assert file_server.requests_for(hostile_path)  # it was read ahead
    assert peak_rss < PEAK_RSS_BOUND, f"peak RSS {peak_rss:,} bytes"
    entries = [p for p in (cache / METADATA_CACHE_SUBDIR).rglob("*") if p.is_file()]
    assert entries  # top's and dep's metadata
    assert max(p.stat().st_size for p in entries) < METADATA_SIZE_LIMIT


def test_a_large_wheel_from_a_host_without_ranges_streams_to_disk(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    """A host without ranges answers the first range with the whole file,
    which is kept for the download phase: a 150 MiB wheel goes to disk as it
    arrives, as stock pip's download does, never into memory, and is fetched
    once."""
    filename = wheel_filename("big", "1.0")
    big = build_wheel("big", "1.0", payload_size=150 * MiB)
    file_server.add_project("big", {filename: big})
    path = f"/files/{filename}"
    file_server.behave(ignore_ranges=True)
    for venv, extra in ((stock_venv, []), (plugin_venv, [FAST_DEPS])):
        file_server.clear_log()
        target = tmp_path / venv.root.name
        result, peak_rss = run_pip_measured(
            venv,
            ["download", "-d", str(target), "--no-cache-dir", *extra]
            + ["--index-url", file_server.index_url, "big"],
            cwd=tmp_path,
        )

        assert result.returncode == 0, result.stderr
        assert peak_rss < PEAK_RSS_BOUND, f"peak RSS {peak_rss:,} bytes"
        assert (target / filename).read_bytes() == big
        assert len(file_server.requests_for(path)) == 1

"""Prefetch and metadata cache, through the real pip CLI.

pip runs as users run it, ``python -m pip ... --use-feature=fast-deps`` in
the venv that has the plugin, and every verdict comes from the server's
request log, pip's report and the cache directory.
"""

from __future__ import annotations

import io
import json
import re
import stat
import subprocess
import sys
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.functional.conftest import (
    METADATA_CACHE_SUBDIR,
    PIP_VERSION,
    PREFETCH_SUMMARY,
    RESOLVER_DOWNLOADS_FILES,
    Venv,
    is_whole_wheel_get,
    run_pip,
    whole_wheel_gets,
)
from tests.functional.projects import GRAPH_RESOLUTION, publish_graph
from tests.lib.server import Behaviour, FileServer, LoggedRequest
from tests.lib.wheels import build_wheel, metadata_text, wheel_filename

FAST_DEPS = "--use-feature=fast-deps"
SUMMARY = re.compile(
    re.escape(PREFETCH_SUMMARY) + r" (\d+) project pages \((\d+) unused\), "
    r"(\d+) metadata files \((\d+) unused\), (\d+) failed"
)


def resolve(
    venv: Venv,
    server: FileServer,
    tmp_path: Path,
    cache: list[str],
    *requirements: str,
    name: str = "report.json",
) -> tuple[subprocess.CompletedProcess[str], set[tuple[str, str]]]:
    report = tmp_path / name
    args = ["install", FAST_DEPS, "--dry-run", "--ignore-installed", "-v"]
    args += ["--report", str(report), "--index-url", server.index_url, *cache]
    result = run_pip(venv, [*args, *requirements], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    items = json.loads(report.read_text(encoding="utf-8"))["install"]
    resolution = {(i["metadata"]["name"], i["metadata"]["version"]) for i in items}
    return result, resolution


def file_requests(server: FileServer) -> list[str]:
    """Paths of the requests that read metadata: ranges of wheels, PEP 658
    files, HEADs. Not the whole-file downloads of the resolved wheels that
    pips before 25.3 make at the end of a dry run (see check_downloads)."""
    return [
        entry.path
        for entry in server.log
        if entry.path.startswith("/files/") and not is_whole_wheel_get(entry)
    ]


def check_downloads(server: FileServer, resolution: set[tuple[str, str]]) -> None:
    """A dry run downloads the resolved files only where stock pip does."""
    downloaded = sorted(entry.path for entry in whole_wheel_gets(server))
    expected = sorted(f"/files/{wheel_filename(*item)}" for item in resolution)
    assert downloaded == (expected if RESOLVER_DOWNLOADS_FILES else [])


def entries(cache_dir: Path) -> list[Path]:
    root = cache_dir / METADATA_CACHE_SUBDIR
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_each_page_and_each_metadata_is_fetched_once(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    wheels = publish_graph(file_server)

    result, resolution = resolve(
        plugin_venv, file_server, tmp_path, ["--no-cache-dir"], "app[fast]"
    )

    assert resolution == GRAPH_RESOLUTION
    check_downloads(file_server, resolution)
    pages = Counter(e.path for e in file_server.log if e.path.startswith("/simple/"))
    assert pages and set(pages.values()) == {1}, pages
    reads = Counter(file_requests(file_server))
    assert set(reads.values()) == {1}, reads  # one ranged GET per wheel read
    assert set(reads) <= {f"/files/{filename}" for filename in wheels}
    assert all(
        entry.range is not None
        for entry in file_server.log
        if "/files/" in entry.path and not is_whole_wheel_get(entry)
    )
    summary = SUMMARY.search(result.stdout)
    assert summary is not None, result.stdout
    assert int(summary.group(1)) >= 1  # pages read ahead of the resolver
    assert int(summary.group(3)) >= 1  # metadata read ahead of the resolver
    assert summary.group(5) == "0"  # nothing failed


def test_a_useless_speculative_failure_stays_silent(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    # top 2.0 is the likely candidate, so its dependencies are read ahead,
    # among them "broken", whose page is not HTML (pip warns "Skipping page"
    # when it reads it). The resolver rejects top 2.0 on its first
    # dependency and never asks for "broken": neither does stock pip.
    for name, version, requires in (
        ("top", "1.0", []),
        ("top", "2.0", ["dep>=2", "broken"]),
        ("dep", "1.0", []),
        ("dep", "2.0", []),
    ):
        data = build_wheel(name, version, requires_dist=requires)
        file_server.add_project(name, {wheel_filename(name, version): data})
    file_server.add_file("/simple/broken/", b"not a page")
    expected = {("top", "1.0"), ("dep", "1.0")}

    stock = run_pip(
        stock_venv,
        ["install", "--dry-run", "--ignore-installed", "--no-cache-dir"]
        + ["--index-url", file_server.index_url, "top", "dep<2"],
        cwd=tmp_path,
    )
    assert stock.returncode == 0, stock.stderr
    assert file_server.requests_for("/simple/broken/") == []
    file_server.clear_log()

    log_file = tmp_path / "pip.log"
    result, resolution = resolve(
        plugin_venv,
        file_server,
        tmp_path,
        ["--no-cache-dir", "--log", str(log_file)],
        "top",
        "dep<2",
    )

    assert resolution == expected
    assert "Would install dep-1.0 top-1.0" in stock.stdout
    assert len(file_server.requests_for("/simple/broken/")) == 1  # speculation
    assert "Skipping page" not in result.stdout + result.stderr
    assert "broken" not in result.stderr
    # pip's --log file keeps it, for whoever needs to know why.
    skipped = [
        line for line in log_file.read_text().splitlines() if "Skipping page" in line
    ]
    assert len(skipped) == 1 and "/simple/broken/" in skipped[0]
    summary = SUMMARY.search(result.stdout)
    assert summary is not None and int(summary.group(2)) >= 1  # counted unused


@pytest.mark.parametrize("metadata", [False, True], ids=["lazy-wheel", "pep658"])
def test_warm_cache_resolution_makes_no_wheel_requests(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path, metadata: bool
) -> None:
    publish_graph(file_server, metadata=metadata)
    cache = tmp_path / "cache"
    _, cold = resolve(
        plugin_venv, file_server, tmp_path, ["--cache-dir", str(cache)], "app[fast]"
    )
    assert file_requests(file_server)
    stored = entries(cache)
    assert len(stored) == len(set(file_requests(file_server)))
    file_server.clear_log()

    result, warm = resolve(
        plugin_venv, file_server, tmp_path, ["--cache-dir", str(cache)], "app[fast]"
    )

    assert warm == cold == GRAPH_RESOLUTION
    assert file_requests(file_server) == []
    check_downloads(file_server, warm)
    assert "Using cached metadata of app-1.0-py3-none-any.whl" in result.stdout
    assert entries(cache) == stored


def test_no_cache_dir_disables_the_metadata_cache(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    publish_graph(file_server)
    resolve(plugin_venv, file_server, tmp_path, ["--no-cache-dir"], "app[fast]")
    first = sorted(file_requests(file_server))
    file_server.clear_log()

    resolve(plugin_venv, file_server, tmp_path, ["--no-cache-dir"], "app[fast]")

    assert first and sorted(file_requests(file_server)) == first


def test_pip_cache_purge_clears_the_metadata_cache(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    publish_graph(file_server)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    resolve(plugin_venv, file_server, tmp_path, cache, "app[fast]")
    stored = entries(tmp_path / "cache")
    http_files = [
        path
        for path in (tmp_path / "cache").rglob("*")
        if path.is_file() and path not in stored
    ]
    assert stored

    purge = run_pip(plugin_venv, ["cache", "purge", *cache], cwd=tmp_path)

    assert purge.returncode == 0, purge.stderr
    # "Files removed: N", and since pip 24.3 their size after it.
    removed = re.search(r"^Files removed: (\d+)\b", purge.stdout, re.MULTILINE)
    assert removed is not None, purge.stdout
    assert int(removed.group(1)) == len(stored) + len(http_files)
    assert entries(tmp_path / "cache") == []
    file_server.clear_log()
    resolve(plugin_venv, file_server, tmp_path, cache, "app[fast]")
    assert len(set(file_requests(file_server))) == len(stored)


def test_damaged_entries_are_ignored_and_replaced(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    publish_graph(file_server)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    resolve(plugin_venv, file_server, tmp_path, cache, "app[fast]")
    stored = entries(tmp_path / "cache")
    for path in stored:
        path.write_bytes(path.read_bytes()[:-7])  # a torn write
    file_server.clear_log()

    _, resolution = resolve(plugin_venv, file_server, tmp_path, cache, "app[fast]")

    assert resolution == GRAPH_RESOLUTION
    assert len(set(file_requests(file_server))) == len(stored)
    file_server.clear_log()
    resolve(plugin_venv, file_server, tmp_path, cache, "app[fast]")
    assert file_requests(file_server) == []


def test_concurrent_resolutions_share_one_cache(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    publish_graph(file_server)
    cache = ["--cache-dir", str(tmp_path / "cache")]

    def one(number: int) -> set[tuple[str, str]]:
        workdir = tmp_path / f"run{number}"
        workdir.mkdir()
        return resolve(plugin_venv, file_server, workdir, cache, "app[fast]")[1]

    with ThreadPoolExecutor(4) as pool:
        resolutions = list(pool.map(one, range(4)))

    assert resolutions == [GRAPH_RESOLUTION] * 4
    pages = Counter(e.path for e in file_server.log if e.path.startswith("/simple/"))
    assert set(pages.values()) == {4}  # once per process
    file_server.clear_log()
    resolve(plugin_venv, file_server, tmp_path, cache, "app[fast]")
    assert file_requests(file_server) == []


def test_a_wheel_without_a_hash_is_found_again_by_its_validators(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    path = f"/direct/{wheel_filename('solo', '1.0')}"
    url = file_server.add_file(path, build_wheel("solo", "1.0"))
    cache = ["--cache-dir", str(tmp_path / "cache")]

    def requests_for_the_wheel() -> list[tuple[str, bool]]:
        sent = [
            (entry.method, entry.range is not None)
            for entry in file_server.requests_for(path)
            if not is_whole_wheel_get(entry)  # pip's own download, before 25.3
        ]
        file_server.clear_log()
        return sent

    _, cold = resolve(plugin_venv, file_server, tmp_path, cache, url)
    assert requests_for_the_wheel() == [("GET", True)]  # no HEAD the first time

    _, warm = resolve(plugin_venv, file_server, tmp_path, cache, url)
    assert requests_for_the_wheel() == [("HEAD", False)]  # same ETag: cached

    file_server.add_file(path, build_wheel("solo", "1.0", payload_size=4096))
    _, replaced = resolve(plugin_venv, file_server, tmp_path, cache, url)
    assert requests_for_the_wheel() == [("HEAD", False), ("GET", True)]

    assert cold == warm == replaced == {("solo", "1.0")}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_cache_entries_get_the_modes_of_pips_http_cache_files(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    """Since pip 25.0 a cache shared by a group works: each file gets the
    read and write bits of its cache directory. Before, files are 0600."""
    publish_graph(file_server)
    cache = tmp_path / "cache"
    result = run_pip(
        plugin_venv,
        ["download", FAST_DEPS, "-d", str(tmp_path / "downloads")]
        + ["--index-url", file_server.index_url, "--cache-dir", str(cache)]
        + ["app[fast]"],
        cwd=tmp_path,
        umask=0o002,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    # pip's own HTTP cache, written by the same pip under the same umask.
    http_cache = cache / "http-v2"
    written_by_pip = subprocess.run(
        [str(plugin_venv.python), "-c", WRITE_HTTP_CACHE_FILE, str(http_cache)],
        umask=0o002,
        check=False,
        capture_output=True,
        text=True,
    )
    assert written_by_pip.returncode == 0, written_by_pip.stderr

    def modes(paths: list[Path]) -> set[int]:
        return {stat.S_IMODE(path.stat().st_mode) for path in paths}

    http_files = [path for path in http_cache.rglob("*") if path.is_file()]
    assert entries(cache) and http_files
    expected = 0o664 if PIP_VERSION >= (25, 0) else 0o600
    assert modes(entries(cache)) == modes(http_files) == {expected}


WRITE_HTTP_CACHE_FILE = """\
import sys
from pip._internal.network.cache import SafeFileCache
SafeFileCache(sys.argv[1]).set("key", b"value")
"""


# -- the cache heals itself --------------------------------------------------------


def files_in(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def wheel_metadata(wheel: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return archive.read(name)


def cached_metadata(cache_dir: Path) -> list[bytes]:
    """The METADATA in each entry, without the entry's header."""
    return [path.read_bytes().partition(b"\n\n")[2] for path in entries(cache_dir)]


def download_with_cache(
    venv: Venv, server: FileServer, workdir: Path, cache_dir: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    target = workdir / "downloads"
    target.mkdir(parents=True)
    result = run_pip(
        venv,
        ["download", "-d", str(target), "--index-url", server.index_url]
        + ["--cache-dir", str(cache_dir), *args],
        cwd=workdir,
    )
    return result, target


def publish_shifty(server: FileServer) -> tuple[bytes, bytes]:
    """A project on the index, with its sha256; and a wheel that differs
    from it in Requires-Dist (a project the index has too), for ranges to
    lie with."""
    honest = build_wheel("shifty", "1.0")
    server.add_project("shifty", {wheel_filename("shifty", "1.0"): honest})
    server.add_project("leaf", {wheel_filename("leaf", "1.0"): build_wheel("leaf")})
    return honest, build_wheel("shifty", "1.0", requires_dist=["leaf"])


@pytest.mark.parametrize("lies", ["once", "always"])
def test_metadata_cached_from_lying_ranges_heals_by_the_next_run(
    stock_venv: Venv,
    plugin_venv: Venv,
    file_server: FileServer,
    tmp_path: Path,
    lies: str,
) -> None:
    """The first run fails; the cache then holds the file's own METADATA,
    verified against the index's sha256, and the next run succeeds."""
    honest, liar = publish_shifty(file_server)
    filename = wheel_filename("shifty", "1.0")
    stock, stock_dir = download_with_cache(
        stock_venv, file_server, tmp_path / "stock", tmp_path / "stock-cache", "shifty"
    )

    def honest_after_the_first_range(entry: LoggedRequest) -> None:
        if entry.range is not None:
            file_server.behaviour = Behaviour()

    file_server.behave(
        ranged_variants={f"/files/{filename}": liar},
        on_request=honest_after_the_first_range if lies == "once" else None,
    )
    cache = tmp_path / "cache"
    first, first_dir = download_with_cache(
        plugin_venv, file_server, tmp_path / "first", cache, FAST_DEPS, "shifty"
    )

    assert first.returncode == 1, first.stdout + first.stderr
    assert "fast-deps-metadata-mismatch" in first.stderr
    assert f"The metadata pip resolved with for {filename}" in first.stderr
    assert "does not match the METADATA inside the downloaded file" in first.stderr
    assert "Requires-Dist was 'leaf' during resolution but is '' in the file" in (
        first.stderr
    )
    assert "now holds the METADATA of the downloaded file" in first.stderr
    assert "Run the same command again" in first.stderr
    assert list(first_dir.iterdir()) == []
    assert wheel_metadata(honest) in cached_metadata(cache)
    assert wheel_metadata(liar) not in cached_metadata(cache)
    file_server.clear_log()

    second, second_dir = download_with_cache(
        plugin_venv, file_server, tmp_path / "second", cache, FAST_DEPS, "shifty"
    )

    assert second.returncode == 0, second.stdout + second.stderr
    assert stock.returncode == 0, stock.stdout + stock.stderr
    assert files_in(second_dir) == files_in(stock_dir) == {filename: honest}
    assert [e.range for e in file_server.requests_for(f"/files/{filename}")] == [None]


def test_a_lazily_read_entry_is_replaced_by_the_verified_files_metadata(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    """Ranges that differ from the file only where resolution does not look
    (the Summary here) pass the check; the cache then keeps the file's."""
    honest = build_wheel("shifty", "1.0")
    file_server.add_project("shifty", {wheel_filename("shifty", "1.0"): honest})
    file_server.behave(
        ranged_variants={
            f"/files/{wheel_filename('shifty', '1.0')}": build_wheel(
                "shifty",
                "1.0",
                metadata=metadata_text("shifty", "1.0", summary="Read from ranges"),
            )
        }
    )
    cache = tmp_path / "cache"

    result, target = download_with_cache(
        plugin_venv, file_server, tmp_path, cache, FAST_DEPS, "shifty"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert any(entry.range for entry in file_server.log)
    assert files_in(target) == {wheel_filename("shifty", "1.0"): honest}
    assert cached_metadata(cache) == [wheel_metadata(honest)]


@pytest.mark.parametrize("source", ["lazy-wheel", "pep658", "cache"])
def test_the_report_shows_the_wheels_metadata_byte_for_byte(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path, source: str
) -> None:
    """A description with CRLF line ends reaches ``--report`` unchanged, as it
    does when pip reads the wheel itself, whatever the metadata came from."""
    description = "First line.\r\nSecond line.\r\n"
    metadata = metadata_text("crlf", "1.0", description=description)
    wheel = build_wheel("crlf", "1.0", metadata=metadata)
    file_server.add_project(
        "crlf", {wheel_filename("crlf", "1.0"): wheel}, metadata=source == "pep658"
    )
    cache = ["--cache-dir", str(tmp_path / "cache")]
    if source == "cache":
        resolve(plugin_venv, file_server, tmp_path, cache, "crlf", name="warm.json")
        file_server.clear_log()

    resolve(plugin_venv, file_server, tmp_path, cache, "crlf")

    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["install"][0]["metadata"]["description"] == description
    if source == "cache":
        assert file_requests(file_server) == []

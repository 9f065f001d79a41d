"""The benchmark harness's pure parts: log parsing, index pages, the proxy."""

from __future__ import annotations

import asyncio
import hashlib
import math
import zipfile
from pathlib import Path

import pytest
from tools import nginx
from tools.bench import corpus, index, netshape, report, run
from tools.nginx import LogEntry

METADATA = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Python: >=3.9\n"


def make_wheel(directory: Path, metadata: bytes = METADATA) -> Path:
    wheel = directory / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("demo/__init__.py", "")
        archive.writestr("demo-1.0.dist-info/METADATA", metadata)
        archive.writestr("demo-1.0.dist-info/RECORD", "")
    return wheel


def test_log_entry_parses_the_tab_separated_format() -> None:
    line = "GET\t/files/a.whl\t206\tbytes=-10000\t10000\t7\t0.051\t1764680400.125"

    assert LogEntry.parse(line) == LogEntry(
        method="GET",
        uri="/files/a.whl",
        status=206,
        range="bytes=-10000",
        body_bytes=10000,
        connection=7,
        request_time=0.051,
        sent_at=1764680400.125,
    )


def test_log_entry_without_range_header_has_none() -> None:
    assert LogEntry.parse("HEAD\t/x\t200\t-\t0\t1\t0.000\t1.000").range is None


def test_download_batches_never_name_a_project_twice() -> None:
    pins = [
        corpus.Pin("scikit-learn", "1.9.1"),
        corpus.Pin("numpy", "1.26.4"),
        corpus.Pin("scikit_learn", "1.9.0"),
        corpus.Pin("Scikit.Learn", "1.8.0"),
    ]

    batches = corpus.batches_of_distinct_names(pins)

    assert batches == [[pins[0], pins[1]], [pins[2]], [pins[3]]]


def test_index_variants_differ_only_by_the_metadata_attributes(
    tmp_path: Path,
) -> None:
    wheel = make_wheel(tmp_path)
    root = tmp_path / "index"

    index.build(root, {"demo-set": [wheel]})

    wheel_hash = hashlib.sha256(wheel.read_bytes()).hexdigest()
    metadata_hash = hashlib.sha256(METADATA).hexdigest()
    plain = (root / "demo-set/plain/simple/demo/index.html").read_text()
    pep658 = (root / "demo-set/pep658/simple/demo/index.html").read_text()
    href = f'href="/files/demo-1.0-py3-none-any.whl#sha256={wheel_hash}"'
    assert href in plain and href in pep658
    assert 'data-requires-python="&gt;=3.9"' in plain
    assert "data-core-metadata" not in plain
    assert f'data-core-metadata="sha256={metadata_hash}"' in pep658
    assert f'data-dist-info-metadata="sha256={metadata_hash}"' in pep658
    assert (root / "files/demo-1.0-py3-none-any.whl.metadata").read_bytes() == METADATA
    assert (
        '<a href="demo/">demo</a>'
        in (root / "demo-set/plain/simple/index.html").read_text()
    )
    norange = (root / "demo-set/norange/simple/demo/index.html").read_text()
    assert norange == plain.replace('href="/files/', 'href="/norange-files/')


def test_dependency_levels_follow_requires_dist_but_not_extras(
    tmp_path: Path,
) -> None:
    pages = {
        "a": "Requires-Dist: b\nRequires-Dist: d; extra == 'x'\n",
        "b": "Requires-Dist: c>=1\n",
        "c": "",
        "d": "",
    }
    for name, requires in pages.items():
        metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1\n{requires}"
        (tmp_path / f"{name}-1-py3-none-any.whl.metadata").write_text(metadata)
    resolution = dict.fromkeys(pages, "1")

    assert run.dependency_levels(resolution, tmp_path, {"a"}) == 3
    assert run.dependency_levels(resolution, tmp_path, {"a", "d"}) == 3
    assert run.dependency_levels(resolution, tmp_path, {"c"}) == 1


def test_resolution_mismatch_is_reported_per_contender() -> None:
    usual = {"numpy": "2.4.6", "pandas": "3.1.1"}
    cells = []
    for contender, resolution in (
        ("pip", usual),
        ("uv", usual),
        ("x", {"numpy": "2.4.5"}),
    ):
        cell = run.Cell("quick", "plain", "resolve", contender)
        cell.runs.append(run.RunResult(1.0, 1, 0, 0, 0, 1, 1, resolution))
        cells.append(cell)

    mismatches = run.resolution_mismatches(cells)

    assert mismatches == {
        "quick": ["plain/resolve/x: numpy 2.4.6 -> 2.4.5, pandas 3.1.1 -> -"]
    }


def test_delay_proxy_relays_both_directions_in_order() -> None:
    async def scenario() -> bytes:
        async def echo(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            writer.write(await reader.read())  # everything, until the client's EOF
            await writer.drain()
            writer.close()

        upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
        upstream_port = upstream.sockets[0].getsockname()[1]
        proxy = await netshape.start_proxy_server("127.0.0.1", 0, upstream_port, 0.0)
        proxy_port = proxy.sockets[0].getsockname()[1]
        async with upstream, proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
            for number in range(200):
                writer.write(b"%05d," % number)
            writer.write_eof()
            answer = await reader.read()
            writer.close()
            return answer

    answer = asyncio.run(scenario())

    assert answer == b"".join(b"%05d," % number for number in range(200))


def test_wheel_requests_are_wheels_and_metadata_files_not_pages() -> None:
    assert run.is_wheel_request("/files/six-1.17.0-py2.py3-none-any.whl")
    assert run.is_wheel_request("/files/six-1.17.0-py2.py3-none-any.whl.metadata")
    assert run.is_wheel_request("/files/a-1-py3-none-any.whl?sig=1")
    assert not run.is_wheel_request("/full/plain/simple/six/")


def test_the_prefetch_summary_is_read_from_the_plugins_and_the_patched_pips() -> None:
    plugin = (
        "pip-fastdeps prefetch: 114 project pages (0 unused), "
        "115 metadata files (1 unused), 0 failed\n"
    )
    patched = plugin.replace("pip-fastdeps", "fast-deps").replace("115", "7")

    assert run.prefetch_summary("Collecting x\n" + plugin) == (115, 1)
    assert run.prefetch_summary(patched) == (7, 1)
    assert run.prefetch_summary("no prefetcher here\n") == (None, None)


def test_the_unused_prefetch_column_shows_medians_for_prefetching_contenders() -> None:
    def result(prefetched: int | None, unused: int | None) -> run.RunResult:
        return run.RunResult(1.0, 1, 1, 0, 0, 1, 1, {}, None, prefetched, unused)

    plugin = run.Cell("full", "plain", "resolve", "pip-fastdeps")
    plugin.runs = [result(110, 2), result(112, 4), result(111, 3)]
    stock = run.Cell("full", "plain", "resolve", "pip")
    stock.runs = [result(None, None)]

    assert report.unused_prefetch(plugin) == "3 of 111"
    assert report.unused_prefetch(stock) == ""


def test_nginx_is_installed_with_apt_get_when_root_and_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found: list[str | None] = [None, "/usr/sbin/nginx"]
    commands: list[tuple[str, ...]] = []
    monkeypatch.setattr(nginx, "find_nginx", lambda: found.pop(0))
    monkeypatch.setattr("tools.nginx.os.geteuid", lambda: 0)
    monkeypatch.setattr(
        "tools.nginx.shutil.which", lambda name, **kw: f"/usr/bin/{name}"
    )
    monkeypatch.setattr(
        "tools.nginx.subprocess.run",
        lambda command, **kw: commands.append(tuple(command)),
    )

    assert nginx.ensure_nginx() == "/usr/sbin/nginx"
    assert commands == [
        ("apt-get", "update"),
        ("apt-get", "install", "-y", "nginx-light"),
    ]


def test_without_root_a_missing_nginx_says_what_to_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(nginx, "find_nginx", lambda: None)
    monkeypatch.setattr("tools.nginx.os.geteuid", lambda: 1000)

    with pytest.raises(nginx.NginxError, match="apt-get install -y nginx-light"):
        nginx.ensure_nginx()


def test_time_after_last_byte_is_from_the_last_answer_sent() -> None:
    entries = [
        LogEntry.parse("GET\t/a.whl\t200\t-\t10\t1\t0.010\t100.500"),
        LogEntry.parse("GET\t/b.whl\t200\t-\t10\t2\t0.900\t103.250"),
        LogEntry.parse("GET\t/simple/\t200\t-\t10\t1\t0.001\t101.000"),
    ]

    assert run.seconds_after_last_byte(entries, ended=110.0) == 6.75
    assert math.isnan(run.seconds_after_last_byte([], ended=110.0))


def test_the_timeline_lists_requests_by_when_they_ended(tmp_path: Path) -> None:
    entries = [
        LogEntry.parse("GET\t/b.whl\t206\tbytes=-10\t10\t2\t0.900\t103.250"),
        LogEntry.parse("GET\t/simple/a/\t200\t-\t99\t1\t0.001\t100.500"),
    ]

    run.write_timeline(tmp_path / "t.tsv", entries, began=100.0)

    assert (tmp_path / "t.tsv").read_text().splitlines()[1:] == [
        "0.500\t0.001\t200\t99\t1\t-\t/simple/a/",
        "3.250\t0.900\t206\t10\t2\tbytes=-10\t/b.whl",
    ]


@pytest.mark.parametrize(
    ("task", "verbosity"),
    [("resolve", "-v"), ("download", "-v"), (run.INSTALL, "--quiet")],
)
def test_a_prefetching_pip_installs_as_quietly_as_the_others(
    tmp_path: Path, task: str, verbosity: str
) -> None:
    """At ``-v`` pip logs every file it installs: a cost no contender that
    runs quietly pays, for a summary the install task does not read."""
    job = run.Job("http://127.0.0.1:1/simple/", tmp_path / "r.txt", tmp_path, [])
    job = run.Job(**{**job.__dict__, "target_python": "/env/bin/python"})
    command = run.pip_command(["python", "-m", "fastdeps"], [], prefetches=True)

    argv = command(task, job)

    assert verbosity in argv
    assert {"-v", "--quiet"} - {verbosity} & set(argv) == set()

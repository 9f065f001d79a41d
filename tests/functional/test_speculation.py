"""Speculation never costs more than stock pip, through the real pip CLI.

What the prefetcher fetches ahead of the resolver must never delay, block,
break or change the command: these tests hold requests on the server (never
by sleeping) and read the verdict from the request log, the exit status and
what pip printed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pip._internal.cli import cmdoptions

from tests.functional.conftest import (
    PATCHED_PIP,
    PIP_VERSION,
    Venv,
    _make_venv,
    is_wheel_request,
    isolated_environment,
    run_pip,
)
from tests.functional.projects import publish_flat
from tests.lib.server import FileServer, LoggedRequest
from tests.lib.wheels import build_wheel, wheel_filename

FAST_DEPS = "--use-feature=fast-deps"

#: How long the server holds a request at most: long enough that a test
#: whose process waits for it times out first, short enough to end.
STALL_LIMIT = 60

needs_signals = pytest.mark.skipif(
    sys.platform == "win32", reason="SIGINT cannot be sent on Windows"
)


def publish(server: FileServer, name: str, version: str, **kwargs: object) -> str:
    filename = wheel_filename(name, version)
    server.add_project(name, {filename: build_wheel(name, version, **kwargs)})  # type: ignore[arg-type]
    return f"/files/{filename}"


def dry_run(
    venv: Venv, server: FileServer, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return run_pip(
        venv,
        ["install", "--dry-run", "--ignore-installed", "--no-cache-dir"]
        + ["--index-url", server.index_url, *args],
        cwd=tmp_path,
    )


@contextmanager
def held(
    server: FileServer,
    is_held: Callable[[LoggedRequest], bool],
    gated: Callable[[LoggedRequest], bool] = lambda entry: False,
    **behaviour: object,
) -> Iterator[threading.Event]:
    """Hold the requests ``is_held`` picks until the block ends; the event
    is set when the first of them arrives. The requests ``gated`` picks wait
    for that first one: so that pip cannot finish before a speculative
    request has been made. ``behaviour``: more switches for the server."""
    arrived = threading.Event()
    release = threading.Event()

    def hold(entry: LoggedRequest) -> None:
        if is_held(entry):
            arrived.set()
            release.wait(timeout=STALL_LIMIT)
        elif gated(entry):
            arrived.wait(timeout=STALL_LIMIT)

    server.behave(on_request=hold, **behaviour)
    try:
        yield arrived
    finally:
        release.set()


def finish(process: subprocess.Popen[str]) -> tuple[str, str]:
    """The output of ``process``, which must end before a held request is
    let go; killed if it does not."""
    try:
        return process.communicate(timeout=STALL_LIMIT / 2)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def start_pip(
    venv: Venv, args: list[str], cwd: Path, **popen: object
) -> subprocess.Popen[str]:
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [str(venv.python), "-m", "pip", *args],
        cwd=cwd,
        env=isolated_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def interrupt_once_arrived(
    arrived: threading.Event, process: subprocess.Popen[str]
) -> None:
    """Send pip SIGINT once the held request has come; kill it if it never does."""
    try:
        assert arrived.wait(timeout=120)
        process.send_signal(signal.SIGINT)
    except BaseException:
        process.kill()
        raise


def start_dry_run(
    venv: Venv, server: FileServer, tmp_path: Path, *args: str
) -> subprocess.Popen[str]:
    """``pip install --dry-run`` with fast-deps, started (see :func:`finish`)."""
    return start_pip(
        venv,
        ["install", "--dry-run", "--ignore-installed", "--no-cache-dir", FAST_DEPS]
        + ["--index-url", server.index_url, *args],
        tmp_path,
    )


def publish_top_rejected_for_dep(server: FileServer, *more_of_top_2: str) -> None:
    """top 2.0 is the likely candidate, and needs ``dep>=2`` and
    ``more_of_top_2``; asked for ``top dep<2``, the resolver rejects it on
    dep and takes top 1.0 (stock pip never looks at the rest)."""
    publish(server, "top", "1.0")
    publish(server, "top", "2.0", requires_dist=["dep>=2", *more_of_top_2])
    publish(server, "dep", "1.0")
    publish(server, "dep", "2.0")


def dry_run_as_stock_while_slow_is_held(
    stock_venv: Venv,
    plugin_venv: Venv,
    server: FileServer,
    tmp_path: Path,
    gated: Callable[[LoggedRequest], bool] = lambda entry: False,
) -> threading.Event:
    """``top dep<2``, published by :func:`publish_top_rejected_for_dep`:
    stock pip never asks for slow's page; pip with fast-deps, while the
    server holds that page (and what ``gated`` picks, see :func:`held`),
    finishes with stock pip's answer. The event: whether it was asked for."""
    stock = dry_run(stock_venv, server, tmp_path, "top", "dep<2")
    assert server.requests_for("/simple/slow/") == []
    server.clear_log()

    with held(server, lambda entry: entry.path == "/simple/slow/", gated) as asked:
        process = start_dry_run(plugin_venv, server, tmp_path, "top", "dep<2")
        stdout, stderr = finish(process)

    assert stock.returncode == process.returncode == 0, stderr
    assert "Would install dep-1.0 top-1.0" in stock.stdout
    assert "Would install dep-1.0 top-1.0" in stdout
    return asked


def test_a_root_pin_keeps_speculation_off_other_versions(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    """``foo`` depends on ``bar``; the user asks for ``foo bar==1.0``."""
    publish(file_server, "foo", "1.0", requires_dist=["bar"])
    publish(file_server, "bar", "1.0")
    bar_2 = publish(file_server, "bar", "2.0")
    stock = dry_run(stock_venv, file_server, tmp_path, "foo", "bar==1.0")
    file_server.clear_log()

    result = dry_run(plugin_venv, file_server, tmp_path, FAST_DEPS, "foo", "bar==1.0")

    assert stock.returncode == result.returncode == 0, result.stderr
    assert "Would install bar-1.0 foo-1.0" in stock.stdout
    assert "Would install bar-1.0 foo-1.0" in result.stdout
    assert file_server.requests_for(bar_2) == []


def test_a_stalled_request_stock_pip_never_makes_does_not_delay_the_command(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    """top 2.0 is the likely candidate, so its dependencies are read ahead,
    ``slow`` among them, whose page the server holds; the resolver rejects
    top 2.0 on its first dependency and never asks for ``slow``, nor does
    stock pip. pip must finish, as stock pip does, while the page is held."""
    publish_top_rejected_for_dep(file_server, "slow")
    publish(file_server, "slow", "1.0")
    dry_run_as_stock_while_slow_is_held(stock_venv, plugin_venv, file_server, tmp_path)


def test_a_stalled_request_made_for_an_extras_sake_does_not_delay_the_command(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    """As above, but ``slow`` is what ``lib[x]`` adds to ``lib``: the read
    for the extra's sake waits for lib's metadata, read for the plain
    ``lib``, then asks for ``slow``, whose page the server holds. The
    server holds dep's page until that request has come, so that the
    resolver cannot finish before the prefetcher gets there."""
    publish_top_rejected_for_dep(file_server, "lib", "lib[x]")
    publish(
        file_server,
        "lib",
        "1.0",
        provides_extra=["x"],
        requires_dist=['slow; extra == "x"'],
    )
    publish(file_server, "slow", "1.0")
    slow_asked = dry_run_as_stock_while_slow_is_held(
        stock_venv,
        plugin_venv,
        file_server,
        tmp_path,
        gated=lambda entry: entry.path == "/simple/dep/",
    )

    assert slow_asked.is_set()


def test_a_direct_url_dependency_of_a_rejected_candidate_is_never_fetched(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    """pip checks a candidate's Requires-Python before its dependencies
    (pip's test_new_resolver_checks_requires_python_before_dependencies)."""
    dep = file_server.add_file(
        f"/direct/{wheel_filename('dep', '1.0')}", build_wheel("dep", "1.0")
    )
    publish(file_server, "pkg", "1.0")
    publish(
        file_server, "pkg", "2.0", requires_python=">=4", requires_dist=[f"dep @ {dep}"]
    )

    fetched = []
    for venv, extra in ((stock_venv, []), (plugin_venv, [FAST_DEPS])):
        file_server.clear_log()
        result = dry_run(venv, file_server, tmp_path, *extra, "pkg")

        assert result.returncode == 0, result.stderr
        assert "Would install pkg-1.0" in result.stdout
        fetched.append(bool(file_server.requests_for(dep)))

    # Before 25.1 pip read every dependency of a candidate before checking
    # its Requires-Python, and so prepared the direct URL: the plugin must
    # then do what stock pip does, and never more.
    assert fetched == [PIP_VERSION < (25, 1)] * 2


@needs_signals
@pytest.mark.parametrize("ignore_ranges", [False, True], ids=["ranges", "no-ranges"])
def test_ctrl_c_during_a_stalled_request_exits_without_waiting_for_it(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path, ignore_ranges: bool
) -> None:
    """The server holds bar's wheel, which the prefetcher reads ahead of the
    resolver (its metadata, or on a host without ranges the whole file);
    Ctrl-C must end pip while the request is still held."""
    publish(file_server, "foo", "1.0", requires_dist=["bar"])
    bar = publish(file_server, "bar", "1.0")
    is_bar = lambda entry: entry.path == bar  # noqa: E731
    with held(file_server, is_bar, ignore_ranges=ignore_ranges) as arrived:
        process = start_dry_run(plugin_venv, file_server, tmp_path, "foo")
        try:
            assert arrived.wait(timeout=120)
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=STALL_LIMIT / 2)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()

    assert process.returncode == 1
    assert "Operation cancelled by user" in stderr
    assert "Traceback" not in stderr


def start_install_of_four_holding_the_last(
    plugin_wheel: Path, server: FileServer, tmp_path: Path
) -> tuple[Venv, Callable[[LoggedRequest], bool]]:
    """flat0...flat3 published, a new environment with the plugin, and what
    picks the download of flat3 (its metadata is read with a range)."""
    publish_flat(server, 4)
    last = f"/files/{wheel_filename('flat3', '1.0')}"
    env = _make_venv(tmp_path / "env", str(plugin_wheel))
    return env, lambda entry: entry.path == last and entry.range is None


def install_args(server: FileServer) -> list[str]:
    return ["install", "--no-cache-dir", FAST_DEPS, "--index-url", server.index_url] + [
        f"flat{n}" for n in range(4)
    ]


@needs_signals
@pytest.mark.skipif(PATCHED_PIP is not None, reason="installing ahead is the plugin's")
def test_ctrl_c_while_wheels_are_installed_ahead_leaves_the_environment_untouched(
    plugin_wheel: Path, file_server: FileServer, tmp_path: Path
) -> None:
    """The first wheels are downloaded and installed ahead, into a staging
    directory, while the server holds the last one; Ctrl-C comes, then the
    last file: pip ends, and leaves no staging directory and nothing
    installed, as stock pip leaves nothing before its install step."""
    env, is_last = start_install_of_four_holding_the_last(
        plugin_wheel, file_server, tmp_path
    )
    site = next(env.root.glob("lib/python*/site-packages"))
    before = sorted(path.name for path in site.iterdir())
    with held(file_server, is_last) as arrived:
        process = start_pip(env, install_args(file_server), tmp_path)
        interrupt_once_arrived(arrived, process)
    _, stderr = finish(process)

    assert process.returncode == 1
    assert "Operation cancelled by user" in stderr
    assert "Traceback" not in stderr
    assert list(env.root.glob(".fastdeps-*")) == []
    assert sorted(path.name for path in site.iterdir()) == before


@needs_signals
@pytest.mark.skipif(PATCHED_PIP is not None, reason="installing ahead is the plugin's")
def test_the_workers_end_when_pip_is_killed(
    plugin_wheel: Path, file_server: FileServer, tmp_path: Path
) -> None:
    """A forked worker holds pip's output: one that outlived a pip killed
    with SIGKILL (the OOM killer, a CI timeout) would keep whoever reads
    that output waiting forever."""
    env, is_last = start_install_of_four_holding_the_last(
        plugin_wheel, file_server, tmp_path
    )
    with held(file_server, is_last) as arrived:
        process = start_pip(
            env, install_args(file_server), tmp_path, start_new_session=True
        )
        try:
            assert arrived.wait(timeout=120)
            process.kill()
            process.communicate(timeout=STALL_LIMIT / 2)  # every writer gone
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # what outlived pip

    assert process.returncode == -signal.SIGKILL


@needs_signals
def test_downloads_go_on_when_sigint_is_ignored(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    """``nohup`` and background jobs of a script start pip with SIGINT
    ignored: a SIGINT must not stop it, as it does not stop stock pip."""
    wheels = publish_flat(file_server, 4)
    target = tmp_path / "downloads"
    is_download = lambda entry: is_wheel_request(entry) and entry.range is None  # noqa: E731
    with held(file_server, is_download) as arrived:
        process = start_pip(
            plugin_venv,
            ["download", "-d", str(target), "--no-cache-dir", FAST_DEPS]
            + ["--index-url", file_server.index_url, *(f"flat{n}" for n in range(4))],
            tmp_path,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
        interrupt_once_arrived(arrived, process)
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 0, stderr
    assert {path.name: path.read_bytes() for path in target.iterdir()} == wheels


def test_an_index_behind_basic_auth_answers_with_keyrings_credentials(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    """A worker's 401 is no answer: the resolver's own request asks keyring
    (pip's test_build_dependency_install_uses_same_keyring_as_root)."""
    publish(file_server, "foo", "1.0", requires_dist=["bar"])
    publish(file_server, "bar", "1.0")
    file_server.behave(auth=("user", "s3cret"))
    keyring = tmp_path / "keyring_backend"
    (keyring / "keyring").mkdir(parents=True)
    (keyring / "keyring" / "__init__.py").write_text(
        "import types\n"
        "def get_credential(url, username):\n"
        "    return types.SimpleNamespace(username='user', password='s3cret')\n"
        "def get_password(url, username):\n"
        "    return 's3cret'\n"
        "def set_password(url, username, password):\n"
        "    pass\n",
        encoding="utf-8",
    )
    args = ["install", "--dry-run", "--ignore-installed", "--no-cache-dir"]
    args += ["--keyring-provider", "import", "--index-url", file_server.index_url]

    for venv, extra in ((stock_venv, []), (plugin_venv, [FAST_DEPS])):
        result = run_pip(
            venv, [*args, *extra, "foo"], cwd=tmp_path, env={"PYTHONPATH": str(keyring)}
        )

        assert result.returncode == 0, result.stderr
        assert "Would install bar-1.0 foo-1.0" in result.stdout


def wheel_gets(server: FileServer) -> list[tuple[str, str | None, int]]:
    return [
        (entry.path, entry.range, entry.status)
        for entry in server.log
        if is_wheel_request(entry)
    ]


def test_a_small_file_sent_whole_for_a_range_is_fetched_once(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    """``python -m http.server``, devpi-server: ranges answered with the
    whole file. That answer is the file; it is not downloaded again (pip's
    own test_download_metadata_server serves each file once only)."""
    file_server.behave(ignore_ranges=True)
    path = publish(file_server, "solo", "1.0")
    for venv, extra in ((stock_venv, []), (plugin_venv, [FAST_DEPS])):
        file_server.clear_log()
        target = tmp_path / venv.root.name
        result = run_pip(
            venv,
            ["download", "-d", str(target), "--no-cache-dir", *extra]
            + ["--index-url", file_server.index_url, "solo"],
            cwd=tmp_path,
        )

        assert result.returncode == 0, result.stderr
        assert [p.name for p in target.iterdir()] == [wheel_filename("solo", "1.0")]
        assert [(p, status) for p, _, status in wheel_gets(file_server)] == [
            (path, 200)
        ]


def test_a_host_without_ranges_sends_each_wheel_once(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    """Behind a server that ignores ranges, the wheels are read whole ahead
    of the resolver, the first range's answer included, and the download
    phase uses them: one GET per wheel, as with stock pip, and the files are
    stock pip's."""
    wheels = publish_flat(file_server, 4, payload_size=2 * 1024 * 1024)
    file_server.behave(ignore_ranges=True)
    names = [f"flat{n}" for n in range(4)]
    downloaded = {}
    for venv, extra in ((stock_venv, []), (plugin_venv, [FAST_DEPS, "-v"])):
        file_server.clear_log()
        target = tmp_path / venv.root.name
        result = run_pip(
            venv,
            ["download", "-d", str(target), "--no-cache-dir", *extra]
            + ["--index-url", file_server.index_url, *names],
            cwd=tmp_path,
        )

        assert result.returncode == 0, result.stderr
        downloaded[venv.root.name] = {p.name: p.read_bytes() for p in target.iterdir()}
        assert sorted(path for path, _, _ in wheel_gets(file_server)) == sorted(
            f"/files/{filename}" for filename in wheels
        )

    assert (
        downloaded[stock_venv.root.name] == downloaded[plugin_venv.root.name] == wheels
    )
    # The first contact asks for a range; its answer, the whole file, is kept.
    assert any(entry[1] for entry in wheel_gets(file_server))


def test_backtracking_on_a_host_without_ranges_fetches_no_wheel_twice(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    """zeta 9.0 needs a blocker that cannot be had: the resolver leaves it
    for 8.0, and the prefetcher reads the next candidates ahead, whole, on a
    server without ranges (how many before resolution ends depends on
    timing; tests/unit/test_prefetch.py counts the unused ones)."""
    for major in range(1, 10):
        requires = ["blocker>=2"] if major == 9 else []
        publish(file_server, "zeta", f"{major}.0", requires_dist=requires)
    publish(file_server, "blocker", "1.0")
    file_server.behave(ignore_ranges=True)
    target = tmp_path / "downloads"
    result = run_pip(
        plugin_venv,
        ["download", "-d", str(target), "--no-cache-dir", FAST_DEPS]
        + ["--index-url", file_server.index_url, "zeta", "blocker"],
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in target.iterdir()) == [
        wheel_filename("blocker", "1.0"),
        wheel_filename("zeta", "8.0"),
    ]
    gets = Counter(path for path, _, _ in wheel_gets(file_server))
    assert set(gets.values()) == {1}  # no wheel fetched twice


def test_a_stalled_whole_wheel_stock_pip_never_downloads_does_not_delay_the_command(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    """On a host without ranges the prefetcher downloads the wheels of top
    2.0's dependencies whole, ``slow`` among them, whose download the server
    holds; the resolver rejects top 2.0 and never asks for ``slow``, nor
    does stock pip. The server holds dep's page until slow's wheel has been
    asked for, so that the resolver cannot finish before the prefetcher
    gets there; pip must then finish while the download is held, and leave
    only what stock pip leaves."""
    file_server.behave(ignore_ranges=True)
    publish_top_rejected_for_dep(file_server, "slow")
    slow = publish(file_server, "slow", "1.0")
    stock_target, target = tmp_path / "stock", tmp_path / "plugin"
    download = ["download", "--no-cache-dir", "--index-url", file_server.index_url]
    stock = run_pip(
        stock_venv, [*download, "-d", str(stock_target), "top", "dep<2"], cwd=tmp_path
    )
    assert file_server.requests_for(slow) == []

    with held(
        file_server,
        lambda entry: entry.path == slow,
        gated=lambda entry: entry.path == "/simple/dep/",
        ignore_ranges=True,
    ) as slow_asked:
        process = start_pip(
            plugin_venv,
            [*download, FAST_DEPS, "-d", str(target), "top", "dep<2"],
            tmp_path,
        )
        _, stderr = finish(process)

    assert slow_asked.is_set()
    assert stock.returncode == process.returncode == 0, stderr
    wheels = sorted(path.name for path in target.iterdir())
    assert sorted(path.name for path in stock_target.iterdir()) == wheels
    assert wheels == [wheel_filename("dep", "1.0"), wheel_filename("top", "1.0")]


def test_no_download_line_when_every_wheel_arrived_whole(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    publish_flat(file_server, 2)
    file_server.behave(ignore_ranges=True)
    result = run_pip(
        plugin_venv,
        ["download", "-d", str(tmp_path / "d"), "--no-cache-dir", FAST_DEPS]
        + ["--progress-bar", "off", "--index-url", file_server.index_url]
        + ["flat0", "flat1"],
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert "Downloaded " not in result.stdout
    assert len(list((tmp_path / "d").iterdir())) == 2


@pytest.mark.skipif(
    not hasattr(cmdoptions, "uploaded_prior_to"), reason="no --uploaded-prior-to"
)
def test_an_error_from_a_prefetched_page_is_pips_without_a_second_request(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    """The page arrives whole; pip's own evaluation of it then fails (this
    index gives no upload times): the resolver gets that error, and the page
    is fetched once, as by stock pip."""
    publish(file_server, "foo", "1.0")
    page = "/simple/foo/"
    cutoff = "--uploaded-prior-to=2100-01-01T00:00:00"
    stock = dry_run(stock_venv, file_server, tmp_path, cutoff, "foo")
    stock_pages = len(file_server.requests_for(page))
    file_server.clear_log()

    result = dry_run(plugin_venv, file_server, tmp_path, FAST_DEPS, cutoff, "foo")

    error = "does not provide upload-time metadata."
    assert stock.returncode == result.returncode == 1
    assert error in stock.stderr
    assert error in result.stderr
    assert stock_pages == len(file_server.requests_for(page)) == 1

"""No secret reaches the terminal or pip's log file, and one prompt at a time.

A password in a URL, one from a netrc file and a presigned query string are
each set to a canary. pip runs at ``-vvv`` with ``--log FILE``, with and
without fast-deps, against the same server; the canary must not appear in
the plugin's stdout, stderr or log file, on the lazy path, in the
prefetcher's replayed records, in the parallel downloads or in any of their
fallbacks.

The one exception is stock pip's own: at ``-vv`` and beyond, pip's vendored
urllib3 logs the target of every request (``"GET /path?query HTTP/1.1" 200
1234``), so stock pip prints the query of a redirect target once per file it
downloads. The plugin sends more requests to those same URLs (ranges, a
HEAD), and urllib3 logs each of them the same way; such lines are allowed,
and only for targets that stock pip's output shows too.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.functional.conftest import (
    Venv,
    is_wheel_request,
    is_whole_wheel_get,
    run_pip,
    whole_wheel_gets,
)
from tests.functional.projects import GRAPH_RESOLUTION, publish_flat, publish_graph
from tests.lib.server import Behaviour, FileServer, LoggedRequest
from tests.lib.wheels import build_wheel, wheel_filename

FAST_DEPS = "--use-feature=fast-deps"
CANARY = "Canary7f3aS3cr3t"
USER = "alice"

#: urllib3's DEBUG line for one request: origin, then the request line.
URLLIB3_REQUEST_LINE = re.compile(
    r'(?P<origin>https?://\S+) "(?P<method>[A-Z]+) (?P<target>\S+) HTTP/1\.1" '
    r"\d{3} \S+$"
)


@dataclass(frozen=True)
class Output:
    """What one pip run printed and logged."""

    result: subprocess.CompletedProcess[str]
    lines: list[str]

    def with_canary(self) -> list[str]:
        return [line for line in self.lines if CANARY in line]


def run_logged(
    venv: Venv,
    args: Sequence[str],
    tmp_path: Path,
    name: str,
    env: dict[str, str] | None = None,
) -> Output:
    """pip at -vvv with --log: stdout, stderr and the log file, line by line."""
    log_file = tmp_path / f"{name}.log"
    result = run_pip(
        venv, [*args, "-vvv", "--log", str(log_file)], cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines() + result.stderr.splitlines()
    lines += log_file.read_text(encoding="utf-8").splitlines()
    return Output(result, lines)


def urllib3_origin_and_target(line: str) -> tuple[str, str] | None:
    match = URLLIB3_REQUEST_LINE.search(line)
    return None if match is None else (match["origin"], match["target"])


def assert_canary_only_where_stock_prints_it(plugin: Output, stock: Output) -> None:
    """The canary is in no plugin line but urllib3's, for a URL stock logs too."""
    stock_targets = set()
    for line in stock.with_canary():
        request = urllib3_origin_and_target(line)
        assert request is not None, f"stock pip prints the canary: {line}"
        stock_targets.add(request)
    for line in plugin.with_canary():
        request = urllib3_origin_and_target(line)
        assert request is not None, f"the canary in: {line}"
        assert request in stock_targets, f"stock pip never requests: {line}"


def download_args(target: Path, *args: str) -> list[str]:
    return ["download", "-d", str(target), "--no-cache-dir", *args]


def downloaded(target: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(target.iterdir())}


def lazy_reads(server: FileServer) -> list[LoggedRequest]:
    return [e for e in server.log if is_wheel_request(e) and not is_whole_wheel_get(e)]


def cut_answers(server: FileServer) -> tuple[int, int]:
    """How many ranged answers, and how many downloads, were cut at 100 bytes."""
    cut = [entry for entry in server.log if entry.body_bytes == 100]
    ranged = [entry for entry in cut if entry.range is not None]
    return len(ranged), len(cut) - len(ranged)


# -- a password in a direct URL ------------------------------------------------


def test_password_in_a_direct_url_reaches_no_output(
    stock_venv: Venv,
    plugin_venv: Venv,
    file_server: FileServer,
    second_file_server: FileServer,
    tmp_path: Path,
) -> None:
    # On the first host ranged GETs are answered 403: the lazy wheel gives up
    # and pip downloads the file. On the second the first ranged answer is
    # cut (read again), then the parallel download (pip's download redoes it).
    wheels, requirements = {}, []
    for server, name in ((file_server, "solo"), (second_file_server, "duo")):
        filename = wheel_filename(name, "1.0")
        wheels[filename] = build_wheel(name, "1.0")
        url = server.add_file(f"/files/{filename}", wheels[filename])
        with_password = url.replace("http://", f"http://{USER}:{CANARY}@")
        requirements.append(f"{name} @ {with_password}")
    file_server.behaviour = Behaviour(auth=(USER, CANARY), range_status=403)
    second_file_server.behaviour = Behaviour(auth=(USER, CANARY))
    stock = run_logged(
        stock_venv, download_args(tmp_path / "s", *requirements), tmp_path, "stock"
    )
    second_file_server.behaviour = Behaviour(
        auth=(USER, CANARY), cut_after=100, cut_whole_after=100
    )
    file_server.clear_log()
    second_file_server.clear_log()
    plugin = run_logged(
        plugin_venv,
        download_args(tmp_path / "p", FAST_DEPS, *requirements),
        tmp_path,
        "plugin",
    )

    assert downloaded(tmp_path / "p") == dict(sorted(wheels.items()))
    assert [entry.status for entry in lazy_reads(file_server)] == [403, 200, 403]
    assert len(whole_wheel_gets(file_server)) == 1
    assert [entry.status for entry in second_file_server.log] == [206, 206, 200, 200]
    assert cut_answers(second_file_server) == (1, 1)
    assert stock.with_canary() == []
    assert plugin.with_canary() == []


# -- a password from a netrc file --------------------------------------------


def test_password_from_netrc_reaches_no_output(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    # One ranged answer is cut (that read asks again, and if prefetched, its
    # records are replayed) and three downloads (pip's downloader redoes them).
    wheels = publish_graph(file_server)
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {USER} password {CANARY}\n")
    netrc.chmod(0o600)
    env = {"NETRC": str(netrc), "HOME": str(tmp_path)}
    index = ["--index-url", file_server.index_url]
    file_server.behaviour = Behaviour(auth=(USER, CANARY))
    stock = run_logged(
        stock_venv,
        download_args(tmp_path / "s", *index, "app[fast]"),
        tmp_path,
        "stock",
        env,
    )
    file_server.behaviour = Behaviour(
        auth=(USER, CANARY), cut_after=100, cut_whole_after=100, cut_whole_times=3
    )
    file_server.clear_log()
    plugin = run_logged(
        plugin_venv,
        download_args(tmp_path / "p", *index, FAST_DEPS, "app[fast]"),
        tmp_path,
        "plugin",
        env,
    )

    assert downloaded(tmp_path / "p") == {
        wheel_filename(*item): wheels[wheel_filename(*item)]
        for item in sorted(GRAPH_RESOLUTION)
    }
    assert cut_answers(file_server) == (1, 3)
    assert len(whole_wheel_gets(file_server)) == len(GRAPH_RESOLUTION) + 3
    assert all(entry.sent_authorization for entry in file_server.log)
    assert stock.with_canary() == []
    assert plugin.with_canary() == []


# -- a presigned query string after a redirect --------------------------------


def test_presigned_query_of_a_redirect_target_is_logged_only_as_stock_does(
    stock_venv: Venv,
    plugin_venv: Venv,
    file_server: FileServer,
    second_file_server: FileServer,
    tmp_path: Path,
) -> None:
    # The index redirects every file to a bucket that signs its URLs and
    # refuses suffix ranges and HEAD (as presigned S3 URLs do); one ranged
    # answer and two downloads are cut short.
    wheels = publish_graph(file_server)
    for filename, data in wheels.items():
        second_file_server.add_file(f"/files/{filename}", data)
    file_server.behave(
        redirect_to=second_file_server.base_url,
        redirect_query=f"X-Amz-Signature={CANARY}",
    )
    index = ["--index-url", file_server.index_url]
    stock = run_logged(
        stock_venv, download_args(tmp_path / "s", *index, "app[fast]"), tmp_path, "s"
    )
    second_file_server.behaviour = Behaviour(
        suffix_status=404,
        head_status=403,
        cut_after=100,
        cut_whole_after=100,
        cut_whole_times=2,
    )
    second_file_server.clear_log()
    plugin = run_logged(
        plugin_venv,
        download_args(tmp_path / "p", *index, FAST_DEPS, "app[fast]"),
        tmp_path,
        "p",
    )

    assert downloaded(tmp_path / "p") == {
        wheel_filename(*item): wheels[wheel_filename(*item)]
        for item in sorted(GRAPH_RESOLUTION)
    }
    bucket_log = second_file_server.log
    assert {entry.method for entry in bucket_log} == {"GET", "HEAD"}
    assert cut_answers(second_file_server) == (1, 2)
    assert stock.with_canary() != []
    assert_canary_only_where_stock_prints_it(plugin, stock)


# -- one password prompt at a time ---------------------------------------------

#: A keyring module for ``--keyring-provider import``: each lookup appends a
#: line to the file named by FASTDEPS_TEST_KEYRING_LOG.
FAKE_KEYRING = """\
import os
from types import SimpleNamespace


def get_credential(url, username):
    with open(os.environ["FASTDEPS_TEST_KEYRING_LOG"], "a") as log:
        log.write(url + "\\n")
    return SimpleNamespace(username={user!r}, password={password!r})
"""


class HoldUnauthenticated:
    """Holds each GET of a wheel that carries no credentials until ``wanted``
    of them have arrived, so that they are all answered 401 together."""

    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.arrived = 0
        self._condition = threading.Condition()

    def __call__(self, entry: LoggedRequest) -> None:
        if not is_whole_wheel_get(entry) or entry.sent_authorization:
            return
        with self._condition:
            self.arrived += 1
            self._condition.notify_all()
            self._condition.wait_for(lambda: self.arrived >= self.wanted, timeout=20)


@pytest.mark.parametrize("parallel", [True, False], ids=["plugin", "stock"])
def test_parallel_downloads_ask_the_keyring_once(
    parallel: bool,
    stock_venv: Venv,
    plugin_venv: Venv,
    file_server: FileServer,
    tmp_path: Path,
) -> None:
    # A second run, whose metadata comes from the cache: the first 401 of the
    # run comes when every download starts at once.
    files = 4
    wheels = publish_flat(file_server, files, payload_size=1024)
    keyring_dir = tmp_path / "keyring"
    keyring_dir.mkdir()
    (keyring_dir / "keyring.py").write_text(
        FAKE_KEYRING.format(user=USER, password=CANARY)
    )
    keyring_log = tmp_path / "keyring.log"
    env = {
        "PYTHONPATH": str(keyring_dir),
        "FASTDEPS_TEST_KEYRING_LOG": str(keyring_log),
    }
    args = ["--cache-dir", str(tmp_path / "cache"), "--index-url"]
    args += [file_server.index_url, "--keyring-provider", "import"]
    args += [f"flat{n}" for n in range(files)]
    venv, flag = (plugin_venv, [FAST_DEPS]) if parallel else (stock_venv, [])
    warm = run_pip(
        venv, ["download", "-d", str(tmp_path / "warm"), *flag, *args], cwd=tmp_path
    )
    assert warm.returncode == 0, warm.stdout + warm.stderr
    file_server.behave(
        auth=(USER, CANARY),
        auth_files_only=True,
        on_request=HoldUnauthenticated(files if parallel else 1),
    )
    file_server.clear_log()
    result = run_pip(
        venv,
        ["download", "-d", str(tmp_path / "d"), *flag, *args],
        cwd=tmp_path,
        env=env,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert downloaded(tmp_path / "d") == dict(sorted(wheels.items()))
    assert len(keyring_log.read_text().splitlines()) == 1
    statuses = sorted(entry.status for entry in whole_wheel_gets(file_server))
    assert statuses == [200] * files + [401] * (files if parallel else 1)
    assert lazy_reads(file_server) == []

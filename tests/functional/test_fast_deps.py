"""The real pip CLI, with and without pip-fastdeps, against the test server.

Every test reads its verdict from the server's request log and from what
pip left behind (files, reports, exit status, messages).
"""

from __future__ import annotations

import hashlib
import json
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.functional.conftest import (
    ACTIVE_LINE,
    PIP_VERSION,
    RESOLVER_DOWNLOADS_FILES,
    Venv,
    is_wheel_request,
    is_whole_wheel_get,
    isolated_environment,
    plugin_only,
    run_pip,
    whole_wheel_gets,
)
from tests.functional.projects import (
    GRAPH_RESOLUTION,
    REJECTED_WHEEL,
    publish_flat,
    publish_graph,
)
from tests.lib.server import Behaviour, FileServer, LoggedRequest
from tests.lib.wheels import build_wheel, wheel_filename

FAST_DEPS = "--use-feature=fast-deps"
STOCK_WARNING = "not ready for production"


def common_args(server: FileServer) -> list[str]:
    return ["--no-cache-dir", "--index-url", server.index_url]


def request_sequence(server: FileServer) -> list[tuple[str, str, str | None]]:
    return [(entry.method, entry.path, entry.range) for entry in server.log]


def files_in(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def report_resolution(report_path: Path) -> set[tuple[str, str]]:
    report = json.loads(report_path.read_text(encoding="utf-8"))
    return {
        (item["metadata"]["name"], item["metadata"]["version"])
        for item in report["install"]
    }


def check(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


def download(
    venv: Venv,
    server: FileServer,
    tmp_path: Path,
    requirements: Sequence[str],
    *extra: str,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    target = tmp_path / "downloads"
    target.mkdir(parents=True, exist_ok=True)
    result = run_pip(
        venv,
        ["download", "-d", str(target), *common_args(server), *extra, *requirements],
        cwd=tmp_path,
    )
    return result, target


# -- binding -------------------------------------------------------------------


def test_flag_off_is_stock_pip(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    wheels = publish_graph(file_server)
    stock, stock_dir = download(stock_venv, file_server, tmp_path / "s", ["app[fast]"])
    stock_requests = request_sequence(file_server)
    file_server.clear_log()
    plugin, plugin_dir = download(
        plugin_venv, file_server, tmp_path / "p", ["app[fast]"]
    )

    check(stock)
    check(plugin)
    assert request_sequence(file_server) == stock_requests
    assert files_in(plugin_dir) == files_in(stock_dir)
    assert set(files_in(plugin_dir)) <= set(wheels)
    assert ACTIVE_LINE not in plugin.stdout + plugin.stderr


@plugin_only
def test_jobs_without_the_feature_say_they_do_nothing(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    publish_graph(file_server)
    stock, _ = download(stock_venv, file_server, tmp_path / "s", ["app[fast]"])
    stock_requests = request_sequence(file_server)
    file_server.clear_log()
    plugin, _ = download(
        plugin_venv, file_server, tmp_path / "p", ["app[fast]"], "--fast-deps-jobs", "4"
    )

    check(stock)
    check(plugin)
    assert request_sequence(file_server) == stock_requests
    assert plugin.stderr.splitlines() == [
        "WARNING: --fast-deps-jobs has no effect without --use-feature=fast-deps"
    ]


@plugin_only
def test_a_pip_command_that_resolves_nothing_never_imports_the_plugin(
    plugin_venv: Venv, tmp_path: Path
) -> None:
    """pip parses its options for every command; the plugin is imported there
    only for ``--python``, so ``pip list`` costs it nothing."""
    script = (
        "import sys; from pip._internal.cli.main import main; "
        "status = main(['list', '--disable-pip-version-check']); "
        "print('fastdeps.plugin' in sys.modules, status)"
    )
    result = subprocess.run(
        [str(plugin_venv.python), "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=isolated_environment(),
        check=False,
    )

    assert result.stdout.splitlines()[-1] == "False 0", result.stdout + result.stderr


@plugin_only
def test_pip_python_says_the_other_environment_has_no_plugin(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    """``pip --python TARGET`` runs pip again under TARGET's interpreter,
    where the plugin is not installed: pip-fastdeps says so."""
    publish_graph(file_server)
    args = ["--python", str(stock_venv.python), "install", "--dry-run"]
    args += [*common_args(file_server), FAST_DEPS, "app[fast]"]

    result = run_pip(plugin_venv, args, cwd=tmp_path)

    check(result)
    assert "WARNING: pip-fastdeps is not active with --python" in result.stderr
    assert ACTIVE_LINE not in result.stdout


def test_stock_warning_is_replaced_by_one_line(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    publish_graph(file_server)
    result, _ = download(plugin_venv, file_server, tmp_path, ["app[fast]"], FAST_DEPS)

    check(result)
    assert STOCK_WARNING not in result.stdout + result.stderr
    active = [line for line in result.stdout.splitlines() if ACTIVE_LINE in line]
    assert len(active) == 1
    assert "is active" in active[0]


@plugin_only
def test_python_m_fastdeps_runs_pip_with_the_feature(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    publish_graph(file_server)
    target = tmp_path / "downloads"
    result = run_pip(
        plugin_venv,
        ["download", "-d", str(target), *common_args(file_server), "app[fast]"],
        cwd=tmp_path,
        module="fastdeps",
    )

    check(result)
    assert any(entry.range for entry in file_server.log if is_wheel_request(entry))
    assert {name.split("-")[0] for name in files_in(target)} == {
        name for name, _ in GRAPH_RESOLUTION
    }


@plugin_only
def test_bootstrap_imports_nothing_but_itself(
    plugin_venv: Venv, tmp_path: Path
) -> None:
    """The .pth costs one small module at start-up, and nothing of pip."""
    show_modules = "import sys; print('\\n'.join(sorted(sys.modules)))"
    with_hook = subprocess.run(
        [str(plugin_venv.python), "-c", show_modules],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.split()
    without_site = subprocess.run(
        [str(plugin_venv.python), "-c", "import site; " + show_modules],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.split()

    added = {name for name in with_hook if "fastdeps" in name or "pip" in name}
    assert added == {"fastdeps", "fastdeps._bootstrap"}
    assert "typing" not in set(with_hook) - set(without_site)


# -- resolution ----------------------------------------------------------------


def test_install_dry_run_report_resolves_as_stock_pip(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    publish_graph(file_server)
    resolutions = []
    for venv, extra in ((stock_venv, []), (plugin_venv, [FAST_DEPS])):
        report = tmp_path / f"{venv.root.name}.json"
        result = run_pip(
            venv,
            ["install", "--dry-run", "--ignore-installed", "--report", str(report)]
            + ["-q", *common_args(file_server), *extra, "app[fast]"],
            cwd=tmp_path,
        )
        check(result)
        resolutions.append(report_resolution(report))

    assert resolutions == [GRAPH_RESOLUTION, GRAPH_RESOLUTION]


def test_dry_run_downloads_files_only_where_pip_always_did(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    publish_graph(file_server)
    report = tmp_path / "report.json"
    result = run_pip(
        plugin_venv,
        ["install", "--dry-run", "--ignore-installed", "--report", str(report)]
        + [*common_args(file_server), FAST_DEPS, "app[fast]"],
        cwd=tmp_path,
    )

    check(result)
    assert report_resolution(report) == GRAPH_RESOLUTION
    expected_whole_gets = len(GRAPH_RESOLUTION) if RESOLVER_DOWNLOADS_FILES else 0
    assert len(whole_wheel_gets(file_server)) == expected_whole_gets
    assert "Would install" in result.stdout


def test_download_resolves_as_stock_and_fetches_no_whole_wheel_before_the_end(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    wheels = publish_graph(file_server)
    stock, stock_dir = download(stock_venv, file_server, tmp_path / "s", ["app[fast]"])
    file_server.clear_log()
    plugin, plugin_dir = download(
        plugin_venv, file_server, tmp_path / "p", ["app[fast]"], FAST_DEPS
    )

    check(stock)
    check(plugin)
    assert files_in(plugin_dir) == files_in(stock_dir)
    for filename, data in files_in(plugin_dir).items():
        assert data == wheels[filename]
    log = list(file_server.log)
    ranged = [
        n for n, entry in enumerate(log) if is_wheel_request(entry) and entry.range
    ]
    whole = [n for n, entry in enumerate(log) if is_whole_wheel_get(entry)]
    assert ranged and whole
    assert max(ranged) < min(whole)
    # The candidate given up in the backtrack was never downloaded.
    assert f"/files/{REJECTED_WHEEL}" not in {log[n].path for n in whole}
    assert len(whole) == len(GRAPH_RESOLUTION)


def test_wheel_command_saves_the_same_wheels_as_stock(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    publish_graph(file_server)
    saved = []
    for venv, extra in ((stock_venv, []), (plugin_venv, [FAST_DEPS])):
        wheel_dir = tmp_path / venv.root.name
        result = run_pip(
            venv,
            ["wheel", "-w", str(wheel_dir), *common_args(file_server), *extra]
            + ["app[fast]"],
            cwd=tmp_path,
        )
        check(result)
        saved.append(files_in(wheel_dir))

    assert saved[0] == saved[1]
    assert len(saved[1]) == len(GRAPH_RESOLUTION)


@pytest.mark.skipif(PIP_VERSION < (25, 1), reason="pip lock arrived in pip 25.1")
def test_lock_resolves_as_stock_pip(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    import tomllib

    publish_graph(file_server)
    locked = []
    for venv, extra in ((stock_venv, []), (plugin_venv, [FAST_DEPS])):
        lock_file = tmp_path / f"{venv.root.name}" / "pylock.toml"
        lock_file.parent.mkdir(exist_ok=True)
        result = run_pip(
            venv,
            ["lock", "-o", str(lock_file), *common_args(file_server), *extra]
            + ["app[fast]"],
            cwd=tmp_path,
        )
        check(result)
        packages = tomllib.loads(lock_file.read_text(encoding="utf-8"))["packages"]
        locked.append({(item["name"], item["version"]) for item in packages})
        if extra and not RESOLVER_DOWNLOADS_FILES:
            assert whole_wheel_gets(file_server) == []
        file_server.clear_log()

    assert locked == [GRAPH_RESOLUTION, GRAPH_RESOLUTION]


def test_install_into_a_target_directory(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    publish_graph(file_server)
    target = tmp_path / "target"
    result = run_pip(
        plugin_venv,
        ["install", "--target", str(target), *common_args(file_server), FAST_DEPS]
        + ["app[fast]"],
        cwd=tmp_path,
    )

    check(result)
    installed = {path.name for path in target.iterdir()}
    assert {"app", "mid", "leaf", "speedup", "py3only"} <= installed
    assert (target / "leaf-2.0.dist-info").is_dir()


# -- parallel downloads -------------------------------------------------------


class InFlightCounter:
    """Holds each whole-file GET until ``wanted`` of them are in flight.

    The wait has a generous time limit so that a sequential downloader fails
    the assertion instead of hanging the test.
    """

    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.in_flight = 0
        self.most = 0
        self._condition = threading.Condition()

    def __call__(self, entry: LoggedRequest) -> None:
        if not is_wheel_request(entry) or entry.range is not None:
            return
        with self._condition:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self._condition.notify_all()
            self._condition.wait_for(lambda: self.most >= self.wanted, timeout=20)
            self.in_flight -= 1


def test_final_downloads_overlap(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    wheels = publish_flat(file_server, 8)
    counter = InFlightCounter(wanted=4)
    file_server.behave(on_request=counter)
    result, target = download(
        plugin_venv, file_server, tmp_path, [f"flat{n}" for n in range(8)], FAST_DEPS
    )

    check(result)
    assert counter.most >= 4
    assert files_in(target) == dict(sorted(wheels.items()))


def test_jobs_come_from_the_option_or_pips_configuration(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    publish_flat(file_server, 2, payload_size=1024)
    requirements = ["flat0", "flat1"]
    by_option, _ = download(
        plugin_venv,
        file_server,
        tmp_path,
        requirements,
        FAST_DEPS,
        "--fast-deps-jobs=3",
    )
    config = tmp_path / "pip.conf"
    config.write_text("[download]\nfast-deps-jobs = 2\n", encoding="utf-8")
    by_config = run_pip(
        plugin_venv,
        ["download", "-d", str(tmp_path / "c"), *common_args(file_server), FAST_DEPS]
        + requirements,
        cwd=tmp_path,
        env={"PIP_CONFIG_FILE": str(config)},
    )
    by_environment = run_pip(
        plugin_venv,
        ["download", "-d", str(tmp_path / "e"), *common_args(file_server), FAST_DEPS]
        + requirements,
        cwd=tmp_path,
        env={"PIP_FAST_DEPS_JOBS": "5"},
    )
    refused, _ = download(
        plugin_venv,
        file_server,
        tmp_path,
        requirements,
        FAST_DEPS,
        "--fast-deps-jobs=0",
    )

    for result, jobs in ((by_option, 3), (by_config, 2), (by_environment, 5)):
        check(result)
        assert f"up to {jobs} parallel downloads" in result.stdout
    assert refused.returncode != 0
    assert "--fast-deps-jobs must be at least 1, not 0" in refused.stderr


# -- misbehaving servers -------------------------------------------------------

SERVER_SWITCHES = {
    "ignore-ranges": Behaviour(ignore_ranges=True),
    "ignore-ranges-advertised": Behaviour(ignore_ranges=True, advertise_ranges=True),
    "suffix-404": Behaviour(suffix_status=404),
    "suffix-501": Behaviour(suffix_status=501),
    "suffix-as-prefix": Behaviour(suffix_as_prefix=True),
    "suffix-416": Behaviour(suffix_416=True),
    "extra-byte": Behaviour(extra_byte=True),
    "wrong-content-range": Behaviour(wrong_content_range=True),
    "range-401": Behaviour(range_status=401),
    "range-500": Behaviour(range_status=500),
    "gzip-ranges": Behaviour(gzip_ranges=True),
    "cut-ranges": Behaviour(cut_after=100, cut_times=100),
    "head-405": Behaviour(head_status=405, suffix_status=501),
}


# pip's session retries a 500 five times with exponential back-off, for
# every ranged request: 100 s for this graph. One retry keeps the test to
# the point (the fallback) and fast.
SWITCH_ARGS = ("--retries=1",)


@pytest.mark.parametrize("switch", sorted(SERVER_SWITCHES))
def test_misbehaving_server_still_gives_a_correct_download(
    switch: str, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    wheels = publish_graph(file_server)
    file_server.behaviour = SERVER_SWITCHES[switch]
    result, target = download(
        plugin_venv, file_server, tmp_path, ["app[fast]"], FAST_DEPS, *SWITCH_ARGS
    )

    check(result)
    downloaded = files_in(target)
    assert {name.split("-")[0] for name in downloaded} == {
        name for name, _ in GRAPH_RESOLUTION
    }
    for filename, data in downloaded.items():
        assert data == wheels[filename]
    assert file_server.errors == []


def test_a_failed_lazy_read_is_not_repeated_before_the_download(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    # Every ranged answer is cut short: the lazy wheel completes a cut read
    # once, gives up at the second cut, and pip downloads the file. A cut is
    # not held against the host, so nothing but the preparer's not trying
    # again keeps this to those two ranged requests.
    filename = wheel_filename("solo", "1.0")
    data = build_wheel("solo", "1.0")
    file_server.add_project("solo", {filename: data})
    file_server.behaviour = Behaviour(cut_after=100, cut_times=100)

    result, target = download(plugin_venv, file_server, tmp_path, ["solo"], FAST_DEPS)

    check(result)
    assert files_in(target) == {filename: data}
    wheel_requests = file_server.requests_for(f"/files/{filename}")
    assert [entry.range is not None for entry in wheel_requests] == [True, True, False]


# -- hashes and download directories ------------------------------------------


def hashed_requirements(wheels: dict[str, bytes], tmp_path: Path) -> Path:
    lines = []
    for name, version in sorted(GRAPH_RESOLUTION):
        digest = hashlib.sha256(wheels[wheel_filename(name, version)]).hexdigest()
        requirement = "app[fast]" if name == "app" else name
        lines.append(f"{requirement}=={version} --hash=sha256:{digest}")
    path = tmp_path / "requirements.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_hash_checking_mode_keeps_metadata_only_resolution(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    wheels = publish_graph(file_server)
    requirements = hashed_requirements(wheels, tmp_path)
    result, target = download(
        plugin_venv, file_server, tmp_path, ["-r", str(requirements)], FAST_DEPS
    )

    check(result)
    assert files_in(target) == {
        wheel_filename(name, version): wheels[wheel_filename(name, version)]
        for name, version in GRAPH_RESOLUTION
    }
    log = list(file_server.log)
    ranged = [
        n for n, entry in enumerate(log) if is_wheel_request(entry) and entry.range
    ]
    whole = [n for n, entry in enumerate(log) if is_whole_wheel_get(entry)]
    assert ranged and max(ranged) < min(whole)


def publish_wildcard_pinned(server: FileServer, tmp_path: Path) -> dict[str, bytes]:
    """``pkg`` 1.0 and 1.1, both hash-pinned by ``pkg==1.*``; the ranges of
    1.1 carry a METADATA that rejects it, while its whole file is honest."""
    wheels = {
        wheel_filename("pkg", version): build_wheel("pkg", version)
        for version in ("1.0", "1.1")
    }
    server.add_project("pkg", wheels)
    liar = build_wheel("pkg", "1.1", requires_python=">=4")
    server.behave(ranged_variants={f"/files/{wheel_filename('pkg', '1.1')}": liar})
    hashes = " ".join(
        f"--hash=sha256:{hashlib.sha256(data).hexdigest()}" for data in wheels.values()
    )
    (tmp_path / "requirements.txt").write_text(f"pkg==1.* {hashes}\n", "utf-8")
    return wheels


def test_hash_checking_mode_lets_no_unverified_metadata_pick_a_version(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    """``pkg==1.*`` is "pinned" for pip's hash-checking mode, yet admits two
    files: metadata read from ranges must not choose between them."""
    wheels = publish_wildcard_pinned(file_server, tmp_path)
    requirements = ["-r", str(tmp_path / "requirements.txt")]
    stock, stock_dir = download(stock_venv, file_server, tmp_path / "s", requirements)
    file_server.clear_log()
    plugin, plugin_dir = download(
        plugin_venv, file_server, tmp_path / "p", requirements, FAST_DEPS
    )

    check(stock)
    check(plugin)
    newest = wheel_filename("pkg", "1.1")
    assert files_in(stock_dir) == files_in(plugin_dir) == {newest: wheels[newest]}
    assert not any(entry.range for entry in file_server.log)


def test_hash_checking_mode_reads_an_exact_pins_only_file_lazily(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    """One file can be installed whatever its metadata says: its metadata
    may come from ranges, and is compared with the verified file after."""
    wheels = {
        wheel_filename("pkg", version): build_wheel("pkg", version)
        for version in ("1.0", "1.1")
    }
    file_server.add_project("pkg", wheels)
    newest = wheel_filename("pkg", "1.1")
    digest = hashlib.sha256(wheels[newest]).hexdigest()
    (tmp_path / "requirements.txt").write_text(
        f"pkg==1.1 --hash=sha256:{digest}\n", "utf-8"
    )
    result, target = download(
        plugin_venv,
        file_server,
        tmp_path,
        ["-r", str(tmp_path / "requirements.txt")],
        FAST_DEPS,
    )

    check(result)
    assert files_in(target) == {newest: wheels[newest]}
    requests = file_server.requests_for(f"/files/{newest}")
    assert [entry.range is not None for entry in requests] == [True, False]


def test_hash_mismatch_fails_as_in_stock_pip(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    wheels = publish_graph(file_server)
    requirements = hashed_requirements(wheels, tmp_path)
    text = requirements.read_text(encoding="utf-8")
    good = hashlib.sha256(wheels[wheel_filename("leaf", "2.0")]).hexdigest()
    requirements.write_text(text.replace(good, "0" * 64), encoding="utf-8")

    errors = []
    for venv, extra, where in ((stock_venv, [], "s"), (plugin_venv, [FAST_DEPS], "p")):
        result, target = download(
            venv, file_server, tmp_path / where, ["-r", str(requirements)], *extra
        )
        assert result.returncode == 1
        assert list(target.iterdir()) == []
        errors.append(hash_error_lines(result.stderr))

    assert errors[0] == errors[1]
    assert any("leaf==2.0" in line for line in errors[1])
    assert any(good in line for line in errors[1])


def hash_error_lines(stderr: str) -> list[str]:
    start = stderr.index("THESE PACKAGES DO NOT MATCH THE HASHES")
    return [line.strip() for line in stderr[start:].splitlines() if line.strip()]


def test_bad_file_in_download_dir_is_replaced_with_pips_warning(
    stock_venv: Venv, plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    wheels = publish_graph(file_server)
    requirements = hashed_requirements(wheels, tmp_path)
    leaf = wheel_filename("leaf", "2.0")
    for venv, extra, where in ((stock_venv, [], "s"), (plugin_venv, [FAST_DEPS], "p")):
        target = tmp_path / where / "downloads"
        target.mkdir(parents=True)
        (target / leaf).write_bytes(b"not the wheel")
        result, _ = download(
            venv, file_server, tmp_path / where, ["-r", str(requirements)], *extra
        )

        check(result)
        assert "has bad hash. Re-downloading." in result.stdout + result.stderr
        assert (target / leaf).read_bytes() == wheels[leaf]
        assert [p.name for p in target.iterdir() if p.name.startswith(".")] == []


def test_good_file_in_download_dir_is_not_downloaded_again(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    wheels = publish_graph(file_server)
    leaf = wheel_filename("leaf", "2.0")
    target = tmp_path / "downloads"
    target.mkdir()
    (target / leaf).write_bytes(wheels[leaf])
    result, _ = download(plugin_venv, file_server, tmp_path, ["app[fast]"], FAST_DEPS)

    check(result)
    assert f"/files/{leaf}" not in {
        entry.path for entry in whole_wheel_gets(file_server)
    }
    assert len(files_in(target)) == len(GRAPH_RESOLUTION)


# -- file modes ----------------------------------------------------------------


def modes_in(directory: Path) -> dict[str, int]:
    return {
        path.name: stat.S_IMODE(path.stat().st_mode)
        for path in sorted(directory.iterdir())
    }


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["022", "027"])
@pytest.mark.parametrize(("command", "option"), [("download", "-d"), ("wheel", "-w")])
def test_saved_files_get_stock_pips_modes(
    stock_venv: Venv,
    plugin_venv: Venv,
    file_server: FileServer,
    tmp_path: Path,
    command: str,
    option: str,
    umask: int,
) -> None:
    """A wheelhouse served by a web server needs the modes stock pip gives."""
    publish_graph(file_server)
    modes = []
    for venv, extra in ((stock_venv, []), (plugin_venv, [FAST_DEPS])):
        target = tmp_path / venv.root.name
        result = run_pip(
            venv,
            [command, option, str(target), *common_args(file_server), *extra]
            + ["app[fast]"],
            cwd=tmp_path,
            umask=umask,
        )
        check(result)
        modes.append(modes_in(target))

    assert modes[1] == modes[0]
    assert len(modes[1]) == len(GRAPH_RESOLUTION)
    assert set(modes[1].values()) == {0o666 & ~umask}


# -- metadata checks -----------------------------------------------------------


def test_metadata_mismatch_between_ranges_and_file_is_caught(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    """The server answers ranges from one wheel and the whole file from another.

    A direct URL carries no hash, so only the metadata comparison can notice.
    """
    filename = wheel_filename("shifty", "1.0")
    honest = build_wheel("shifty", "1.0")
    different = build_wheel("shifty", "1.0", requires_dist=["leaf"])
    url = file_server.add_file(f"/files/{filename}", honest)

    def swap_after_ranges(entry: LoggedRequest) -> None:
        if entry.path == f"/files/{filename}" and entry.range is not None:
            file_server.add_file(f"/files/{filename}", different)

    file_server.behave(on_request=swap_after_ranges)
    result, target = download(
        plugin_venv, file_server, tmp_path, [f"shifty @ {url}"], FAST_DEPS
    )

    assert result.returncode == 1
    assert filename in result.stderr
    assert "Requires-Dist" in result.stderr
    assert "does not match the METADATA inside the downloaded file" in result.stderr
    assert list(target.iterdir()) == []


def test_hash_checking_dry_run_keeps_stock_behaviour(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    """A dry run never downloads the files, so their hashes could not be
    checked after a metadata-only resolution: pip downloads them as stock."""
    wheels = publish_graph(file_server)
    requirements = hashed_requirements(wheels, tmp_path)
    result = run_pip(
        plugin_venv,
        ["install", "--dry-run", "--ignore-installed", *common_args(file_server)]
        + [FAST_DEPS, "-r", str(requirements)],
        cwd=tmp_path,
    )

    check(result)
    assert not any(entry.range for entry in file_server.log)
    assert len(whole_wheel_gets(file_server)) == len(GRAPH_RESOLUTION)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT cannot be sent on Windows")
def test_interrupted_downloads_leave_no_partial_file(
    plugin_venv: Venv, file_server: FileServer, tmp_path: Path
) -> None:
    publish_flat(file_server, 4, payload_size=256 * 1024)
    first_download = threading.Event()
    release = threading.Event()

    def hold_whole_gets(entry: LoggedRequest) -> None:
        if is_wheel_request(entry) and entry.range is None:
            first_download.set()
            release.wait(timeout=60)

    file_server.behave(on_request=hold_whole_gets)
    target = tmp_path / "downloads"
    temp = tmp_path / "tmp"
    target.mkdir()
    temp.mkdir()
    process = subprocess.Popen(
        [str(plugin_venv.python), "-m", "pip", "download", "-d", str(target)]
        + [*common_args(file_server), FAST_DEPS]
        + [f"flat{n}" for n in range(4)],
        cwd=tmp_path,
        env={**isolated_environment(), "TMPDIR": str(temp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert first_download.wait(timeout=120)
        process.send_signal(signal.SIGINT)
        release.set()
        _, stderr = process.communicate(timeout=120)
    finally:
        release.set()
        if process.poll() is None:
            process.kill()

    assert process.returncode != 0
    assert list(target.iterdir()) == []
    assert list(temp.iterdir()) == []

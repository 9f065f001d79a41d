"""fast-deps against a local index whose server serves byte ranges."""

import json
import pathlib
import re

from pip._vendor.packaging.utils import canonicalize_name

from pip._internal.utils.misc import hash_file

from tests.lib import PipTestEnvironment, create_basic_wheel_for_package
from tests.lib.server import (
    _MockServer,
    make_mock_server,
    package_page,
    ranged_file_response,
    server_running,
)

SUFFIX = "bytes=-131072"


def serve_index(wheels: list[pathlib.Path]) -> _MockServer:
    """A simple index of ``wheels``, one page per project, serving ranges.

    Each link carries its file's sha256, which keys the metadata cache.
    """
    routes = {}
    pages: dict[str, dict[str, str]] = {}
    for wheel in wheels:
        project = canonicalize_name(wheel.name.split("-")[0])
        digest = hash_file(str(wheel))[0].hexdigest()
        url = f"/files/{wheel.name}#sha256={digest}"
        pages.setdefault(project, {})[wheel.name] = url
        routes[f"/files/{wheel.name}"] = ranged_file_response(wheel)
    for project, files in pages.items():
        routes[f"/simple/{project}/"] = package_page(files)
    server = make_mock_server()
    server.mock.side_effect = lambda environ, _: routes[environ["PATH_INFO"]]
    return server


def file_requests(server: _MockServer) -> list[tuple[str, str]]:
    """Each request for a file, as (file name, Range header or ""), sorted."""
    environs = [call.args[0] for call in server.mock.call_args_list]
    return sorted(
        (environ["PATH_INFO"].rpartition("/")[2], environ.get("HTTP_RANGE", ""))
        for environ in environs
        if environ["PATH_INFO"].startswith("/files/")
    )


def two_wheels(script: PipTestEnvironment) -> list[pathlib.Path]:
    return [
        create_basic_wheel_for_package(script, "pkga", "1.0", depends=["pkgb"]),
        create_basic_wheel_for_package(script, "pkgb", "2.0"),
    ]


def resolve(script: PipTestEnvironment, server: _MockServer, *args: str) -> list[str]:
    """What ``pip install --dry-run`` with fast-deps would install."""
    result = script.pip(
        "install",
        "--dry-run",
        "--ignore-installed",
        "--use-feature=fast-deps",
        "--index-url",
        f"http://{server.host}:{server.port}/simple/",
        "--quiet",
        "--report",
        "-",
        *args,
        "pkga",
    )
    report = json.loads(result.stdout)
    return sorted(
        f"{item['metadata']['name']}=={item['metadata']['version']}"
        for item in report["install"]
    )


def test_resolution_reads_only_metadata_with_one_range_each(
    script: PipTestEnvironment,
) -> None:
    wheels = two_wheels(script)
    server = serve_index(wheels)

    with server_running(server):
        resolved = resolve(script, server, "--no-cache-dir")

    assert resolved == ["pkga==1.0", "pkgb==2.0"]
    assert file_requests(server) == [(wheel.name, SUFFIX) for wheel in wheels]


def test_metadata_is_cached_so_a_second_resolution_reads_no_file(
    script: PipTestEnvironment, tmp_path: pathlib.Path
) -> None:
    wheels = two_wheels(script)
    server = serve_index(wheels)
    cache = ["--cache-dir", str(tmp_path / "cache")]

    with server_running(server):
        first = resolve(script, server, *cache)
        requests_of_first = file_requests(server)
        second = resolve(script, server, *cache)

    assert first == second == ["pkga==1.0", "pkgb==2.0"]
    assert requests_of_first == [(wheel.name, SUFFIX) for wheel in wheels]
    assert file_requests(server) == requests_of_first


def test_download_fetches_each_chosen_file_once_in_full(
    script: PipTestEnvironment, tmp_path: pathlib.Path
) -> None:
    wheels = two_wheels(script)
    server = serve_index(wheels)
    target = tmp_path / "downloads"

    with server_running(server):
        script.pip(
            "download",
            "--use-feature=fast-deps",
            "--fast-deps-jobs=2",
            "--no-cache-dir",
            "--index-url",
            f"http://{server.host}:{server.port}/simple/",
            "--dest",
            str(target),
            "pkga",
        )

    for wheel in wheels:
        assert (target / wheel.name).read_bytes() == wheel.read_bytes()
    assert sorted(path.name for path in target.iterdir()) == [w.name for w in wheels]
    assert file_requests(server) == sorted(
        (wheel.name, header) for wheel in wheels for header in ("", SUFFIX)
    )


def test_prefetching_is_reported_and_changes_no_result(
    script: PipTestEnvironment,
) -> None:
    wheels = two_wheels(script)
    server = serve_index(wheels)

    with server_running(server):
        result = script.pip(
            "install",
            "--dry-run",
            "--ignore-installed",
            "--use-feature=fast-deps",
            "--no-cache-dir",
            "--index-url",
            f"http://{server.host}:{server.port}/simple/",
            "-v",
            "pkga",
        )

    assert "Would install pkga-1.0 pkgb-2.0" in result.stdout
    # How much the prefetcher fetched before the resolver asked depends on
    # timing; that all of it was used and nothing failed does not.
    summary = re.compile(
        r"fast-deps prefetch: \d+ project pages \(0 unused\), "
        r"\d+ metadata files \(0 unused\), 0 failed$",
        re.MULTILINE,
    )
    assert summary.search(result.stdout)


def test_metadata_that_the_downloaded_wheel_contradicts_stops_the_install(
    script: PipTestEnvironment, tmp_path: pathlib.Path
) -> None:
    # The ranges come from a pkga without dependencies, the whole file (the
    # one the index's hash vouches for) from a pkga that needs pkgb.
    ranged = tmp_path / "ranged" / "pkga-1.0-py2.py3-none-any.whl"
    ranged.parent.mkdir()
    ranged.write_bytes(
        create_basic_wheel_for_package(script, "pkga", "1.0").read_bytes()
    )
    wheels = two_wheels(script)
    server = serve_index(wheels)
    routes = server.mock.side_effect
    ranges_of_other_file = ranged_file_response(ranged)

    def answer(environ: dict[str, str], start_response: object) -> object:
        if environ.get("HTTP_RANGE") and environ["PATH_INFO"].endswith(ranged.name):
            return ranges_of_other_file
        return routes(environ, start_response)

    server.mock.side_effect = answer
    with server_running(server):
        result = script.pip(
            "install",
            "--use-feature=fast-deps",
            "--no-cache-dir",
            "--index-url",
            f"http://{server.host}:{server.port}/simple/",
            "pkga",
            expect_error=True,
        )

    assert (
        "The metadata pip resolved with for pkga-1.0-py2.py3-none-any.whl does not "
        "match the METADATA inside the downloaded file."
    ) in result.stderr
    assert "Requires-Dist was" in result.stderr
    script.assert_not_installed("pkga")

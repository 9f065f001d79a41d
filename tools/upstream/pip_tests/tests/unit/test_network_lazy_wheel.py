"""Request counts of the lazy wheel against a server that serves ranges."""

import itertools
from typing import Any

import pytest

from pip._vendor.packaging.utils import canonicalize_name
from pip._vendor.packaging.version import Version

from pip._internal.network.lazy_wheel import (
    HTTPRangeRequestUnsupported,
    dist_from_wheel_url,
)
from pip._internal.network.session import PipSession

from tests.lib import TestData
from tests.lib.server import MockServer, file_response, ranged_file_response


def serve_ranges(mock_server: MockServer, responder: Any, name: str) -> str:
    mock_server.set_responses(itertools.repeat(responder))
    mock_server.start()
    return f"http://{mock_server.host}:{mock_server.port}/{name}"


def ranges_asked(mock_server: MockServer) -> list[tuple[str, str | None]]:
    mock_server.stop()
    return [
        (request["REQUEST_METHOD"], request.get("HTTP_RANGE"))
        for request in mock_server.get_requests()
    ]


def test_a_small_wheel_takes_one_request_and_no_head(
    session: PipSession, mock_server: MockServer, shared_data: TestData
) -> None:
    name = "simplewheel-2.0-py2.py3-none-any.whl"
    responder = ranged_file_response(shared_data.packages / name)
    url = serve_ranges(mock_server, responder, name)

    dist = dist_from_wheel_url(canonicalize_name("simplewheel"), url, session)

    assert dist.version == Version("2.0")
    assert ranges_asked(mock_server) == [("GET", "bytes=-131072")]


def test_a_large_central_directory_takes_one_more_request(
    session: PipSession, mock_server: MockServer, shared_data: TestData
) -> None:
    name = "mypy-0.782-py3-none-any.whl"
    url = serve_ranges(
        mock_server, ranged_file_response(shared_data.packages / name), name
    )

    dist = dist_from_wheel_url(canonicalize_name("mypy"), url, session)

    assert {str(d) for d in dist.iter_dependencies(["dmypy"])} == MYPY_0_782_REQS
    # The end of the file, then the rest of the central directory, which
    # holds METADATA's entry; METADATA itself came with the first answer.
    assert ranges_asked(mock_server) == [
        ("GET", "bytes=-131072"),
        ("GET", "bytes=2149434-2221607"),
    ]


def test_a_wrong_content_range_is_not_trusted(
    session: PipSession, mock_server: MockServer, shared_data: TestData
) -> None:
    name = "simplewheel-2.0-py2.py3-none-any.whl"
    responder = ranged_file_response(shared_data.packages / name, claimed_start=1)
    url = serve_ranges(mock_server, responder, name)

    with pytest.raises(HTTPRangeRequestUnsupported):
        dist_from_wheel_url(canonicalize_name("simplewheel"), url, session)
    assert ranges_asked(mock_server) == [("GET", "bytes=-131072")]


def test_a_server_without_ranges_costs_one_request(
    session: PipSession, mock_server: MockServer, shared_data: TestData
) -> None:
    name = "mypy-0.782-py3-none-any.whl"
    url = serve_ranges(mock_server, file_response(shared_data.packages / name), name)

    with pytest.raises(HTTPRangeRequestUnsupported):
        dist_from_wheel_url(canonicalize_name("mypy"), url, session)
    assert ranges_asked(mock_server) == [("GET", "bytes=-131072")]

"""Request counts of the lazy wheel against a server that serves ranges."""

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from pip._vendor.packaging.utils import canonicalize_name
from pip._vendor.packaging.version import Version

from pip._internal.network.lazy_wheel import (
    HTTPRangeRequestUnsupported,
    dist_from_wheel_url,
)
from pip._internal.network.session import PipSession

from tests.lib import TestData
from tests.lib.server import MockServer, file_response

Responder = Callable[[dict[str, Any], Callable[..., Any]], list[bytes]]


def ranged_file_response(path: Path, claimed_start: int | None = None) -> Responder:
    """Answer as a server that serves ranges: 206 and the bytes of one range
    (``first-last`` or ``-suffix``), 200 and the whole file without one.

    ``claimed_start`` makes the Content-Range header lie about where the
    bytes start, as a broken proxy might.
    """
    data = path.read_bytes()

    def responder(
        environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> list[bytes]:
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", environ.get("HTTP_RANGE", ""))
        if match is None or not any(match.groups()):
            start_response("200 OK", [("Content-Length", str(len(data)))])
            return [data]
        first, last = match.groups()
        if first:
            start = int(first)
            end = min(int(last) if last else len(data) - 1, len(data) - 1)
        else:
            start, end = max(len(data) - int(last), 0), len(data) - 1
        shown_start = start if claimed_start is None else claimed_start
        start_response(
            "206 Partial Content",
            [
                ("Content-Range", f"bytes {shown_start}-{end}/{len(data)}"),
                ("Content-Length", str(end + 1 - start)),
            ],
        )
        return [data[start : end + 1]]

    return responder


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

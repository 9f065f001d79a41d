"""fastdeps.network.limits: bodies read with a cap."""

from __future__ import annotations

import pytest
from pip._internal.network.session import PipSession
from pip._internal.network.utils import HEADERS

from fastdeps.network.limits import LimitExceeded, check_limit, read_limited
from tests.lib.server import FileServer

BODY = b"x" * (1024 * 1024)


def test_a_declared_length_past_the_limit_is_refused_before_the_body(
    file_server: FileServer, pip_session: PipSession
) -> None:
    url = file_server.add_file("/big.metadata", BODY)
    with pip_session.get(url, headers=HEADERS, stream=True) as response:
        with pytest.raises(LimitExceeded, match="the body is 1,048,576 bytes"):
            read_limited(response, len(BODY) - 1, "the body")
        assert response.raw.tell() == 0


def test_a_body_without_a_length_stops_past_the_limit(
    file_server: FileServer, pip_session: PipSession
) -> None:
    url = file_server.add_file("/big.metadata", BODY)
    with pip_session.get(url, headers=HEADERS, stream=True) as response:
        del response.headers["Content-Length"]
        with pytest.raises(LimitExceeded, match="over the limit of 100,000 bytes"):
            read_limited(response, 100_000, "the body")
        assert 100_000 < response.raw.tell() < len(BODY)


def test_a_body_at_the_limit_is_read(
    file_server: FileServer, pip_session: PipSession
) -> None:
    url = file_server.add_file("/big.metadata", BODY)
    with pip_session.get(url, headers=HEADERS, stream=True) as response:
        assert read_limited(response, len(BODY), "the body") == BODY


def test_check_limit_names_the_size_and_the_unit() -> None:
    check_limit(10, 10, "a size")
    with pytest.raises(LimitExceeded) as excinfo:
        check_limit(11, 10, "the count", unit="entries")
    assert str(excinfo.value) == "the count is 11 entries, over the limit of 10 entries"

"""fastdeps.network.utils: what of a URL or an error a message may show."""

from __future__ import annotations

import errno

import pytest
from pip._internal.exceptions import NetworkConnectionError
from pip._internal.network.session import PipSession
from pip._internal.network.utils import raise_for_status
from pip._vendor.requests.exceptions import ConnectionError as RequestsConnectionError

from fastdeps.network.utils import loggable_error, loggable_url
from tests.lib.server import FileServer

SECRET = "Canary7f3aS3cr3t"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            f"https://alice:{SECRET}@host:8443/simple/f.whl",
            "https://alice:****@host:8443/simple/f.whl",
        ),
        (f"https://{SECRET}@host/f.whl", "https://****@host/f.whl"),
        (
            f"https://bucket.s3.amazonaws.com/f.whl?X-Amz-Signature={SECRET}",
            "https://bucket.s3.amazonaws.com/f.whl",
        ),
        ("https://host/f.whl#sha256=" + "0" * 64, "https://host/f.whl"),
        ("http://127.0.0.1:8000/files/f.whl", "http://127.0.0.1:8000/files/f.whl"),
    ],
    ids=["password", "token", "query", "fragment", "plain"],
)
def test_loggable_url_is_scheme_host_and_path(url: str, shown: str) -> None:
    assert loggable_url(url) == shown


def test_loggable_error_of_an_http_answer_is_its_type_and_status(
    file_server: FileServer, pip_session: PipSession
) -> None:
    response = pip_session.get(file_server.url(f"/missing.whl?sig={SECRET}"))
    with pytest.raises(NetworkConnectionError) as caught:
        raise_for_status(response)

    assert SECRET in str(caught.value)
    assert loggable_error(caught.value) == "NetworkConnectionError (HTTP 404)"


def test_loggable_error_leaves_out_the_request_in_requests_text() -> None:
    error = RequestsConnectionError(
        f"Max retries exceeded with url: /f.whl?X-Amz-Signature={SECRET}"
    )

    assert loggable_error(error) == "ConnectionError"


def test_loggable_error_keeps_an_operating_system_description() -> None:
    error = OSError(errno.ENOSPC, "No space left on device", f"/tmp/{SECRET}")

    assert loggable_error(error) == "OSError: No space left on device"

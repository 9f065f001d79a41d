"""``python -m fastdeps metadata``: output, statistics and one-line errors."""

from __future__ import annotations

import pytest

from fastdeps.__main__ import main
from fastdeps.network.lazy_wheel import FIRST_REQUEST_SIZE
from tests.lib.server import FileServer
from tests.lib.wheels import build_wheel, metadata_text, not_a_zip

METADATA = metadata_text("demo", "1.0", requires_dist=["idna>=3"])


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command builds its own session, which honours proxy variables."""
    for variable in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


def test_prints_metadata_and_stats(
    file_server: FileServer, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    wheel = build_wheel(metadata=METADATA, payload_size=2 * FIRST_REQUEST_SIZE)
    url = file_server.add_file("/demo-1.0-py3-none-any.whl", wheel)

    assert main(["metadata", "--stats", "--retries", "0", url]) == 0
    out, err = capsysbinary.readouterr()
    assert out == METADATA
    assert err == f"1 request, {FIRST_REQUEST_SIZE:,} bytes\n".encode()


def test_without_stats_prints_only_metadata(
    file_server: FileServer, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    url = file_server.add_file(
        "/demo-1.0-py3-none-any.whl", build_wheel(metadata=METADATA)
    )

    assert main(["metadata", url]) == 0
    assert capsysbinary.readouterr() == (METADATA, b"")


@pytest.mark.parametrize(
    ("path", "data", "behaviour", "error"),
    [
        (
            "/demo-1.0.tar.gz",
            b"",
            {},
            "ERROR: 'demo-1.0.tar.gz' is not a wheel filename: ",
        ),
        (
            "/demo-1.0-py3-none-any.whl",
            not_a_zip(),
            {},
            "ERROR: Wheel 'demo' located at {url} is invalid: File is not a zip file",
        ),
        (
            "/demo-1.0-py3-none-any.whl",
            build_wheel(),
            {"ignore_ranges": True},
            "ERROR: cannot read {url} with range requests: 127.0.0.1:",
        ),
    ],
    ids=["not-a-wheel-name", "not-a-zip", "no-ranges"],
)
def test_errors_are_one_line_on_stderr(
    file_server: FileServer,
    capsys: pytest.CaptureFixture[str],
    path: str,
    data: bytes,
    behaviour: dict[str, object],
    error: str,
) -> None:
    file_server.behave(**behaviour)
    url = file_server.add_file(path, data)

    assert main(["metadata", "--retries", "0", url]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(error.format(url=url))
    assert err.count("\n") == 1

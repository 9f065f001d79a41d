"""``python -m fastdeps metadata``: output, statistics and one-line errors."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(autouse=True)
def pip_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Path]:
    """A pip configuration file of the test's own, empty unless it writes one,
    and the root logger as it was: the command sets up pip's logging."""
    for variable in [name for name in os.environ if name.startswith("PIP_")]:
        monkeypatch.delenv(variable)
    config = tmp_path / "pip.conf"
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield config
    root.handlers[:] = handlers
    root.setLevel(level)


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


def test_index_credentials_from_pips_configuration_are_used(
    file_server: FileServer,
    pip_configuration: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    """As for ``pip download``: credentials in pip.conf's index URL are sent
    to the files on the index's host."""
    url = file_server.add_file(
        "/files/demo-1.0-py3-none-any.whl", build_wheel(metadata=METADATA)
    )
    file_server.behave(auth=("user", "s3cret"))
    index = file_server.base_url.replace("//", "//user:s3cret@") + "/simple/"
    pip_configuration.write_text(f"[global]\nindex-url = {index}\n")

    assert main(["metadata", "--retries", "0", url]) == 0
    assert capsysbinary.readouterr().out == METADATA
    assert [(e.status, e.sent_authorization) for e in file_server.log] == [(206, True)]


def test_a_proxy_from_pips_configuration_is_used(
    file_server: FileServer,
    second_file_server: FileServer,
    pip_configuration: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    path = "/files/demo-1.0-py3-none-any.whl"
    second_file_server.add_file(path, build_wheel(metadata=METADATA))
    pip_configuration.write_text(f"[global]\nproxy = {second_file_server.base_url}\n")

    assert main(["metadata", "--retries", "0", file_server.url(path)]) == 0
    assert capsysbinary.readouterr().out == METADATA
    assert file_server.log == []
    assert [entry.path for entry in second_file_server.log] == [path]


def test_help_names_the_metadata_command_before_pips_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])

    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert out.startswith("Usage:\n  python -m fastdeps metadata [options] <wheel URL>")
    assert "pip's own help follows." in out
    assert "\nCommands:\n" in out  # pip's

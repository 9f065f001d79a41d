"""fastdeps.operations.metadata: where a candidate's metadata comes from."""

from __future__ import annotations

import hashlib
import logging

import pytest
from pip._internal.models.link import Link, MetadataFile
from pip._internal.network.session import PipSession

from fastdeps.cache import NullMetadataCache
from fastdeps.operations.metadata import (
    FROM_LAZY_WHEEL,
    FROM_PEP_658,
    MetadataFetcher,
)
from tests.lib.server import FileServer
from tests.lib.wheels import build_wheel, metadata_text, not_a_zip, wheel_filename

FILENAME = wheel_filename("demo", "1.0")


def fetcher(session: PipSession) -> MetadataFetcher:
    return MetadataFetcher(session, NullMetadataCache())


def test_a_wheel_without_a_metadata_file_is_read_with_one_range(
    file_server: FileServer, pip_session: PipSession
) -> None:
    url = file_server.add_file(
        f"/files/{FILENAME}", build_wheel("demo", "1.0", requires_dist=["leaf"])
    )

    fetched = fetcher(pip_session).fetch(Link(url))

    assert fetched is not None
    assert fetched.source == FROM_LAZY_WHEEL
    assert b"\nRequires-Dist: leaf\n" in fetched.contents
    assert [entry.range for entry in file_server.log] == ["bytes=-131072"]


@pytest.mark.parametrize(
    ("behaviour", "data", "reason"),
    [
        ({"ignore_ranges": True}, None, "range requests are unusable"),
        ({}, not_a_zip(), "the ranges do not read as a wheel"),
        ({"range_status": 500}, None, "range requests are unusable"),
    ],
)
def test_a_failed_lazy_read_is_none_and_a_debug_line(
    behaviour: dict[str, object],
    data: bytes | None,
    reason: str,
    file_server: FileServer,
    pip_session: PipSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="fastdeps")
    file_server.behave(**behaviour)
    url = file_server.add_file(f"/files/{FILENAME}", data or build_wheel())

    assert fetcher(pip_session).fetch(Link(url)) is None
    (line,) = [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("Lazy wheel failed for ")
    ]
    assert line.startswith(f"Lazy wheel failed for {url}: {reason}")
    assert all(record.levelno == logging.DEBUG for record in caplog.records)


@pytest.mark.parametrize("path", ["/files/demo-1.0.tar.gz", "/files/demo.zip"])
def test_only_remote_wheels_are_read(
    path: str, file_server: FileServer, pip_session: PipSession
) -> None:
    url = file_server.add_file(path, b"not a wheel")

    assert fetcher(pip_session).fetch(Link(url)) is None
    assert file_server.log == []


def pep_658_link(file_server: FileServer, metadata: bytes, listed: bytes) -> Link:
    """A wheel link whose index names a .metadata file with ``listed``'s hash."""
    url = file_server.add_file(f"/files/{FILENAME}", build_wheel())
    file_server.add_file(f"/files/{FILENAME}.metadata", metadata)
    digest = hashlib.sha256(listed).hexdigest()
    return Link(url, metadata_file_data=MetadataFile({"sha256": digest}))


def test_a_pep_658_file_is_used_and_the_wheel_left_alone(
    file_server: FileServer, pip_session: PipSession
) -> None:
    metadata = metadata_text("demo", "1.0", requires_dist=["leaf"])
    link = pep_658_link(file_server, metadata, listed=metadata)

    fetched = fetcher(pip_session).fetch(link)

    assert fetched is not None
    assert (fetched.source, fetched.contents) == (FROM_PEP_658, metadata)
    assert [entry.path for entry in file_server.log] == [f"/files/{FILENAME}.metadata"]


def test_a_pep_658_file_with_the_wrong_hash_is_left_to_pip(
    file_server: FileServer, pip_session: PipSession
) -> None:
    # pip's own PEP 658 path then reports the mismatch; the lazy wheel is
    # not tried instead, as stock pip does not try it either.
    metadata = metadata_text("demo", "1.0")
    link = pep_658_link(file_server, metadata, listed=b"something else")

    assert fetcher(pip_session).fetch(link) is None
    assert [entry.path for entry in file_server.log] == [f"/files/{FILENAME}.metadata"]


def test_a_failure_is_logged_without_a_redirect_targets_query(
    file_server: FileServer,
    second_file_server: FileServer,
    pip_session: PipSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The .metadata file redirects to a presigned URL, which answers 404:
    # pip's raise_for_status names that URL, signature included.
    caplog.set_level(logging.DEBUG, logger="fastdeps")
    metadata = metadata_text("demo", "1.0")
    link = pep_658_link(file_server, metadata, listed=metadata)
    file_server.behave(
        redirect_to=second_file_server.base_url,
        redirect_query="X-Amz-Signature=Canary7f3aS3cr3t",
    )

    assert fetcher(pip_session).fetch(link) is None
    assert [entry.status for entry in second_file_server.log] == [404]
    assert caplog.messages == [
        f"Metadata of {link.url_without_fragment}.metadata not read ahead of pip: "
        "NetworkConnectionError (HTTP 404)"
    ]

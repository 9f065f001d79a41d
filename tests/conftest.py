"""Fixtures shared by the whole suite: test HTTP servers and a pip session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from pip._internal.network.session import PipSession

from tests.lib.server import FileServer

#: Seconds before a request to a test server gives up: a hung test fails
#: fast instead of waiting for pip's default of 15 s per attempt.
PIP_SESSION_TIMEOUT = 10


def _serve() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server
    # A bug in the server (or a failing on_request hook) answers 500, which
    # a test of fallbacks could take for a server behaviour: fail loudly.
    assert server.errors == [], f"test server errors: {server.errors!r}"


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    """A fresh range-serving server on 127.0.0.1 (cheap: one thread)."""
    yield from _serve()


@pytest.fixture
def second_file_server() -> Iterator[FileServer]:
    """Another server on another port: a redirect target, a second host."""
    yield from _serve()


@pytest.fixture
def pip_session() -> Iterator[PipSession]:
    """pip's own HTTP session, without retries and with a short timeout.

    ``trust_env`` is off so that proxy variables and ``.netrc`` on the test
    machine cannot send a request anywhere but the test server, and pip
    never prompts for a password.
    """
    session = PipSession(retries=0)
    session.timeout = PIP_SESSION_TIMEOUT
    session.trust_env = False
    # A 401 must reach the code under test, not a password prompt.
    session.auth.prompting = False
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def fsynced(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The descriptors passed to ``os.fsync`` (which still runs)."""
    calls: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        calls.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    return calls

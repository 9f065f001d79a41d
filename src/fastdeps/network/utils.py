"""What of a URL or an error may be shown in a message.

fast-deps sends requests that pip would not send (ranges, HEAD, requests to
a redirect target), and logs why each of them failed. None of those lines
may show more than pip itself does: no password from a URL, and no query
string, which is where presigned S3, GCS and Azure URLs carry their
signature (pip never shows a redirect target). Every URL and every error
that reaches a message, an exception's text or a log record goes through
:func:`loggable_url` or :func:`loggable_error`.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from pip._internal.utils.misc import redact_auth_from_url


def loggable_url(url: str) -> str:
    """``url`` reduced to scheme, host and path, with any password redacted.

    The user name stays as pip shows it (``user:****@host``, or ``****@host``
    for a lone token); the query and the fragment are dropped.
    """
    parts = urlsplit(url)
    return redact_auth_from_url(urlunsplit((*parts[:3], "", "")))


class LoggableError(Exception):
    """An error whose text holds no secret: it is built from loggable parts.

    fast-deps' own errors derive from it, and :func:`loggable_error` shows
    their text; every URL in such a text went through :func:`loggable_url`.
    """


def loggable_error(error: BaseException) -> str:
    """What went wrong, in words that hold no password and no query.

    The text of fast-deps' own errors (:class:`LoggableError`); of any other
    error, only its kind: requests and urllib3 put the request's path and
    query in theirs ("Max retries exceeded with url: /f.whl?X-Amz-Signature=
    ..."), and pip's ``raise_for_status`` the whole URL. The type, the HTTP
    status of an answer and an operating system's error description say
    enough for a debug line.
    """
    if isinstance(error, LoggableError):
        return f"{type(error).__name__}: {error}"
    description = type(error).__name__
    status = getattr(getattr(error, "response", None), "status_code", None)
    if isinstance(status, int):
        description += f" (HTTP {status})"
    if isinstance(error, OSError) and error.strerror:
        description += f": {error.strerror}"
    return description

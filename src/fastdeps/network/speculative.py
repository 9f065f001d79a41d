"""Requests that pip did not ask for: bounded, and never taken for an answer.

The prefetcher (:mod:`fastdeps.resolution.prefetch`) sends requests ahead of
pip's resolver, from threads of its own, over pip's session. Such a request
must never cost what stock pip's requests cost, and its failure must never
stand in for the answer pip's own request would get. While
:class:`SpeculativeRequests` is installed on a session, a request from a
speculative thread (:func:`mark_speculative_thread`):

- waits at most :data:`SPECULATIVE_TIMEOUT` seconds for a connection or a
  byte, is never retried, and uses connections of its own (pip's pools are
  left as they are, for pip's own requests);
- never prompts for a password nor asks keyring: a 401 stays a 401;
- is *abandoned* when it fails or is refused (a 401, 403, 407, 429 or 5xx
  answer, a timeout, a reset): :class:`SpeculationAbandoned` is raised out
  of the session, through whatever code sent the request. Nothing on the
  way (pip's collector, which turns a failed page into "no files" and caches
  that; the lazy wheel, which learns what a host can do from its errors)
  sees an answer, so nothing is cached or learnt from it, and the caller
  that needs the item sends pip's own request, with pip's timeout, retries,
  prompts and keyring, exactly as stock pip would;
- is abandoned as soon as it is sent once the requests have been closed
  (the resolution is over);
- stops being speculative once the resolver waits for the item it serves
  (:func:`serving`): it is then sent again, or from the start, as pip's own
  request, with pip's timeout, retries and connections, and its failure is
  the answer, as stock pip's would be. Only a refusal that asks for
  credentials (401, 403, 407) is still abandoned, so that the resolver's
  own request can prompt or ask keyring.

Requests from every other thread go through unchanged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Callable

from pip._internal.network.session import PipSession
from pip._vendor.requests.adapters import BaseAdapter, HTTPAdapter
from pip._vendor.requests.models import PreparedRequest, Response
from pip._vendor.urllib3.util.retry import Retry

from fastdeps.seams import session_sending_through

logger = logging.getLogger(__name__)

#: Seconds a speculative request waits to connect, or for the next byte.
#: Ample on any working network (the bench's 50 ms link answers in 0.1 s);
#: a black-holed host costs a speculative job this once, instead of pip's
#: 15 s times 5 retries.
SPECULATIVE_TIMEOUT = 5.0

#: Answers that refuse rather than answer: authentication (401, 407), a
#: denial that may depend on credentials (403), rate limits (429) and
#: server errors (5xx). pip retries, prompts or asks keyring for these.
_REFUSALS = frozenset((401, 403, 407, 429))
#: Refusals that only the resolver's own request may answer (it may prompt).
_ASKS_FOR_CREDENTIALS = frozenset((401, 403, 407))

_thread = threading.local()


class SpeculationAbandoned(BaseException):
    """A speculative request failed, was refused, or is no longer wanted.

    A :class:`BaseException`, as :class:`asyncio.CancelledError` is, so that
    the ``except Exception`` clauses between the session and the speculative
    job (pip's collector, the lazy wheel, the metadata fetcher) let it
    through instead of turning it into an answer.
    """


def mark_speculative_thread(is_over: Callable[[], bool] = lambda: False) -> None:
    """Make every request sent from the calling thread speculative.

    :param is_over: says when the work the thread does is no longer wanted
        (:func:`abandon_if_over`).
    """
    _thread.speculative = True
    _thread.is_over = is_over


def in_speculative_thread() -> bool:
    return getattr(_thread, "speculative", False)


@contextmanager
def serving(is_awaited: Callable[[], bool]) -> Iterator[None]:
    """Run the ``with`` block for one item, which the resolver may wait for.

    :param is_awaited: says whether the resolver now waits for the item:
        from then on the thread's requests are pip's own (see the module).
    """
    previous = getattr(_thread, "is_awaited", None)
    _thread.is_awaited = is_awaited
    try:
        yield
    finally:
        _thread.is_awaited = previous


def _awaited() -> bool:
    is_awaited: Callable[[], bool] | None = getattr(_thread, "is_awaited", None)
    return is_awaited is not None and is_awaited()


def abandon_if_over() -> None:
    """In a speculative thread whose work is no longer wanted, abandon it.

    For loops that read a long answer (a whole wheel): a request sent after
    the end is abandoned by :class:`SpeculativeRequests`, a body being read
    is abandoned here, between two pieces.

    :raises SpeculationAbandoned: when the work is over.
    """
    is_over: Callable[[], bool] | None = getattr(_thread, "is_over", None)
    if in_speculative_thread() and is_over is not None and is_over():
        raise SpeculationAbandoned("the resolution is over")


def _is_refusal(status: int) -> bool:
    return status in _REFUSALS or status >= 500


def _bounded_timeout(timeout: Any) -> Any:
    if isinstance(timeout, (int, float)):
        return min(float(timeout), SPECULATIVE_TIMEOUT)
    if timeout is None:
        return SPECULATIVE_TIMEOUT
    return timeout  # a (connect, read) pair set by the caller: theirs


def _speculative_adapter(adapter: HTTPAdapter, pool_size: int) -> HTTPAdapter:
    """A copy of one of pip's adapters, without retries, with its own pool.

    Its certificates, TLS context, HTTP cache and trusted-host settings are
    the original's; only the retries and the connections are its own.
    """
    copy: HTTPAdapter = object.__new__(type(adapter))
    copy.__dict__.update(adapter.__dict__)
    copy.max_retries = Retry(0, read=False)
    copy.proxy_manager = {}
    copy.init_poolmanager(pool_size, pool_size, block=False)
    return copy


class SpeculativeRequests:
    """Speculative threads' requests over ``session``, bounded and abandonable.

    :meth:`install` replaces the session's ``send`` and ``get_adapter`` on
    the instance; :meth:`uninstall` puts them back and closes the
    speculative connections. pip's authentication is left alone: the 401
    handler it hooks onto each request is taken off a speculative one.

    :param pool_size: connections per host for the speculative threads.
    """

    def __init__(self, session: PipSession, pool_size: int) -> None:
        self._session = session
        self._pool_size = pool_size
        self._lock = threading.Lock()
        self._adapters: dict[int, HTTPAdapter] = {}
        self._closed = False
        self._send: Callable[..., Response] = session.send
        self._get_adapter: Callable[..., BaseAdapter] = session.get_adapter
        self._replacements = ExitStack()

    def install(self) -> None:
        self._replacements.enter_context(
            session_sending_through(
                self._session, self._speculative_send, self._adapter_for
            )
        )

    def close(self) -> None:
        """Abandon every speculative request sent from now on."""
        self._closed = True

    def uninstall(self) -> None:
        """Give pip its session back, and close the speculative connections."""
        self.close()
        self._replacements.close()
        with self._lock:
            adapters, self._adapters = list(self._adapters.values()), {}
        for adapter in adapters:
            # HTTPAdapter's own close: a CacheControlAdapter would also close
            # the HTTP cache, which is pip's.
            HTTPAdapter.close(adapter)

    def _speculative_send(self, request: PreparedRequest, **kwargs: Any) -> Response:
        if not in_speculative_thread():
            return self._send(request, **kwargs)
        if self._closed:
            raise SpeculationAbandoned("the resolution is over")
        self._without_401_handler(request)
        if _awaited():
            return self._send_as_pip(request, kwargs)
        bounded = {**kwargs, "timeout": _bounded_timeout(kwargs.get("timeout"))}
        try:
            response = self._send(request, **bounded)
        except Exception as exc:
            if _awaited():
                return self._send_as_pip(request, kwargs)
            raise SpeculationAbandoned(type(exc).__name__) from exc
        if _is_refusal(response.status_code):
            response.close()
            if _awaited() and response.status_code not in _ASKS_FOR_CREDENTIALS:
                return self._send_as_pip(request, kwargs)
            raise SpeculationAbandoned(f"HTTP {response.status_code}")
        return response

    def _send_as_pip(self, request: PreparedRequest, kwargs: Any) -> Response:
        """The request as pip sends it, for an item the resolver waits for.

        pip's timeout, retries and connections; whatever happens is the
        answer, except a refusal that asks for credentials.
        """
        # Kept as it was: requests sends each redirect through send() again.
        previous = getattr(_thread, "as_pip", False)
        _thread.as_pip = True
        try:
            response = self._send(request, **kwargs)
        finally:
            _thread.as_pip = previous
        if response.status_code in _ASKS_FOR_CREDENTIALS:
            response.close()
            raise SpeculationAbandoned(f"HTTP {response.status_code}")
        return response

    def _adapter_for(self, url: str) -> BaseAdapter:
        adapter = self._get_adapter(url=url)
        speculative = in_speculative_thread() and not getattr(_thread, "as_pip", False)
        if not speculative or not isinstance(adapter, HTTPAdapter):
            return adapter
        with self._lock:
            copy = self._adapters.get(id(adapter))
            if copy is None:
                copy = _speculative_adapter(adapter, self._pool_size)
                self._adapters[id(adapter)] = copy
            return copy

    def _without_401_handler(self, request: PreparedRequest) -> None:
        """Take pip's 401 handler off ``request``: it may prompt or ask keyring.

        pip's authentication hooks ``auth.handle_401`` onto every request it
        sees; without it, a 401 stays a 401, and the request is abandoned.
        """
        auth = self._session.auth
        handler = getattr(auth, "handle_401", None)
        request.hooks["response"] = [
            hook
            for hook in request.hooks.get("response", [])
            if hook != handler and getattr(hook, "__self__", None) is not auth
        ]

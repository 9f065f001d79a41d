"""Attributes of pip's objects replaced for a while, and then restored.

Three parts of fast-deps change one of pip's objects for as long as they
run, each through one of these context managers:

* :func:`finder_candidates_from`: the prefetcher answers the finder's
  ``find_all_candidates`` from the pages it fetched ahead;
* :func:`session_sending_through`: speculative requests go through their
  own connection pools and can be abandoned;
* :func:`auth_handling_401_with`: parallel downloads ask for credentials
  one at a time.

Each is built on :func:`replaced`, so that each change is undone exactly,
even when an error cuts the run short.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any


@contextmanager
def replaced(owner: object, name: str, value: object) -> Iterator[None]:
    """``owner.name`` is ``value`` inside the ``with`` block, restored after.

    An attribute the owner's class provides (a method, say) is set on the
    owner for the block and then deleted, so that the class's shows again.
    """
    own = vars(owner) if hasattr(owner, "__dict__") else {}
    had_own = name in own
    previous = own.get(name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        if had_own:
            setattr(owner, name, previous)
        else:
            delattr(owner, name)


def finder_candidates_from(
    finder: object, find_all_candidates: Callable[[str], Any]
) -> AbstractContextManager[None]:
    """``finder.find_all_candidates`` is ``find_all_candidates`` meanwhile."""
    return replaced(finder, "find_all_candidates", find_all_candidates)


@contextmanager
def session_sending_through(
    session: object, send: Callable[..., Any], get_adapter: Callable[..., Any]
) -> Iterator[None]:
    """``session`` sends with ``send`` and picks adapters with ``get_adapter``."""
    with ExitStack() as stack:
        stack.enter_context(replaced(session, "send", send))
        stack.enter_context(replaced(session, "get_adapter", get_adapter))
        yield


def auth_handling_401_with(
    auth: object, handle_401: Callable[..., Any]
) -> AbstractContextManager[None]:
    """``auth.handle_401`` (pip's ``MultiDomainBasicAuth``) is ``handle_401``."""
    return replaced(auth, "handle_401", handle_401)

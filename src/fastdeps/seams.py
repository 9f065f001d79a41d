"""Attributes of pip's objects replaced for a while, and then restored.

The prefetcher (a finder's ``find_all_candidates``), the speculative
requests (a session's ``send`` and ``get_adapter``) and the parallel
downloads (the session's 401 handler) each change one of pip's objects for
as long as they run; :func:`replaced` is how, so that each change is undone
exactly, even when an error cuts the run short.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


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

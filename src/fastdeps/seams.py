"""The two ways pip-fastdeps replaces an attribute of pip's at run time.

Every replacement goes through one of them, so that each is either undone
(:func:`replaced`) or made once and marked (:func:`wrap`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

#: The attribute of a wrapper that holds what it wraps.
WRAPPED = "_fastdeps_original"


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


def wrap(
    owner: object, name: str, make_wrapper: Callable[[Callable[..., Any]], Any]
) -> None:
    """Replace ``owner.name`` by ``make_wrapper(original)``, once per process.

    The wrapper carries the original under :data:`WRAPPED`, which makes this
    idempotent: a second call finds it and changes nothing.
    """
    current = vars(owner)[name] if name in vars(owner) else getattr(owner, name)
    function = getattr(current, "__func__", current)
    if hasattr(function, WRAPPED):
        return
    wrapper = make_wrapper(function)
    inner = getattr(wrapper, "__func__", wrapper)
    setattr(inner, WRAPPED, function)
    setattr(owner, name, wrapper)

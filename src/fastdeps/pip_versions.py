"""Which pip releases pip-fastdeps runs with, and what it says on the others."""

from __future__ import annotations

import os
import sys

# Oldest and newest (major, minor) pip releases whose internals pip-fastdeps
# has been checked against; setup.cfg pins the same range.
OLDEST_PIP = (24, 1)
NEWEST_PIP = (26, 3)

FEATURE = "fast-deps"
ENV_FEATURES = "PIP_USE_FEATURE"

_warned = False


def pip_version() -> tuple[int, int]:
    """(major, minor) of the pip that is imported, without importing pip's CLI."""
    import pip

    parts = pip.__version__.split(".")
    return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)


def is_supported(version: tuple[int, int]) -> bool:
    return OLDEST_PIP <= version <= NEWEST_PIP


def fast_deps_requested() -> bool:
    """Whether this process asked for fast-deps, as far as can be told early.

    Only used to decide whether a warning is worth printing: a pip that
    runs without the feature is none of our business.
    """
    in_argv = any(FEATURE in argument for argument in sys.argv[1:])
    return in_argv or FEATURE in os.environ.get(ENV_FEATURES, "")


def warn_unsupported(version: tuple[int, int]) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    sys.stderr.write(
        f"WARNING: pip-fastdeps supports pip {OLDEST_PIP[0]}.{OLDEST_PIP[1]} to "
        f"{NEWEST_PIP[0]}.{NEWEST_PIP[1]}, not {version[0]}.{version[1]}; "
        "pip runs without it.\n"
    )

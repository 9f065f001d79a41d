"""The option pip-fastdeps adds to ``install``, ``download``, ``wheel`` and
``lock``, declared as pip declares its own."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from optparse import Option

# Ten is the size of the connection pool that pip's session keeps per host:
# past it, urllib3 opens connections only to throw them away. Eight leaves
# room for the resolver's own requests and still saturates a typical link.
DEFAULT_DOWNLOAD_JOBS = 8

# pip's configuration applies as to any of its options: --fast-deps-jobs,
# PIP_FAST_DEPS_JOBS, fast-deps-jobs in pip.conf.
fast_deps_jobs: Callable[..., Option] = partial(
    Option,
    "--fast-deps-jobs",
    dest="fast_deps_jobs",
    type="int",
    metavar="N",
    default=DEFAULT_DOWNLOAD_JOBS,
    help=(
        "With --use-feature=fast-deps (pip-fastdeps): download at most N "
        "files at the same time (default: %default)."
    ),
)

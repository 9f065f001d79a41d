"""The one option pip-fastdeps adds to pip's ``install``, ``download``, ``wheel``
and ``lock``."""

from __future__ import annotations

from optparse import Option

from fastdeps.network.download import DEFAULT_DOWNLOAD_JOBS

JOBS_OPTION = "--fast-deps-jobs"


def fast_deps_jobs() -> Option:
    # A real pip option, so pip's configuration applies to it as to any
    # other: --fast-deps-jobs, PIP_FAST_DEPS_JOBS, fast-deps-jobs in pip.conf.
    return Option(
        JOBS_OPTION,
        dest="fast_deps_jobs",
        type="int",
        metavar="N",
        default=DEFAULT_DOWNLOAD_JOBS,
        help=(
            "With --use-feature=fast-deps (pip-fastdeps): download at most N "
            "files at the same time (default: %default)."
        ),
    )

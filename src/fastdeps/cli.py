"""``python -m fastdeps metadata URL``: a remote wheel's METADATA, for scripts.

It shows what the lazy wheel does without pip's resolver around it: the
METADATA bytes on standard output and, with ``--stats``, what they cost on
standard error, so that the output can be piped as it is.
"""

from __future__ import annotations

import argparse
import logging
import sys

from pip._internal.network.session import PipSession
from pip._vendor.packaging.utils import InvalidWheelFilename, parse_wheel_filename

from fastdeps.network.lazy_wheel import (
    FetchStats,
    HTTPRangeRequestUnsupported,
    InvalidRemoteWheel,
    metadata_from_wheel_url,
    wheel_filename_of,
)

# pip's own defaults for --timeout and --retries.
DEFAULT_TIMEOUT = 15
DEFAULT_RETRIES = 5


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fastdeps metadata",
        description="Print the METADATA of a remote wheel, read with HTTP range "
        "requests instead of downloading the wheel.",
    )
    parser.add_argument("url", help="URL of a .whl file")
    parser.add_argument(
        "--stats",
        action="store_true",
        help="also print, on standard error, the requests and bytes it took",
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SEC")
    parser.add_argument("--retries", type=int, default=DEFAULT_RETRIES)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log every request"
    )
    return parser


def _project_name(url: str) -> str:
    """The project name, from the wheel filename at the end of ``url``."""
    filename = wheel_filename_of(url)
    try:
        return parse_wheel_filename(filename)[0]
    except InvalidWheelFilename as exc:
        raise _UsageError(f"{filename!r} is not a wheel filename: {exc}") from exc


class _UsageError(Exception):
    pass


def _format_stats(stats: FetchStats) -> str:
    noun = "request" if stats.requests == 1 else "requests"
    return f"{stats.requests} {noun}, {stats.bytes:,} bytes"


def main(argv: list[str]) -> int:
    """Run the command; return the exit status (pip's: 0 success, 1 error)."""
    options = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if options.verbose else logging.WARNING,
        format="%(message)s",
    )
    session = PipSession(retries=options.retries)
    session.timeout = options.timeout
    stats = FetchStats()
    try:
        name = _project_name(options.url)
        metadata = metadata_from_wheel_url(name, options.url, session, stats)
    except (_UsageError, InvalidRemoteWheel) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    except HTTPRangeRequestUnsupported as exc:
        print(
            f"ERROR: cannot read {options.url} with range requests: {exc}",
            file=sys.stderr,
        )
        return 1
    finally:
        session.close()
    sys.stdout.buffer.write(metadata)
    sys.stdout.flush()
    if options.stats:
        print(_format_stats(stats), file=sys.stderr)
    return 0

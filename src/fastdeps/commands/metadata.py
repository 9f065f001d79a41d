"""``python -m fastdeps metadata URL``: a remote wheel's METADATA, for scripts.

It shows what the lazy wheel does without pip's resolver around it: the
METADATA bytes on standard output and, with ``--stats``, what they cost on
standard error, so that the output can be piped as it is.

It is a pip command in all but name, so that it reaches a server exactly
as ``pip download`` would: pip's configuration files and ``PIP_*``
variables, and pip's general options (``--cert``, ``--client-cert``,
``--proxy``, ``--trusted-host``, ``--timeout``, ``--retries``,
``--keyring-provider``, ``-v``, ``--log``), apply to it; the credentials of
``--index-url`` and ``--extra-index-url`` are used for files under them.
Errors are pip's one-line ``ERROR:`` messages, with exit status 1.
"""

from __future__ import annotations

import sys
from optparse import Values

from pip._internal.cli import cmdoptions
from pip._internal.cli.base_command import Command
from pip._internal.cli.index_command import SessionCommandMixin
from pip._internal.cli.status_codes import SUCCESS
from pip._internal.exceptions import CommandError
from pip._vendor.packaging.utils import InvalidWheelFilename, parse_wheel_filename

from fastdeps.network.lazy_wheel import (
    metadata_from_wheel_url,
    wheel_filename_of,
)
from fastdeps.network.ranges import (
    FetchStats,
    HTTPRangeRequestUnsupported,
)
from fastdeps.network.utils import loggable_url

COMMAND_NAME = "metadata"


class MetadataCommand(Command, SessionCommandMixin):
    """Print the METADATA of a remote wheel, read with HTTP range requests."""

    usage = """
      %prog [options] <wheel URL>"""

    def add_options(self) -> None:
        self.cmd_opts.add_option(
            "--stats",
            action="store_true",
            default=False,
            help="Also print, on standard error, the requests and bytes it took.",
        )
        # Only for their credentials, which pip's session sends to files
        # under them: nothing is looked up on an index.
        self.cmd_opts.add_option(cmdoptions.index_url())
        self.cmd_opts.add_option(cmdoptions.extra_index_url())
        self.parser.insert_option_group(0, self.cmd_opts)

    def run(self, options: Values, args: list[str]) -> int:
        if len(args) != 1:
            raise CommandError("Give exactly one wheel URL.")
        (url,) = args
        name = _project_name(url)
        session = self.get_default_session(options)
        stats = FetchStats()
        try:
            metadata = metadata_from_wheel_url(name, url, session, stats)
        except HTTPRangeRequestUnsupported as exc:
            raise CommandError(
                f"cannot read {loggable_url(url)} with range requests: {exc}"
            ) from exc
        sys.stdout.buffer.write(metadata)
        sys.stdout.flush()
        if options.stats:
            sys.stderr.write(_format_stats(stats) + "\n")
        return SUCCESS


def _project_name(url: str) -> str:
    """The project name, from the wheel filename at the end of ``url``."""
    filename = wheel_filename_of(url)
    try:
        return parse_wheel_filename(filename)[0]
    except InvalidWheelFilename as exc:
        raise CommandError(f"{filename!r} is not a wheel filename: {exc}") from exc


def _format_stats(stats: FetchStats) -> str:
    noun = "request" if stats.requests == 1 else "requests"
    return f"{stats.requests} {noun}, {stats.bytes:,} bytes"


def main(argv: list[str]) -> int:
    """Run the command; return the exit status (pip's: 0 success, 1 error)."""
    command = MetadataCommand(
        COMMAND_NAME,
        "Print the METADATA of a remote wheel.",
        isolated="--isolated" in argv,
    )
    # pip's usage line says "pip metadata"; this is how it is run.
    command.parser.prog = "python -m fastdeps metadata"
    return command.main(argv)

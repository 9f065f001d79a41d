"""How many bytes a server can make fast-deps hold, whatever it claims.

Reading metadata lazily means believing sizes that a server states: the end
of central directory record of a ZIP (APPNOTE.TXT 4.3.16, ZIP64 4.3.14)
gives the central directory's size and its number of entries, the directory
gives the compressed and the inflated size of METADATA, and a PEP 658 file
is as long as the server makes it. Stock pip only trusts them for a file it
has chosen and downloaded; fast-deps reads ahead, in up to 16 threads, for
candidates that pip may never open. So each size is checked against a limit
below before the bytes are asked for, and inflating METADATA stops at its
limit. A file past a limit is no error: the fast path gives up, with one
debug line naming the limit, and pip downloads and reads the file as it
always did.

At every limit at once, one read holds at most about 70 MB: the directory's
bytes twice while :mod:`zipfile` parses them, about 500 bytes for each entry
it keeps (a 4 MiB directory of the smallest entries, 46 bytes each, has
91,000 of them, whatever the end record claims), and METADATA compressed and
inflated. The prefetcher's 16 threads together stay near 1.1 GB even then,
and real wheels take a few megabytes each.
"""

from __future__ import annotations

__all__ = [
    "CENTRAL_DIRECTORY_ENTRIES_LIMIT",
    "CENTRAL_DIRECTORY_SIZE_LIMIT",
    "METADATA_SIZE_LIMIT",
    "LimitExceeded",
    "check_limit",
    "read_limited",
]

from pip._internal.network.utils import response_chunks
from pip._vendor.requests.models import Response

from fastdeps.network.utils import LoggableError

CENTRAL_DIRECTORY_SIZE_LIMIT = 4 * 1024 * 1024
"""Bytes of a wheel's central directory.

torch's directory, the largest seen on PyPI, is 1.16 MB (12,248 entries);
the 90th percentile is 62 KiB.
"""

CENTRAL_DIRECTORY_ENTRIES_LIMIT = 70_000
"""Entries in a wheel's central directory.

torch has 12,248, the most seen on PyPI, jedi 5,626; past 65,535 entries an
archive needs a ZIP64 end record, and such archives stay readable.
:mod:`zipfile` keeps about 500 bytes per entry, so 35 MB at the limit.
"""

METADATA_SIZE_LIMIT = 4 * 1024 * 1024
"""Bytes of METADATA: compressed and inflated in a wheel, a PEP 658 file.

The largest METADATA of 114 real wheels surveyed is fonttools' (137 KiB
inflated, 49 KiB compressed); deflate does not grow text, and a stored entry
is its own size, so one limit serves both sizes. The metadata cache refuses
entries over it too, whichever path they come from.
"""


class LimitExceeded(LoggableError):
    """A size is past one of this module's limits: fall back, do not fail."""


def check_limit(size: int, limit: int, what: str, unit: str = "bytes") -> None:
    """Raise :class:`LimitExceeded` if ``size`` is over ``limit``.

    :param what: names the size and its limit in the message, which the
        caller logs at debug (``"METADATA's inflated size"``, say).
    :param unit: what ``size`` counts.
    """
    if size > limit:
        raise LimitExceeded(
            f"{what} is {size:,} {unit}, over the limit of {limit:,} {unit}"
        )


def read_limited(response: Response, limit: int, what: str) -> bytes:
    """The body of a streamed ``response``, refused as soon as it passes ``limit``.

    A ``Content-Length`` over the limit is refused before any of the body is
    read. The body is read raw, as pip's downloads read it
    (``response_chunks``), so a ``Content-Encoding`` cannot inflate it.

    :raises LimitExceeded: naming ``what``.
    """
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit():
        check_limit(int(declared), limit, what)
    body = bytearray()
    for chunk in response_chunks(response):
        body += chunk
        check_limit(len(body), limit, what)
    return bytes(body)

"""Files that appear complete or not at all, with the modes pip gives them.

pip-fastdeps writes three kinds of files: the wheels it downloads, their
copies in a download (or wheel) directory, and metadata cache entries. A
reader must never see one half-written (pip trusts a file it finds in a
download directory; a torn cache entry would be a wrong answer), so each is
written next to its final name (with pip's ``adjacent_tmp_file`` where it
must survive a crash, as a cache entry must) and moved into place with
pip's ``replace``, which retries where another process briefly holds the
file open (Windows).

``adjacent_tmp_file`` creates its file with mode 0600, as every
``tempfile.mkstemp`` does. That suits pip's HTTP cache, which sets its own
mode, but not a download: stock pip writes those with ``open(path, "wb")``,
so they get 0666 less the umask, and a wheelhouse served by a web server or
shared on a CI volume depends on that. Each writer therefore says which
mode the finished file gets (:func:`default_file_mode`, the source's mode
for a copy, or nothing for a cache entry, which sets its own).
"""

from __future__ import annotations

__all__ = [
    "atomic_write",
    "copy_atomically",
    "copy_directory_permissions",
    "default_file_mode",
    "link_or_copy_atomically",
    "set_file_mode",
]

import contextlib
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from typing import BinaryIO, cast

from pip._internal.utils.filesystem import adjacent_tmp_file, replace
from pip._internal.utils.unpacking import current_umask


def default_file_mode() -> int:
    """The mode ``open(path, "wb")`` gives a new file: 0666 less the umask.

    Reading the umask means setting it for an instant, which would change
    the mode of a file another thread creates in that instant: call this
    before starting threads, once, and hand the result to them.
    """
    return 0o666 & ~current_umask()


def set_file_mode(file: BinaryIO, mode: int) -> None:
    """Give the open ``file`` the permission bits ``mode``.

    Through the descriptor where the platform allows it, so that a name
    swapped for a symbolic link in a shared directory cannot redirect it.
    """
    if os.chmod in os.supports_fd:
        os.chmod(file.fileno(), mode)
    else:
        os.chmod(file.name, mode)


@contextlib.contextmanager
def atomic_write(
    path: str, mode: int | None = None, *, durable: bool = True
) -> Iterator[BinaryIO]:
    """A file to write that appears at ``path`` only once it is complete.

    The file is a temporary one in ``path``'s directory (a rename is only
    atomic within one file system); when the ``with`` block ends without an
    error it gets ``mode`` (when given) and replaces ``path`` in one rename,
    so a reader opens either the old file or the new one. On any error,
    Ctrl-C included, the temporary file is removed and ``path`` is left as
    it was.

    :param durable: flush the file to disk before the rename, as pip's
        ``adjacent_tmp_file`` does for its caches. False for files in pip's
        temporary directories, which stock pip writes with ``open()`` and
        deletes at exit: there a sync only makes the command wait (a few
        tenths of a second for a 50 MB wheel).
    """
    temp_name: str | None = None
    temp_file = adjacent_tmp_file if durable else _adjacent_unsynced_file
    try:
        with temp_file(path) as file:
            temp_name = file.name
            yield file
            if mode is not None:
                set_file_mode(file, mode)
        replace(temp_name, path)
    except BaseException:
        if temp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
        raise


@contextlib.contextmanager
def _adjacent_unsynced_file(path: str) -> Iterator[BinaryIO]:
    """A new file beside ``path``, closed but not synced when the block ends."""
    directory, name = os.path.split(path)
    with tempfile.NamedTemporaryFile(
        dir=directory, prefix=f".{name}.", suffix=".tmp", delete=False
    ) as file:
        yield cast(BinaryIO, file)


try:
    from pip._internal.utils.filesystem import copy_directory_permissions
except ImportError:  # pip < 25.3

    def copy_directory_permissions(directory: str, target_file: BinaryIO) -> None:
        """Give ``target_file`` what pip gives the files of its HTTP cache.

        pip 25.0 gave them the read and write bits of the cache directory
        (plus the owner's), so that one cache can serve several users, in
        its HTTP cache's own code; 25.3 made that this helper. Before 25.0
        they kept the 0600 of ``adjacent_tmp_file``. Metadata cache entries
        follow the pip that writes them.
        """
        from pip import __version__

        release = re.match(r"(\d+)\.(\d+)", __version__)
        if release is None or (int(release[1]), int(release[2])) < (25, 0):
            return
        set_file_mode(target_file, (os.stat(directory).st_mode & 0o666) | 0o600)


def copy_atomically(source: str, destination: str) -> None:
    """Copy a file so that ``destination`` is either absent or complete.

    pip checks a download directory for files from earlier runs and, without
    hashes to compare, trusts whatever it finds there; a copy cut short by
    Ctrl-C would be trusted on the next run. The copy gets the source's
    permission bits, as with the ``shutil.copy`` of stock pip.
    """
    mode = stat.S_IMODE(os.stat(source).st_mode)
    with (
        atomic_write(destination, mode) as partial_file,
        open(source, "rb") as source_file,
    ):
        shutil.copyfileobj(source_file, partial_file, 1024 * 1024)


def link_or_copy_atomically(source: str, destination: str) -> None:
    """:func:`copy_atomically`, by a hard link where the file system allows.

    For a file that pip downloaded into its own temporary directory, which
    nothing writes to again and pip deletes at exit: a link gives the same
    bytes and mode as a copy, without reading and writing them again (a
    second or more for a large set of wheels). Anywhere else (another file
    system, a file system without hard links) it is copied.
    """
    directory, name = os.path.split(destination)
    temp_name = os.path.join(directory, f".{name}.{secrets.token_hex(8)}.tmp")
    try:
        os.link(source, temp_name)
    except OSError:
        copy_atomically(source, destination)
        return
    try:
        replace(temp_name, destination)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise

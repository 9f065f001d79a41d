"""Wheel metadata kept in pip's cache directory.

Resolving a set of requirements needs the core metadata (``METADATA``) of
every candidate wheel. pip-fastdeps reads it from a remote wheel with range
requests, or from the ``.metadata`` file that an index serves beside the
wheel (PEP 658, attribute renamed by PEP 714). Either way the answer for a
given file never changes, so it is kept on disk, and the next resolution of
the same set asks the server for no wheel bytes at all.

The cache lives in ``<pip cache dir>/fastdeps-metadata/``, beside pip's own
``http-v2/`` and ``wheels/`` directories, so that ``--no-cache-dir`` and
``pip cache purge`` have the same meaning for it as for pip's caches. pip's
HTTP cache cannot do this job: it keeps whole responses, keyed by URL, and
never the 206 answers of range requests (CacheControl stores 200, 203, 300,
301 and 308 only), let alone the METADATA decompressed out of them.

Three rules shape the module:

- A cached entry is never worse than a fresh read. Entries are keyed by the
  file's strong hash from the index, scoped to the file's URL, or, for files
  without such a hash, by URL plus the server's validators
  (:class:`CacheKey`). Only metadata that parses is stored
  (:func:`check_metadata`). Once the whole file has been downloaded and
  verified, its own METADATA replaces an entry that differs from it, and an
  entry the file contradicts is replaced or removed
  (``MetadataFetcher.settle``), so one inconsistent answer is never kept.
- A reader never sees a half-written or damaged entry. Entries are written
  to a temporary file and renamed into place, and each one carries the
  length and the sha256 of its metadata, checked on every load.
- The cache never fails an install. A directory that cannot be read or
  written costs a cache miss, as it does for pip's own HTTP cache
  (``pip._internal.network.cache.suppressed_cache_errors``), plus a debug
  log line that says why.
"""

from __future__ import annotations

__all__ = [
    "CACHE_SUBDIR",
    "CacheKey",
    "InvalidMetadata",
    "MetadataCache",
    "MetadataStore",
    "NullMetadataCache",
    "check_metadata",
    "open_metadata_cache",
]

import email.utils
import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit, urlunsplit

from pip._vendor.packaging.metadata import parse_email

from fastdeps.network.limits import METADATA_SIZE_LIMIT
from fastdeps.utils.filesystem import atomic_write, copy_directory_permissions

logger = logging.getLogger(__name__)

CACHE_SUBDIR = "fastdeps-metadata"
"""The cache's directory inside pip's cache directory."""

# The layout and entry format version. A change to either (to the key
# derivation, the header, the fan-out) moves entries to a new "v2/" tree:
# pip's cache directory is shared by every environment of a user, so an older
# pip in another virtual environment keeps reading and writing its
# own tree and never misreads, or overwrites, an entry in the new format.
# `pip cache purge` (MetadataCache.purge) removes every version.
_LAYOUT_VERSION = "v1"

_ENTRY_MAGIC = b"fastdeps-metadata 1"

# Hashes trusted as keys, the preferred one first. These are pip's
# STRONG_HASHES (pip._internal.utils.hashes), the only ones `--require-hashes`
# accepts. md5 and sha1 have practical collisions: two different wheels can
# share such a hash, so a key made from it could hand one wheel's metadata to
# the other. Files that list only a weak hash are keyed by validators instead.
#
# sha256 comes first although all three are strong, because it is the hash
# that PyPI publishes and that PEP 503 and PEP 691 recommend. An index's HTML
# page and its JSON page may list different sets of hashes for one file;
# taking sha256 whenever it is there gives the file the same key from both.
_KEY_HASH_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}

# An entry file is METADATA after a header of under 200 bytes. A larger
# file (left by a version without the limit, say) is a miss, and is never
# read whole.
_ENTRY_SIZE_LIMIT = METADATA_SIZE_LIMIT + 256

# A key's sha256 digest, split into a directory and a file name.
_FAN_OUT_NAME = re.compile(r"[0-9a-f]{2}")
_ENTRY_NAME = re.compile(r"[0-9a-f]{62}")


class InvalidMetadata(ValueError):
    """Bytes that are not usable core metadata, and so are never cached."""


def check_metadata(metadata: bytes) -> None:
    """Check that ``metadata`` is core metadata with one Name and one Version.

    Core metadata is UTF-8 text in the format of email headers (the Core
    Metadata Specifications, as written by PEP 566). This is not a full
    validation, which pip does when it builds a distribution from the bytes;
    it only keeps out what must never be cached: an HTML error page, a
    truncated read, a wrong ZIP member.

    :raises InvalidMetadata: with the reason, when the check fails.
    """
    if len(metadata) > METADATA_SIZE_LIMIT:
        raise InvalidMetadata(
            f"{len(metadata):,} bytes, over the limit of {METADATA_SIZE_LIMIT:,} bytes"
        )
    try:
        text = metadata.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMetadata(f"not UTF-8: {exc}") from None
    parsed, repeated = parse_email(text)
    found = {"Name": parsed.get("name"), "Version": parsed.get("version")}
    for field, value in found.items():
        count = len(repeated.get(field.lower(), [])) or int(value is not None)
        if count != 1:
            raise InvalidMetadata(f"{count} {field} fields, expected 1")
        if not str(value).strip():
            raise InvalidMetadata(f"empty {field} field")


def _url_for_key(url: str, *, keep_query: bool) -> str | None:
    """The parts of ``url`` that identify a file, or None if it won't parse.

    Credentials are dropped: they are not part of the file's identity, a
    token changes when it is rotated, and nothing secret should end up in a
    key (keys are only stored hashed, but a key derivation must not depend on
    that). The fragment is pip's (``#sha256=...``), never sent to a server.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    query = parts.query if keep_query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _strong_etag(etag: str | None) -> str | None:
    """``etag`` if it is a strong entity tag (RFC 9110 section 8.8.3).

    A weak tag (``W/"..."``) only promises an equivalent representation,
    not the same bytes, so it cannot vouch for a file's METADATA.
    """
    if etag is None:
        return None
    etag = etag.strip()
    if not etag or etag.startswith("W/"):
        return None
    return etag


def _http_date(value: str | None) -> str | None:
    """``value`` if it is an HTTP date (RFC 9110 section 5.6.7), else None."""
    if value is None or not value.strip():
        return None
    try:
        email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return value.strip()


@dataclass(frozen=True)
class CacheKey:
    """What names a cache entry: a digest of what identifies the file.

    Build one with :meth:`from_hashes`, :meth:`from_validators` or
    :meth:`for_file`. Each returns None for a file that must not be cached.
    Only the sha256 of the key's fields is kept, in the entry's file name and
    header, so no URL is ever written to the cache directory.

    :param kind: ``"hash"`` or ``"validators"``, for log messages.
    :param digest: sha256 (hex) of the key's fields.
    """

    kind: str
    digest: str

    @classmethod
    def _from_fields(cls, kind: str, fields: Mapping[str, str]) -> CacheKey:
        text = json.dumps({"kind": kind, **fields}, sort_keys=True, ensure_ascii=True)
        return cls(kind, hashlib.sha256(text.encode("ascii")).hexdigest())

    @classmethod
    def from_hashes(cls, hashes: Mapping[str, str], url: str) -> CacheKey | None:
        """The key of the file at ``url`` whose index lists ``hashes``.

        One hash that pip trusts is used: sha256, else sha384, else sha512;
        md5, sha1 and anything malformed are ignored (None if nothing else is
        left). ``hashes`` is what pip holds in ``Link._hashes``: from the
        URL's fragment (PEP 503) or the JSON ``hashes`` (PEP 691).

        The key includes the URL (without credentials, query and fragment)
        because a hash from an index is a claim that nobody checks until the
        whole wheel is downloaded, and metadata read with range requests
        never is. Were the hash alone the key, a server that lists a popular
        wheel's hash beside different metadata could steer every later
        resolution that meets that hash on any index. Scoped to the URL, an
        entry only ever answers for the place that vouched for it. The query
        is left out because it often holds a signature that changes on every
        page (presigned S3 or GCS URLs) while the hash pins the content.
        """
        key_url = _url_for_key(url, keep_query=False)
        if key_url is None:
            return None
        normalized = {
            name.lower(): value.strip().lower() for name, value in hashes.items()
        }
        for hash_name, hex_length in _KEY_HASH_HEX_LENGTHS.items():
            value = normalized.get(hash_name)
            if value is not None and re.fullmatch(f"[0-9a-f]{{{hex_length}}}", value):
                return cls._from_fields("hash", {"url": key_url, hash_name: value})
        return None

    @classmethod
    def from_validators(
        cls, url: str, etag: str | None, last_modified: str | None
    ) -> CacheKey | None:
        """The key of the file at ``url``, from the server's validators.

        For files that an index lists without a strong hash (``--find-links``
        pages, direct URLs, some private indexes). ``etag`` and
        ``last_modified`` are the ``ETag`` and ``Last-Modified`` headers of
        the server's answer for the file (a 206 answer carries the whole
        representation's validators, RFC 9110 section 15.3.7). A weak ETag is
        ignored; with neither a strong ETag nor a valid Last-Modified the file
        has nothing that would show it was replaced, and None is returned.

        The query stays in the URL here: without a hash, the URL is the file's
        only identity, and some servers select the file by query.
        """
        key_url = _url_for_key(url, keep_query=True)
        strong_etag = _strong_etag(etag)
        last_modified = _http_date(last_modified)
        if key_url is None or (strong_etag is None and last_modified is None):
            return None
        fields = {"url": key_url}
        if strong_etag is not None:
            fields["etag"] = strong_etag
        if last_modified is not None:
            fields["last-modified"] = last_modified
        return cls._from_fields("validators", fields)

    @classmethod
    def for_file(
        cls,
        url: str,
        hashes: Mapping[str, str],
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> CacheKey | None:
        """The hash key if there is one, else the validators key, else None."""
        return cls.from_hashes(hashes, url) or cls.from_validators(
            url, etag, last_modified
        )

    @classmethod
    def seen_marker(cls, url: str) -> CacheKey | None:
        """The key that says "metadata of the file at ``url`` was cached".

        A file without a hash is found by its validators, which cost a HEAD
        request to learn. The marker, stored beside the validators entry,
        tells a later lookup that the HEAD is worth sending; without it (the
        first resolution) no HEAD is sent at all.
        """
        key_url = _url_for_key(url, keep_query=True)
        if key_url is None:
            return None
        return cls._from_fields("seen", {"url": key_url})

    def __str__(self) -> str:
        return f"{self.kind}:{self.digest[:16]}"


class MetadataStore(Protocol):
    """What fast-deps needs of a metadata cache."""

    def load(self, key: CacheKey) -> bytes | None:
        """The metadata stored under ``key``, or None."""

    def store(self, key: CacheKey, metadata: bytes) -> None:
        """Keep ``metadata`` under ``key``, if it can; never raises."""

    def remove(self, key: CacheKey) -> None:
        """Forget the entry under ``key``, if there is one; never raises."""


class NullMetadataCache:
    """The cache when there is none (``--no-cache-dir``): always a miss."""

    def load(self, key: CacheKey) -> bytes | None:
        return None

    def store(self, key: CacheKey, metadata: bytes) -> None:
        pass

    def remove(self, key: CacheKey) -> None:
        pass


class _CorruptEntry(Exception):
    """An entry file whose header or content does not check out."""


def _encode_entry(key: CacheKey, metadata: bytes) -> bytes:
    """The bytes of an entry file: a short ASCII header, a blank line, METADATA.

    The header is text so that a person can read an entry with ``head``.
    """
    header = (
        f"{_ENTRY_MAGIC.decode()}\n"
        f"key {key.digest}\n"
        f"length {len(metadata)}\n"
        f"sha256 {hashlib.sha256(metadata).hexdigest()}\n"
        "\n"
    )
    return header.encode("ascii") + metadata


def _decode_entry(key: CacheKey, entry: bytes) -> bytes:
    """The METADATA in ``entry``, after checking it belongs to ``key``.

    :raises _CorruptEntry: naming the first check that failed.
    """
    header, separator, metadata = entry.partition(b"\n\n")
    lines = header.split(b"\n")
    if not separator or len(lines) != 4 or lines[0] != _ENTRY_MAGIC:
        raise _CorruptEntry("bad header")
    fields = dict(line.partition(b" ")[::2] for line in lines[1:])
    if fields.get(b"key") != key.digest.encode("ascii"):
        raise _CorruptEntry("entry is for another key")
    if fields.get(b"length") != str(len(metadata)).encode("ascii"):
        raise _CorruptEntry(
            f"length {len(metadata)}, header says {fields.get(b'length')!r}"
        )
    if fields.get(b"sha256") != hashlib.sha256(metadata).hexdigest().encode("ascii"):
        raise _CorruptEntry("sha256 mismatch")
    return metadata


def _write_all(file: BinaryIO, data: bytes) -> None:
    """Write ``data`` to ``file`` (a separate function so tests can pause it)."""
    file.write(data)


class MetadataCache:
    """Metadata entries in a directory, one file per key.

    Layout: ``<directory>/v1/<2 hex>/<62 hex>``, the key's digest split in
    two. The version directory is explained at ``_LAYOUT_VERSION``; the
    fan-out keeps any one directory small, as pip's own ``http-v2`` and
    ``wheels`` caches do. Temporary files are ``<name><random>.tmp`` beside
    the entry and are never read.

    :param directory: The cache's root, usually
        ``<pip cache dir>/fastdeps-metadata`` (see :func:`open_metadata_cache`).
        Created on the first store.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"MetadataCache({str(self.directory)!r})"

    def _entry_path(self, key: CacheKey) -> Path:
        return self.directory / _LAYOUT_VERSION / key.digest[:2] / key.digest[2:]

    def load(self, key: CacheKey) -> bytes | None:
        """The metadata stored under ``key``, or None on a miss.

        A damaged entry (truncated, edited, for another key) is a miss, and
        logged at debug. It is left in place rather than removed: the caller
        fetches the metadata and stores it, which replaces the entry
        atomically, while removing it here could delete a good entry that a
        concurrent writer had just put in its place.
        """
        path = self._entry_path(key)
        try:
            with path.open("rb") as entry_file:
                entry = entry_file.read(_ENTRY_SIZE_LIMIT + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.debug("Metadata cache: cannot read %s: %s", path, exc)
            return None
        try:
            if len(entry) > _ENTRY_SIZE_LIMIT:
                raise _CorruptEntry(f"over {_ENTRY_SIZE_LIMIT:,} bytes")
            return _decode_entry(key, entry)
        except _CorruptEntry as exc:
            logger.debug("Metadata cache: ignoring damaged entry %s: %s", path, exc)
            return None

    def store(self, key: CacheKey, metadata: bytes) -> None:
        """Keep ``metadata`` under ``key``, replacing any entry there.

        Metadata that fails :func:`check_metadata` is not stored. Never
        raises for a file system error: a read-only, full or foreign-owned
        cache directory must not fail an install, so the error is logged at
        debug and the metadata simply is not cached.
        """
        try:
            check_metadata(metadata)
        except InvalidMetadata as exc:
            logger.debug("Metadata cache: not storing %s: %s", key, exc)
            return
        path = self._entry_path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Concurrent writers of one key each rename their own complete
            # file; the last rename wins, and every entry for a key holds the
            # same metadata anyway. After a crash an entry may be damaged: the
            # checksum on load turns that into a miss.
            with atomic_write(str(path)) as entry_file:
                _write_all(entry_file, _encode_entry(key, metadata))
                # The permissions pip gives the files of its own HTTP cache.
                copy_directory_permissions(str(self.directory), entry_file)
        except OSError as exc:
            logger.debug("Metadata cache: cannot write %s: %s", path, exc)

    def remove(self, key: CacheKey) -> None:
        """Remove the entry under ``key``: its metadata proved wrong.

        For an entry that loads fine but that a downloaded file contradicts
        (see ``MetadataFetcher.settle``). Like :meth:`store`, never raises
        for a file system error: the error is logged at debug.
        """
        path = self._entry_path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            logger.debug("Metadata cache: cannot remove %s: %s", path, exc)
            return
        logger.debug("Metadata cache: removed %s (%s)", path, key)

    def entries(self) -> list[Path]:
        """The entry files of the current layout, sorted (for ``pip cache info``).

        Temporary files and other layout versions are not entries; whether
        an entry is intact is only known when it is loaded.
        """
        layout_root = self.directory / _LAYOUT_VERSION
        try:
            candidates = list(layout_root.glob("*/*"))
        except OSError as exc:
            logger.debug("Metadata cache: cannot list %s: %s", layout_root, exc)
            return []
        return sorted(
            path
            for path in candidates
            if _FAN_OUT_NAME.fullmatch(path.parent.name)
            and _ENTRY_NAME.fullmatch(path.name)
            and path.is_file()
        )

    def purge(self) -> int:
        """Remove every file under the cache's directory; return how many.

        For ``pip cache purge``. Everything goes: entries of every layout
        version and temporary files left by an interrupted writer. Empty
        directories are removed too; one that a concurrent writer has just
        filled again is left. A file that cannot be removed raises
        :class:`OSError`, as it does for pip's own ``pip cache purge``.
        """
        removed = 0
        for dirpath, dirnames, filenames in os.walk(self.directory, topdown=False):
            for filename in filenames:
                try:
                    os.unlink(os.path.join(dirpath, filename))
                except FileNotFoundError:
                    continue
                removed += 1
            for dirname in dirnames:
                self._remove_empty_dir(os.path.join(dirpath, dirname))
        self._remove_empty_dir(str(self.directory))
        return removed

    @staticmethod
    def _remove_empty_dir(path: str) -> None:
        try:
            os.rmdir(path)
        except OSError as exc:
            logger.debug("Metadata cache: keeping directory %s: %s", path, exc)


def open_metadata_cache(pip_cache_dir: str | None) -> MetadataStore:
    """The metadata cache for pip's cache directory.

    :param pip_cache_dir: pip's ``options.cache_dir``, which is false with
        ``--no-cache-dir`` or when pip has disabled its cache (a cache
        directory not owned by the current user); pass
        ``options.cache_dir or None``. Then nothing is cached.
    """
    if not pip_cache_dir:
        return NullMetadataCache()
    return MetadataCache(os.path.join(pip_cache_dir, CACHE_SUBDIR))

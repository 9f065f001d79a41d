"""Where a candidate wheel's core metadata comes from: the cache, or the network.

The resolver (through the preparer, :mod:`fastdeps.plugin`) and the
prefetcher (:mod:`fastdeps.resolution.prefetch`) both ask
:meth:`MetadataFetcher.fetch`, so a file's metadata is looked for, fetched
and cached in exactly one way, whichever thread asks first.

Order, for a remote wheel:

1. the metadata cache (:mod:`fastdeps.cache`), keyed by the file's strong
   hash from the index, else by URL plus the server's validators (learnt
   with one HEAD, sent only for a URL whose metadata was cached before);
2. the index's PEP 658 ``.metadata`` file, when the index names one;
3. otherwise the wheel itself, through range requests (the lazy wheel).

:meth:`MetadataFetcher.fetch` never raises and never logs above debug.
``None`` means "let pip's own code do it": the preparer then runs pip's
PEP 658 or download path, which reports any error exactly as stock pip
would. That is what lets a speculative fetch fail without a trace, and what
keeps every failure of the fast path a fallback rather than an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pip._internal.exceptions import InvalidWheel
from pip._internal.models.link import Link
from pip._internal.models.wheel import Wheel
from pip._internal.network.session import PipSession
from pip._internal.network.utils import HEADERS, raise_for_status
from pip._vendor.packaging.utils import canonicalize_name

from fastdeps.cache import CacheKey, MetadataStore
from fastdeps.network.lazy_wheel import (
    FetchStats,
    HTTPRangeRequestUnsupported,
    metadata_from_wheel_url,
)
from fastdeps.network.utils import loggable_error, loggable_url

logger = logging.getLogger(__name__)

FROM_CACHE = "the metadata cache"
FROM_PEP_658 = "the index's PEP 658 .metadata file"
FROM_LAZY_WHEEL = "HTTP range requests on the wheel"


@dataclass(frozen=True)
class FetchedMetadata:
    """A wheel's METADATA and where it came from (one of the FROM_* texts)."""

    contents: bytes
    source: str


def link_hashes(link: Link) -> dict[str, str]:
    """The hashes the index gave for ``link``'s file (``name -> hex``)."""
    hashes = getattr(link, "_hashes", None)
    return dict(hashes) if isinstance(hashes, dict) else {}


class MetadataFetcher:
    """Core metadata of remote wheels, cached, for one pip command.

    Thread safety: instances hold no mutable state of their own. They share
    pip's session (see :mod:`fastdeps.resolution.prefetch` for why that is
    safe), the lazy wheel's per-host memory (single dictionary operations)
    and the cache, whose writes are atomic renames.
    """

    def __init__(self, session: PipSession, cache: MetadataStore) -> None:
        self._session = session
        self._cache = cache

    def fetch(self, link: Link) -> FetchedMetadata | None:
        """The METADATA of the wheel at ``link``, or None to let pip do it."""
        if link.is_file or not link.is_wheel:
            return None  # local files cost nothing to open; sdists need a build
        url = link.url_without_fragment
        key = CacheKey.from_hashes(link_hashes(link), url)
        cached = self._cache.load(key) if key else self._load_unhashed(url)
        if cached is not None:
            return FetchedMetadata(cached, FROM_CACHE)
        fetched, validators_key = self._fetch_from_server(link)
        if fetched is None:
            return None
        if key is not None:
            self._cache.store(key, fetched.contents)
        elif validators_key is not None:
            self._cache.store(validators_key, fetched.contents)
            marker = CacheKey.seen_marker(url)
            if marker is not None:
                self._cache.store(marker, fetched.contents)
        return fetched

    def _load_unhashed(self, url: str) -> bytes | None:
        """Cached metadata of a file the index gave no hash for.

        Only if this URL was cached before: then one HEAD learns whether
        the server still has the same file (same ETag / Last-Modified).
        """
        marker = CacheKey.seen_marker(url)
        if marker is None or self._cache.load(marker) is None:
            return None
        try:
            response = self._session.head(url, headers=HEADERS, allow_redirects=True)
            raise_for_status(response)
        except Exception as exc:
            self._log_failure(url, exc)
            return None
        key = CacheKey.from_validators(
            url, response.headers.get("ETag"), response.headers.get("Last-Modified")
        )
        return self._cache.load(key) if key is not None else None

    def _fetch_from_server(
        self, link: Link
    ) -> tuple[FetchedMetadata | None, CacheKey | None]:
        metadata_link = link.metadata_link()
        if metadata_link is not None:
            # As in stock pip, a PEP 658 file that fails is not replaced by
            # the lazy wheel: pip's own PEP 658 path then reports the error.
            return self._fetch_pep_658(metadata_link), None
        stats = FetchStats()
        contents = self._fetch_lazy_wheel(link, stats)
        if contents is None:
            return None, None
        validators_key = CacheKey.from_validators(
            link.url_without_fragment, stats.etag, stats.last_modified
        )
        return FetchedMetadata(contents, FROM_LAZY_WHEEL), validators_key

    def _fetch_pep_658(self, metadata_link: Link) -> FetchedMetadata | None:
        url = metadata_link.url_without_fragment
        try:
            response = self._session.get(url, headers=HEADERS)
            raise_for_status(response)
            contents = response.content
            hashes = metadata_link.as_hashes()
            if hashes:
                hashes.check_against_chunks([contents])
        except Exception as exc:
            self._log_failure(url, exc)
            return None
        return FetchedMetadata(contents, FROM_PEP_658)

    def _fetch_lazy_wheel(self, link: Link, stats: FetchStats) -> bytes | None:
        url = link.url_without_fragment
        try:
            name = canonicalize_name(Wheel(link.filename).name)
            return metadata_from_wheel_url(name, url, self._session, stats)
        except HTTPRangeRequestUnsupported as exc:
            # The lazy wheel's own words, which show URLs with loggable_url.
            reason = f"range requests are unusable ({exc})"
        except InvalidWheel as exc:
            reason = f"the ranges do not read as a wheel ({exc})"
        except Exception as exc:
            # A network error, or anything else: the whole download is still
            # worth trying, and pip reports its errors as usual.
            reason = loggable_error(exc)
        logger.debug("Lazy wheel failed for %s: %s", loggable_url(url), reason)
        return None

    @staticmethod
    def _log_failure(url: str, exc: Exception) -> None:
        logger.debug(
            "Metadata of %s not read ahead of pip: %s",
            loggable_url(url),
            loggable_error(exc),
        )

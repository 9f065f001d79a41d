"""Where a candidate wheel's core metadata comes from: the cache, or the network.

The resolver (through ``FastDepsRequirementPreparer``) and the
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

import dataclasses
import enum
import functools
import logging
from dataclasses import dataclass

from pip._internal.exceptions import HashError, InvalidWheel
from pip._internal.index.package_finder import BestCandidateResult, PackageFinder
from pip._internal.models.candidate import InstallationCandidate
from pip._internal.models.link import Link
from pip._internal.models.wheel import Wheel
from pip._internal.network.session import PipSession
from pip._internal.network.utils import HEADERS, raise_for_status
from pip._internal.utils.hashes import Hashes
from pip._vendor.packaging.specifiers import SpecifierSet
from pip._vendor.packaging.utils import canonicalize_name

from fastdeps.cache import CacheKey, MetadataStore
from fastdeps.network.lazy_wheel import (
    ArchiveTooLarge,
    metadata_from_wheel_file,
    metadata_from_wheel_url,
)
from fastdeps.network.limits import METADATA_SIZE_LIMIT, read_limited
from fastdeps.network.ranges import (
    FetchStats,
    HostWithoutRanges,
    HTTPRangeRequestUnsupported,
)
from fastdeps.network.utils import loggable_error, loggable_url
from fastdeps.operations.whole_files import WholeFiles

logger = logging.getLogger(__name__)

FROM_CACHE = "the metadata cache"
FROM_PEP_658 = "the index's PEP 658 .metadata file"
FROM_LAZY_WHEEL = "HTTP range requests on the wheel"
FROM_WHOLE_FILE = "the whole wheel, which the server sent for its metadata"


@dataclass(frozen=True)
class FetchedMetadata:
    """A wheel's METADATA and where it came from (one of the FROM_* texts).

    ``cache_keys`` are the cache entries that hold ``contents``: the entry
    itself first, then, for a file without a hash, the marker that says it
    was cached. Empty when nothing was cached. :meth:`MetadataFetcher.settle`
    needs them once the file is downloaded.

    ``file_path`` is where the wheel itself is, when it arrived whole
    (:mod:`fastdeps.operations.whole_files`): the download phase uses it
    instead of asking for the same bytes again; pip checks its hashes as for
    any download.
    """

    contents: bytes
    source: str
    cache_keys: tuple[CacheKey, ...] = ()
    file_path: str | None = None


class CacheOutcome(enum.Enum):
    """What :meth:`MetadataFetcher.settle` did to a file's cache entry."""

    NOT_CACHED = "nothing was cached"
    KEPT = "kept"
    REPLACED = "replaced by the downloaded file's METADATA"
    REMOVED = "removed"


def link_hashes(link: Link) -> dict[str, str]:
    """The hash the index gave for ``link``'s file, as ``{name: hex}``.

    pip's link shows the first hash it was given: the URL fragment's (PEP
    503) or the first of the JSON ``hashes`` (PEP 691). Empty when none.
    """
    if link.hash_name is None or link.hash is None:
        return {}
    return {link.hash_name: link.hash}


def applicable_links(result: BestCandidateResult) -> list[Link]:
    """The files pip's finder accepts for a requirement, worst first.

    These are the files the resolver can choose from (its factory takes
    them best first).
    """
    applicable = getattr(result, "applicable_candidates", None)
    if applicable is None:  # pip < 25: an iterator method instead
        applicable = list(result.iter_applicable())  # type: ignore[attr-defined]
    return [candidate.link for candidate in applicable]


def is_only_installable_file(
    link: Link,
    finder: PackageFinder,
    project_name: str,
    hashes: Hashes | None,
    candidates: list[InstallationCandidate],
) -> bool:
    """Whether ``link`` is the one file of a project pip could install with ``hashes``.

    Used in hash-checking mode, where metadata not read from a verified file
    may only be used when it cannot choose the file: metadata that rejects a
    file (a Requires-Python, a dependency that cannot be met) makes the
    resolver take another one, of the same version (an sdist, another wheel)
    or of another (pip's hash-checking mode counts ``pkg==1.*`` as pinned).
    Every version counts, prereleases included, so that this never depends
    on how pip spells the requirement it prepares; a version the
    requirement excludes only makes the answer more cautious.

    :param candidates: the project's files, ``finder.find_all_candidates()``.
    """
    any_version = SpecifierSet(prereleases=True)
    evaluator = finder.make_candidate_evaluator(project_name, any_version, hashes)
    links = applicable_links(evaluator.compute_best_candidate(candidates))
    return [applicable.url for applicable in links] == [link.url]


class MetadataFetcher:
    """Core metadata of remote wheels, cached, for one pip command.

    Thread safety: instances hold no mutable state of their own. They share
    pip's session (see :mod:`fastdeps.resolution.prefetch` for why that is
    safe), the lazy wheel's per-host memory (single dictionary operations)
    and the cache, whose writes are atomic renames.
    """

    def __init__(
        self,
        session: PipSession,
        cache: MetadataStore,
        whole_files: WholeFiles | None = None,
    ) -> None:
        self._session = session
        self._cache = cache
        self._whole_files = whole_files

    def fetch(self, link: Link) -> FetchedMetadata | None:
        """The METADATA of the wheel at ``link``, or None to let pip do it."""
        if link.is_file or not link.is_wheel:
            return None  # local files cost nothing to open; sdists need a build
        cached = self._load(link)
        if cached is not None:
            return cached
        fetched, validators_key = self._fetch_from_server(link)
        if fetched is None:
            return None
        url = link.url_without_fragment
        key = CacheKey.from_hashes(link_hashes(link), url)
        keys: tuple[CacheKey | None, ...] = (key,)
        if key is None and validators_key is not None:
            keys = (validators_key, CacheKey.seen_marker(url))
        stored = tuple(key for key in keys if key is not None)
        for stored_key in stored:
            self._cache.store(stored_key, fetched.contents)
        return dataclasses.replace(fetched, cache_keys=stored)

    def settle(
        self,
        link: Link,
        fetched: FetchedMetadata,
        file_metadata: bytes | None,
        *,
        consistent: bool,
    ) -> CacheOutcome:
        """Make the cache agree with the downloaded, verified file.

        Called once pip has checked the file (its hashes, when it has any)
        and the resolver's metadata has been compared with the file's own
        (``consistent``: no difference); ``file_metadata`` is the file's
        METADATA, or None when it could not be read. What is done to the
        entry is :func:`_settled_outcome`'s choice.
        """
        if not fetched.cache_keys:
            return CacheOutcome.NOT_CACHED
        entry_key = fetched.cache_keys[0]
        outcome = _settled_outcome(
            link, entry_key.kind, fetched.contents, file_metadata, consistent
        )
        if outcome is CacheOutcome.REPLACED:
            assert file_metadata is not None
            self._cache.store(entry_key, file_metadata)
        elif outcome is CacheOutcome.REMOVED:
            for key in fetched.cache_keys:
                self._cache.remove(key)
        if outcome is not CacheOutcome.KEPT:
            logger.debug(
                "Metadata cache: entry %s for %s %s",
                entry_key,
                loggable_url(link.url),
                outcome.value,
            )
        return outcome

    def _load(self, link: Link) -> FetchedMetadata | None:
        """The cached metadata of ``link``'s file, if it can be trusted.

        A hit must match the PEP 658 hash when the index gives one, as a
        fresh ``.metadata`` file would have to: an entry that does not is a
        miss, and is removed.
        """
        url = link.url_without_fragment
        key = CacheKey.from_hashes(link_hashes(link), url)
        if key is not None:
            keys: tuple[CacheKey, ...] = (key,)
            cached = self._cache.load(key)
        else:
            cached, keys = self._load_unhashed(url)
        if cached is None:
            return None
        hashes = _pep_658_hashes(link)
        if hashes is not None:
            try:
                hashes.check_against_chunks([cached])
            except HashError:
                logger.debug(
                    "Metadata cache: entry %s for %s does not match the index's "
                    "PEP 658 hash; removed",
                    keys[0],
                    loggable_url(url),
                )
                for stale_key in keys:
                    self._cache.remove(stale_key)
                return None
        return FetchedMetadata(cached, FROM_CACHE, keys)

    def _load_unhashed(self, url: str) -> tuple[bytes | None, tuple[CacheKey, ...]]:
        """Cached metadata of a file the index gave no hash for, and its keys.

        Only if this URL was cached before: then one HEAD learns whether
        the server still has the same file (same ETag / Last-Modified).
        """
        marker = CacheKey.seen_marker(url)
        if marker is None or self._cache.load(marker) is None:
            return None, ()
        try:
            response = self._session.head(url, headers=HEADERS, allow_redirects=True)
            raise_for_status(response)
        except Exception as exc:
            self._log_failure(url, exc)
            return None, ()
        key = CacheKey.from_validators(
            url, response.headers.get("ETag"), response.headers.get("Last-Modified")
        )
        if key is None:
            return None, ()
        return self._cache.load(key), (key, marker)

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
        source = FROM_LAZY_WHEEL if stats.file_path is None else FROM_WHOLE_FILE
        return FetchedMetadata(contents, source, file_path=stats.file_path), (
            validators_key
        )

    def _fetch_pep_658(self, metadata_link: Link) -> FetchedMetadata | None:
        url = metadata_link.url_without_fragment
        try:
            with self._session.get(url, headers=HEADERS, stream=True) as response:
                raise_for_status(response)
                contents = read_limited(
                    response, METADATA_SIZE_LIMIT, "the PEP 658 metadata file"
                )
            hashes = metadata_link.as_hashes()
            if hashes:
                hashes.check_against_chunks([contents])
        except Exception as exc:
            self._log_failure(url, exc)
            return None
        return FetchedMetadata(contents, FROM_PEP_658)

    def _fetch_lazy_wheel(self, link: Link, stats: FetchStats) -> bytes | None:
        url = link.url_without_fragment
        keep = None
        if self._whole_files is not None:
            keep = functools.partial(self._whole_files.keep, link)
        try:
            name = canonicalize_name(Wheel(link.filename).name)
            try:
                return metadata_from_wheel_url(
                    name, url, self._session, stats, keep_whole_file=keep
                )
            except HostWithoutRanges:
                if self._whole_files is None:
                    raise
                return self._fetch_whole_file(name, link, stats)
        except ArchiveTooLarge as exc:
            reason = str(exc)
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

    def _fetch_whole_file(self, name: str, link: Link, stats: FetchStats) -> bytes:
        """The metadata of a wheel on a host without ranges: download it whole.

        The file is kept for the download phase, so that it is fetched once.
        """
        assert self._whole_files is not None
        path = self._whole_files.download(self._session, link)
        if path is None:
            raise HTTPRangeRequestUnsupported("the whole wheel could not be kept")
        stats.file_path = path
        return metadata_from_wheel_file(name, path, link.url_without_fragment)

    @staticmethod
    def _log_failure(url: str, exc: Exception) -> None:
        logger.debug(
            "Metadata of %s not read ahead of pip: %s",
            loggable_url(url),
            loggable_error(exc),
        )


def _settled_outcome(
    link: Link,
    entry_kind: str,
    entry_contents: bytes,
    file_metadata: bytes | None,
    consistent: bool,
) -> CacheOutcome:
    """What to do with an entry once its file has been verified.

    An entry the file agrees with is replaced by the file's METADATA
    when its bytes differ (it was read from ranges, or from a ``.metadata``
    file without a hash), so that what the cache holds has been verified
    whenever it could be. An entry the file contradicts is replaced by
    the file's METADATA when the entry is keyed by the file's hash (pip
    verified the file against the hashes it knows, so the next run
    resolves from the truth even if the server goes on serving other
    bytes for ranges); otherwise it is removed, with its marker, and the
    next run reads the metadata afresh. An entry pinned by the PEP 658
    hash of the index is never replaced (a cache hit must match that
    hash), only removed if the file contradicts it.
    """
    replaceable = file_metadata is not None and not _pep_658_hashes(link)
    if consistent and (not replaceable or file_metadata == entry_contents):
        return CacheOutcome.KEPT
    if replaceable and (consistent or entry_kind == "hash"):
        return CacheOutcome.REPLACED
    return CacheOutcome.REMOVED


def _pep_658_hashes(link: Link) -> Hashes | None:
    """The hashes the index gives for ``link``'s ``.metadata`` file, if any."""
    metadata_link = link.metadata_link()
    if metadata_link is None:
        return None
    hashes = metadata_link.as_hashes()
    return hashes if hashes else None

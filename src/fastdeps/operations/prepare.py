"""The preparer of ``--use-feature=fast-deps``.

During resolution a wheel is prepared from its metadata alone, which
:class:`~fastdeps.operations.metadata.MetadataFetcher` obtains (the cache,
the index's PEP 658 file, the lazy wheel), also in hash-checking mode when
the command downloads every file afterwards. After resolution the chosen
files are downloaded in parallel (:mod:`fastdeps.network.download`), each
one then goes through pip's own preparation, hashes included, and the
metadata the resolver was given is compared with the verified wheel's own
(:mod:`fastdeps.operations.metadata_check`).

A class of its own, built only when the feature is enabled, so that pip
without the feature runs exactly the code it ran before.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from pip._internal.exceptions import HashError
from pip._internal.metadata import BaseDistribution
from pip._internal.models.link import Link
from pip._internal.operations.prepare import RequirementPreparer
from pip._internal.req.req_install import InstallRequirement
from pip._internal.utils._log import VERBOSE
from pip._internal.utils.logging import get_indentation
from pip._internal.utils.misc import display_path
from pip._internal.utils.temp_dir import TempDirectory
from pip._vendor.packaging.utils import canonicalize_name

from fastdeps.cache import open_metadata_cache
from fastdeps.cli.progress_bars import make_progress
from fastdeps.network.download import download_files
from fastdeps.network.lazy_wheel import metadata_distribution
from fastdeps.operations.metadata import (
    FROM_LAZY_WHEEL,
    FROM_PEP_658,
    FROM_WHOLE_FILE,
    CacheOutcome,
    FetchedMetadata,
    MetadataFetcher,
    is_only_installable_file,
)
from fastdeps.operations.metadata_check import (
    MetadataMismatch,
    difference_unless_identical,
)
from fastdeps.operations.whole_files import WholeFiles
from fastdeps.utils.filesystem import copy_atomically, link_or_copy_atomically

logger = logging.getLogger(__name__)


class MetadataAhead(Protocol):
    """Metadata fetched ahead of the resolver (``resolution.prefetch``)."""

    def metadata(
        self, link: Link, fetch_now: Callable[[], FetchedMetadata | None]
    ) -> FetchedMetadata | None: ...


@dataclass(frozen=True)
class FastDepsSettings:
    """What the fast-deps preparer needs of pip's options, read once."""

    jobs: int
    progress_bar: str
    #: Whether metadata alone may be read in hash-checking mode: only when
    #: the command downloads, and so verifies, every file afterwards.
    metadata_only_with_hashes: bool
    #: pip's cache directory; empty with ``--no-cache-dir``. (Not Optional:
    #: pip's prepare module is type-checked without strict optional types.)
    cache_dir: str = ""

    @property
    def prefetch_workers(self) -> int:
        """Twice the downloads: a metadata read is mostly waiting."""
        return 2 * self.jobs


@dataclass(frozen=True)
class MetadataUsed:
    """The metadata the resolver was given for one file, and its origin."""

    dist: BaseDistribution
    source: str
    #: What the fetcher returned; None when pip's own PEP 658 path read it.
    fetched: FetchedMetadata | None


class FastDepsRequirementPreparer(RequirementPreparer):
    """Metadata-only preparation, parallel downloads, verified metadata."""

    #: Called with each requirement and its file's path as soon as the file
    #: is on disk, before pip has verified it: where ``pip install`` installs
    #: wheels while others download. None: nothing is done.
    wheel_arrived: Callable[[InstallRequirement, str], None] | None = None
    #: The display the parallel downloads report to: ``(progress_bar,
    #: file_count, indent)``; in ``pip install``, one that stays for the
    #: installs (:class:`~fastdeps.cli.progress_bars.InstallProgress`).
    download_progress = staticmethod(make_progress)

    def __init__(self, *, fast_deps: FastDepsSettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fast_deps = fast_deps
        self.metadata_fetcher = MetadataFetcher(
            self._session,
            open_metadata_cache(fast_deps.cache_dir or None),
            WholeFiles.in_pip_temp_dir(),
        )
        #: Set for the length of one resolution (see ``prefetching()``).
        self.prefetcher: MetadataAhead | None = None
        self._metadata_used: dict[str, MetadataUsed] = {}
        logger.info(
            "%s%s is active: metadata from range requests, up to %d parallel downloads",
            " " * get_indentation(),
            _what_is_active(),
            fast_deps.jobs,
        )

    @property
    def reads_metadata_only(self) -> bool:
        """Whether resolution may read metadata alone, not whole files.

        Always, except in hash-checking mode when the command does not
        download the files afterwards.
        """
        return not self.require_hashes or self.fast_deps.metadata_only_with_hashes

    # -- during resolution ----------------------------------------------------

    def _fetch_metadata_only(self, req: InstallRequirement) -> BaseDistribution | None:
        if self.legacy_resolver or not self._may_read_metadata_of(req):
            return None
        assert req.link is not None
        fetched = self._fetched_metadata(req.link)
        if fetched is not None:
            dist = self._dist_from_fetched_metadata(req, fetched)
            if dist is not None:
                self._metadata_used[req.link.url] = MetadataUsed(
                    dist, fetched.source, fetched
                )
                return dist
        # No metadata, or metadata pip would not accept (another project's,
        # say). pip's PEP 658 path reports a broken .metadata file; without
        # one, None makes pip download the file and report, in its own
        # words, whatever is wrong with it. Another lazy read would only
        # repeat the failure.
        dist = self._fetch_metadata_using_link_data_attr(req)
        if dist is not None:
            self._metadata_used[req.link.url] = MetadataUsed(dist, FROM_PEP_658, None)
        return dist

    def _may_read_metadata_of(self, req: InstallRequirement) -> bool:
        if req.link is None:
            return False
        if not self.reads_metadata_only:
            logger.debug(
                "Metadata-only fetching is not used: hash checking is required "
                "and this command does not download the files afterwards"
            )
            return False
        if self.require_hashes and self._metadata_can_choose_the_file(req):
            logger.debug(
                "Metadata-only fetching is not used for %s: hash checking is "
                "required and more than one file satisfies it",
                req.req,
            )
            return False
        return True

    def _metadata_can_choose_the_file(self, req: InstallRequirement) -> bool:
        """Whether unverified metadata of ``req``'s file could change what is installed.

        A direct URL names its one file; a requirement from an index is safe
        only for its project's only installable file (see
        :func:`~fastdeps.operations.metadata.is_only_installable_file`). The
        project's page was fetched already: the finder answers from its cache.
        """
        if req.original_link is not None:
            return False
        if req.req is None or req.link is None:
            return True
        name = req.req.name
        hashes = req.hashes(trust_internet=False)
        candidates = self.finder.find_all_candidates(name)
        return not is_only_installable_file(
            req.link, self.finder, name, hashes, candidates
        )

    def _fetched_metadata(self, link: Link) -> FetchedMetadata | None:
        """The metadata of ``link`` from the prefetcher, the cache or the server.

        None when no fast path worked; why is logged at debug level.
        """
        fetcher = self.metadata_fetcher
        if self.prefetcher is None:
            return fetcher.fetch(link)
        return self.prefetcher.metadata(link, lambda: fetcher.fetch(link))

    def _dist_from_fetched_metadata(
        self, req: InstallRequirement, fetched: FetchedMetadata
    ) -> BaseDistribution | None:
        """The distribution of ``fetched`` metadata, if pip would accept it.

        None lets pip's own code try, and report what went wrong.
        """
        link = req.link
        if req.req is None or link is None:
            return None
        try:
            dist = metadata_distribution(fetched.contents, link.filename, req.req.name)
        except Exception as exc:
            logger.debug("Metadata of %s unusable: %s", link.filename, exc)
            return None
        if canonicalize_name(dist.raw_name) != canonicalize_name(req.req.name):
            return None  # pip's own path raises its MetadataInconsistent
        _log_metadata_source(req, link, dist, fetched.source)
        return dist

    # -- after resolution -----------------------------------------------------

    def _complete_partial_requirements(
        self,
        partially_downloaded_reqs: Iterable[InstallRequirement],
        parallel_builds: bool = False,
    ) -> None:
        reqs = list(partially_downloaded_reqs)
        if reqs:
            self._download_in_parallel(reqs)
        for req in reqs:
            try:
                dist = self._prepare_linked_requirement(req, parallel_builds)
            except HashError as exc:
                # During resolution pip's candidate attaches the requirement,
                # so the error shows the offending line; do the same here.
                exc.req = req
                raise
            assert req.link is not None
            used = self._metadata_used.get(req.link.url)
            if used is not None and req.link.is_wheel and dist is not used.dist:
                self._check_metadata_used(req.link, used, dist)

    def _download_in_parallel(self, reqs: list[InstallRequirement]) -> None:
        """Fetch every requirement's file, as pip's batch download would."""
        temp_dir = TempDirectory(kind="unpack", globally_managed=True).path
        links = list(dict.fromkeys(req.link for req in reqs if req.link is not None))
        received = self._files_received(reqs)
        to_download = [link for link in links if link not in received]
        progress = self.download_progress(
            self.fast_deps.progress_bar, len(to_download), get_indentation()
        )
        files = download_files(
            self._session,
            links,
            temp_dir,
            jobs=self.fast_deps.jobs,
            progress=progress,
            fallback=self._download,
            received=received,
            ready=self._file_ready_for(reqs),
        )
        for req in reqs:
            assert req.link is not None
            path, _content_type = files[req.link]
            # As pip does: the file is known to _prepare_linked_requirement,
            # which checks its hashes, and an sdist is unpacked from it.
            req.local_file_path = path
            self._downloaded[req.link.url] = path
            if not req.is_wheel:
                req.needs_unpacked_archive(Path(path))

    def _file_ready_for(
        self, reqs: list[InstallRequirement]
    ) -> Callable[[Link, str], None]:
        """What ``download_files`` calls as each file arrives: ``wheel_arrived``."""
        arrived = self.wheel_arrived
        by_link = {req.link: req for req in reqs if req.link is not None}

        def ready(link: Link, path: str) -> None:
            if arrived is not None and by_link[link].is_wheel:
                arrived(by_link[link], path)

        return ready

    def _files_received(self, reqs: Iterable[InstallRequirement]) -> dict[Link, str]:
        """The wheels that arrived whole while their metadata was read: on disk."""
        received = {}
        for req in reqs:
            used = self._metadata_used.get(req.link.url) if req.link else None
            fetched = None if used is None else used.fetched
            if req.link is not None and fetched is not None and fetched.file_path:
                received[req.link] = fetched.file_path
        return received

    def _check_metadata_used(
        self, link: Link, used: MetadataUsed, dist: BaseDistribution
    ) -> None:
        """Compare the resolver's metadata with the verified file's own METADATA.

        Whatever the answer, the metadata cache is then made to agree with the
        file (see :meth:`MetadataFetcher.settle`), so that an inconsistent
        answer stored by this run or an earlier one does not fail the next
        run; a difference raises :class:`MetadataMismatch`, which says what
        was done.
        """
        file_metadata = _file_metadata(dist)
        used_bytes = None if used.fetched is None else used.fetched.contents
        difference = difference_unless_identical(
            used.dist, used_bytes, dist, file_metadata
        )
        outcome = CacheOutcome.NOT_CACHED
        if used.fetched is not None:
            outcome = self.metadata_fetcher.settle(
                link, used.fetched, file_metadata, consistent=difference is None
            )
        if difference is not None:
            raise MetadataMismatch(link.filename, used.source, difference, outcome)

    def save_linked_requirement(self, req: InstallRequirement) -> None:
        """As pip's, but a file reaches the download directory atomically.

        pip trusts a file it finds there on the next run, so a copy cut short
        by Ctrl-C must never be left behind. A file pip downloaded is linked
        rather than copied where the file system allows.
        """
        link = req.link
        copies_a_file = (
            self.download_dir is not None
            and link is not None
            and not link.is_vcs
            and not link.is_existing_dir()
            and req.local_file_path is not None
        )
        if not copies_a_file:
            super().save_linked_requirement(req)
            return
        assert self.download_dir is not None and link is not None
        assert req.local_file_path is not None
        destination = os.path.join(self.download_dir, os.path.basename(link.filename))
        if os.path.exists(destination):
            return
        if link.is_file:  # the user's own file: a copy, as stock pip makes
            copy_atomically(req.local_file_path, destination)
        else:  # pip's temporary download
            link_or_copy_atomically(req.local_file_path, destination)
        logger.info("Saved %s", display_path(destination))


def _what_is_active() -> str:
    """How the line that says the feature is on names it."""
    from fastdeps import __version__

    return f"pip-fastdeps {__version__}"


def _log_metadata_source(
    req: InstallRequirement, link: Link, dist: BaseDistribution, source: str
) -> None:
    """Say where the metadata came from, in the words and levels pip uses."""
    if source == FROM_LAZY_WHEEL:
        logger.info(
            "Obtaining dependency information from %s %s", dist.raw_name, dist.version
        )
    elif source == FROM_PEP_658:
        logger.log(
            VERBOSE,
            "Obtaining dependency information for %s from %s",
            req.req,
            link.metadata_link(),
        )
    elif source == FROM_WHOLE_FILE:
        logger.info(
            "Obtaining dependency information from %s %s, downloaded whole",
            dist.raw_name,
            dist.version,
        )
    else:
        logger.log(VERBOSE, "Using cached metadata of %s", link.filename)


def _file_metadata(dist: BaseDistribution) -> bytes | None:
    """The METADATA of a wheel's distribution, as bytes, or None (logged)."""
    try:
        return dist.read_text("METADATA").encode("utf-8")
    except Exception as exc:
        logger.debug("Cannot read the METADATA of %s: %s", dist, exc)
        return None

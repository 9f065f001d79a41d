"""Project pages and metadata fetched ahead of pip's resolver.

pip's resolver asks for one thing at a time: a project's page, then one
candidate's metadata, then the next project's page. On a network with 50 ms
of round-trip time that is most of a resolution's wall time. The
:class:`Prefetcher` fetches, in a small pool of threads, what the resolver
is about to ask for, so that most questions find their answer waiting.

What is fetched, and when:

- when the resolver learns requirements (the root ones, then each
  candidate's dependencies), the page of every project they name, then the
  metadata of the candidate the resolver will most likely try first: the
  best one that satisfies what is known of the specifiers and constraints,
  by pip's own ``CandidateEvaluator``;
- when a likely candidate's metadata arrives, the same for its own
  dependencies (those whose markers hold here, with the extras asked of
  it), so that every level of the graph is on its way before the resolver
  gets there;
- when the resolver leaves a file for a worse one of the same project (it
  is backtracking), the metadata of the next :data:`BACKTRACK_LOOKAHEAD`
  files in pip's order.

The resolver is not changed. It asks in its own order and gets the very
objects stock pip would compute: a page is fetched by pip's own
``PackageFinder.find_all_candidates`` (in a worker, filling the finder's
cache), and the resolver's call then returns from that cache. Nothing the
prefetcher computes is trusted by the resolver except what pip's own code
produced, so resolutions are identical to stock pip's.

Speculation is silent and bounded:

- a job's log records are kept off the terminal (pip's ``--log`` file gets
  them), and replayed on the main thread only if the resolver asks for that
  item (:class:`_HeldLogs`); a job that fails is forgotten, and the
  resolver's own request then runs pip's code on the spot and reports
  exactly what stock pip reports;
- a worker's requests are speculative (:mod:`fastdeps.network.speculative`:
  bounded, never retried, abandoned when refused) until the resolver waits
  for the item, and the workers are daemon threads that nothing waits for;
- each project page is fetched once, and each project's metadata once per
  distinct specifier, never once per version, so a project with hundreds
  of releases costs one page and one metadata read; a useless speculative
  item costs one request in the common case and is counted
  (:class:`PrefetchStats`, logged at the end of resolution with ``-v``);
- an item the resolver asks for before a worker has started it is fetched
  by the resolver's thread at once, never queued behind speculation.

Thread safety of the pip objects the workers touch:

- ``PipSession``: workers only send requests. requests' ``Session.send``
  keeps no per-request state on the session; the connection pools belong
  to urllib3's ``PoolManager``, which is thread-safe; the cookie jar takes a
  lock; pip's HTTP cache writes each entry to a temporary file and renames
  it. Authentication is the exception: ``MultiDomainBasicAuth.handle_401``
  may prompt for a password, so a worker's requests go without it, a 401
  abandons the job, and only the resolver's own request, on the main
  thread, can prompt.
- ``PackageFinder.find_all_candidates``: at most one thread computes a
  given project (:meth:`Prefetcher._claim_page`), and different projects
  share only append-only state (the candidate cache, the set of logged
  links, lazily computed tags), each update a single dictionary or set
  operation under the GIL, where a race can only compute a value twice.
- ``CandidateEvaluator``: a fresh one per job, over a list nobody mutates.
- pip's logging: records are held back or handled by ``logging`` handlers,
  which take their own lock; pip's log indentation is per thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Generic, TypeVar

from pip._internal.exceptions import InstallationError
from pip._internal.index.package_finder import BestCandidateResult, PackageFinder
from pip._internal.models.candidate import InstallationCandidate
from pip._internal.models.link import Link
from pip._internal.network.session import PipSession
from pip._internal.utils._log import VERBOSE
from pip._internal.utils.hashes import Hashes
from pip._internal.utils.misc import format_size
from pip._vendor.packaging.metadata import parse_email
from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.specifiers import SpecifierSet
from pip._vendor.packaging.utils import canonicalize_name

from fastdeps.network.speculative import (
    SpeculationAbandoned,
    SpeculativeRequests,
    in_speculative_thread,
    mark_speculative_thread,
    serving,
)
from fastdeps.network.utils import loggable_error
from fastdeps.operations.metadata import (
    FetchedMetadata,
    applicable_links,
    is_only_installable_file,
)
from fastdeps.seams import finder_candidates_from

if TYPE_CHECKING:
    from pip._internal.resolution.resolvelib.base import (
        Candidate,
        Constraint,
    )
    from pip._internal.resolution.resolvelib.base import (
        Requirement as ResolverRequirement,
    )
    from pip._internal.resolution.resolvelib.factory import Factory

logger = logging.getLogger(__name__)

#: Candidates fetched ahead once the resolver backtracks on a project.
BACKTRACK_LOOKAHEAD = 3

#: Worker threads. Each request waits a round trip, and a resolution needs
#: two per project, so the pool must be wide enough to keep many in flight.
DEFAULT_WORKERS = 16

_THREAD_NAME_PREFIX = "pip-prefetch"

T = TypeVar("T")


@dataclass
class PrefetchStats:
    """What the prefetcher did, for the verbose summary and for tests."""

    pages: int = 0
    pages_used: int = 0
    metadata: int = 0
    metadata_used: int = 0
    failed: int = 0
    #: Whole wheels downloaded ahead (a host without ranges), and of those
    #: the ones the resolver did not use, which are deleted at the end.
    wheels: int = 0
    wheels_unused: int = 0
    wheels_unused_bytes: int = 0

    def summary(self) -> str:
        text = (
            f"{self.pages} project pages ({self.pages - self.pages_used} unused), "
            f"{self.metadata} metadata files "
            f"({self.metadata - self.metadata_used} unused), "
            f"{self.failed} failed"
        )
        if self.wheels:
            text += (
                f"; {self.wheels} whole wheels ({self.wheels_unused} unused, "
                f"{format_size(self.wheels_unused_bytes)} deleted)"
            )
        return text


def _preference_order(result: BestCandidateResult) -> list[Link]:
    """The files pip's resolver tries, in its order (see its factory).

    pip's finder lists applicable candidates worst first; the resolver takes
    them best first and skips yanked files unless nothing else is left.
    """
    ordered = applicable_links(result)[::-1]
    return [link for link in ordered if not link.is_yanked] or ordered


def _requirements_applying(
    metadata: bytes, extras: frozenset[str]
) -> Iterator[tuple[str, SpecifierSet, frozenset[str]]]:
    """``Requires-Dist`` entries that apply here, without an extra or with
    one of ``extras``: each one's name, specifier and extras.

    A guess for speculation only: markers are evaluated for the running
    interpreter, and anything that does not parse is skipped. The resolver
    reads the real dependencies with pip's own code.
    """
    environments = [{"extra": extra} for extra in sorted(extras | {""})]
    parsed, _ = parse_email(metadata)
    for line in parsed.get("requires_dist", []):
        try:
            requirement = Requirement(str(line))
            marker = requirement.marker
            if requirement.url is not None:
                continue
            if marker is not None and not any(map(marker.evaluate, environments)):
                continue
        except Exception:
            continue
        yield requirement.name, requirement.specifier, frozenset(requirement.extras)


# -- held-back log records ---------------------------------------------------


_current = threading.local()


class _HeldLogs(logging.Filter):
    """Keeps a worker's log records off the terminal, for later.

    Installed on the root logger's handlers while a prefetcher runs, except
    those that write pip's ``--log`` file. A record logged by a thread that
    is running a job goes into that job's list instead of being emitted;
    other threads are not affected.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        held: list[logging.LogRecord] | None = getattr(_current, "held", None)
        if held is None:
            return True
        # One record passes through every handler: keep it once.
        if not held or held[-1] is not record:
            held.append(record)
        return False


class _LoggedOnce(logging.Filter):
    """Keeps replayed records out of pip's ``--log`` file, which had them.

    The file gets every worker's records as they come, so that a proxy or
    TLS failure of a speculative job that nobody used can still be read
    there; the terminal gets them only if the resolver uses the job.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, _REPLAYED, False)


_REPLAYED = "_prefetch_replayed"


def _replay(records: Iterable[logging.LogRecord]) -> None:
    for record in records:
        setattr(record, _REPLAYED, True)
        logging.getLogger(record.name).handle(record)


class _LogFilters:
    """The two filters above, on the root logger's handlers, and off again."""

    def __init__(self) -> None:
        self._installed: list[tuple[logging.Handler, logging.Filter]] = []

    def install(self) -> None:
        for handler in logging.getLogger().handlers:
            is_log_file = isinstance(handler, logging.FileHandler)
            log_filter = _LoggedOnce() if is_log_file else _HeldLogs()
            handler.addFilter(log_filter)
            self._installed.append((handler, log_filter))

    def uninstall(self) -> None:
        for handler, log_filter in self._installed:
            handler.removeFilter(log_filter)
        self._installed = []


@contextmanager
def _holding_logs(held: list[logging.LogRecord]) -> Iterator[None]:
    _current.held = held
    try:
        yield
    finally:
        _current.held = None


# -- workers -------------------------------------------------------------------


class _Workers:
    """Daemon threads that run jobs, and that nothing ever waits for.

    ``concurrent.futures`` joins its threads when the interpreter exits, so
    one job stuck on a stalled server kept pip alive after its work was
    done, or after Ctrl-C. A speculative job is worth nothing once the
    resolution is over: :meth:`close` drops the queued jobs and returns at
    once, and the process exits whatever the running ones are doing.
    Threads start as jobs arrive, up to ``size``; each is a speculative
    thread (:func:`~fastdeps.network.speculative.mark_speculative_thread`).

    :param when_idle: called once, by the last thread to finish a job after
        :meth:`close` (or by :meth:`close` when none is running).
    """

    def __init__(self, size: int, when_idle: Callable[[], None]) -> None:
        self._size = size
        self._when_idle = when_idle
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        # Released by a thread each time it is done with a job and free for
        # the next; a submit that takes it needs no new thread.
        self._free = threading.Semaphore(0)
        self._threads = 0
        self._running = 0
        self._closed = False

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the prefetcher is closed")
            self._jobs.put(job)
            if self._free.acquire(blocking=False) or self._threads >= self._size:
                return
            self._threads += 1
        threading.Thread(
            target=self._work,
            name=f"{_THREAD_NAME_PREFIX}-{self._threads}",
            daemon=True,
        ).start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for _ in range(self._threads):
                self._jobs.put(None)
            idle = self._running == 0
        if idle:
            self._when_idle()

    def _work(self) -> None:
        mark_speculative_thread(is_over=lambda: self._closed)
        while True:
            job = self._jobs.get()
            with self._lock:
                if job is None or self._closed:
                    return
                self._running += 1
            try:
                job()
            except (Exception, SpeculationAbandoned) as exc:
                # A job's own failure (its items record theirs): the thread
                # goes on with the next job.
                logger.debug("Prefetch job failed: %s", loggable_error(exc))
            finally:
                with self._lock:
                    self._running -= 1
                    last = self._closed and self._running == 0
                if last:
                    self._when_idle()
                self._free.release()


# -- jobs ----------------------------------------------------------------------


@dataclass
class _Job(Generic[T]):
    """One item, computed once, by whichever thread claimed it first."""

    by_resolver: bool
    future: Future[T] = field(default_factory=Future)
    held: list[logging.LogRecord] = field(default_factory=list)
    taken: bool = False
    #: Set once the resolver waits for a worker's job: its requests are then
    #: pip's own (see fastdeps.network.speculative.serving).
    awaited: threading.Event = field(default_factory=threading.Event)

    def run_held(self, compute: Callable[[], T]) -> None:
        """Compute on a worker: log records held, any exception kept."""
        try:
            with _holding_logs(self.held), serving(self.awaited.is_set):
                result = compute()
        except (Exception, SpeculationAbandoned) as exc:
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)

    def run_here(self, compute: Callable[[], T]) -> T:
        """Compute on the resolver's thread: logs and exceptions as usual."""
        try:
            result = compute()
        except BaseException as exc:
            self.future.set_exception(exc)
            raise
        self.future.set_result(result)
        return result


class Prefetcher:
    """Fetches, in the background, what pip's resolver is about to ask for.

    :param finder: the command's ``PackageFinder``; its
        ``find_all_candidates`` is replaced on this instance by
        :meth:`find_all_candidates`, which :meth:`close` puts back.
    :param fetch_metadata: the one way metadata is obtained
        (:meth:`fastdeps.operations.metadata.MetadataFetcher.fetch`).
    :param session: pip's session, over which the workers' requests are
        speculative (:class:`~fastdeps.network.speculative.SpeculativeRequests`)
        while the prefetcher runs.
    :param hash_checking: pip runs in hash-checking mode, where the preparer
        reads metadata without the file only for a project's only
        installable file (see ``is_only_installable_file()``): metadata is
        fetched ahead for those files only.
    """

    def __init__(
        self,
        finder: PackageFinder,
        fetch_metadata: Callable[[Link], FetchedMetadata | None],
        session: PipSession,
        workers: int = DEFAULT_WORKERS,
        hash_checking: bool = False,
    ) -> None:
        self._finder = finder
        self._find_all_candidates: Callable[[str], list[InstallationCandidate]] = (
            finder.find_all_candidates
        )
        self._fetch_metadata = fetch_metadata
        self._hash_checking = hash_checking
        self._workers = _Workers(workers, when_idle=self._give_pip_back)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._outstanding = 0  # jobs submitted and not finished
        self._pages: dict[str, _Job[list[InstallationCandidate]]] = {}
        self._metadata: dict[str, _Job[FetchedMetadata | None]] = {}
        # (name, specifier, hashes, extras) already announced
        self._asked: set[tuple[str, str, Hashes, frozenset[str]]] = set()
        # project -> what the resolver will combine with any requirement on it
        self._restrictions: dict[str, tuple[SpecifierSet, Hashes]] = {}
        # projects whose only candidate is a direct URL (skip)
        self._skipped: set[str] = set()
        # project -> its files in the order pip would try them, last computed
        self._ranking: dict[str, list[Link]] = {}
        # project -> the files whose metadata the resolver asked for, in order
        self._asked_by_resolver: dict[str, list[str]] = {}
        self._closed = False
        self.stats = PrefetchStats()
        self._log_filters = _LogFilters()
        self._log_filters.install()
        self._requests = SpeculativeRequests(session, pool_size=workers)
        self._requests.install()
        self._finder_replaced = contextlib.ExitStack()
        self._finder_replaced.enter_context(
            finder_candidates_from(finder, self.find_all_candidates)
        )

    # -- what the resolver's side calls ---------------------------------------

    def prefetch(
        self,
        project_name: str,
        specifier: SpecifierSet,
        hashes: Hashes | None,
        extras: Iterable[str] = (),
    ) -> None:
        """Start fetching ``project_name``'s page and likely metadata, and
        then what it needs, with ``extras``.

        The specifier and hashes are combined with the project's
        restrictions (:meth:`restrict`), as pip's factory will combine them.
        """
        name = canonicalize_name(project_name)
        wanted = frozenset(map(canonicalize_name, extras))
        with self._lock:
            if name in self._skipped:
                return
            restricted, restricted_hashes = self._restriction_of(name)
            specifier = specifier & restricted
            hashes = (hashes or Hashes()) & restricted_hashes
            request = (name, str(specifier), hashes, wanted)
            if request in self._asked:
                return
            self._asked.add(request)
        self._submit(self._prefetch_project, name, specifier, hashes or None, wanted)

    def restrict(
        self, project_name: str, specifier: SpecifierSet, hashes: Hashes | None = None
    ) -> None:
        """Record what every candidate of a project must satisfy.

        For a root requirement or a constraint: pip's factory combines it
        with whatever requirement on the project it looks up, so that a
        dependency on ``bar`` next to a root requirement ``bar==1.0`` asks
        for bar 1.0 only. Call before announcing.
        """
        name = canonicalize_name(project_name)
        with self._lock:
            old_specifier, old_hashes = self._restriction_of(name)
            self._restrictions[name] = (
                old_specifier & specifier,
                old_hashes & (hashes or Hashes()),
            )

    def skip(self, project_name: str) -> None:
        """Never prefetch a project whose one candidate is a direct URL."""
        with self._lock:
            self._skipped.add(canonicalize_name(project_name))

    def _restriction_of(self, name: str) -> tuple[SpecifierSet, Hashes]:
        """What :meth:`restrict` recorded for ``name``; call under the lock."""
        return self._restrictions.get(name, (SpecifierSet(), Hashes()))

    def find_all_candidates(self, project_name: str) -> list[InstallationCandidate]:
        """``PackageFinder.find_all_candidates``, answered from the prefetch.

        The result always comes from pip's own method: when a worker ran it,
        from the finder's cache; when the worker's request failed, by running
        it again here, so that any network error is pip's own. When the page
        arrived and pip's method refused what it says (an index without the
        upload times ``--uploaded-prior-to`` needs), that is pip's answer,
        and asking again would be a request stock pip does not make.
        """
        job, claimed = self._claim_page(canonicalize_name(project_name))
        if claimed:
            return job.run_here(lambda: self._find_all_candidates(project_name))
        if job.by_resolver:
            job.future.exception()  # wait, should another thread be at it
        elif not self._take(job, counted="pages_used"):
            refused = job.future.exception()
            if isinstance(refused, InstallationError):
                _replay(job.held)
                raise refused
        return self._find_all_candidates(project_name)

    def metadata(
        self, link: Link, fetch_now: Callable[[], FetchedMetadata | None]
    ) -> FetchedMetadata | None:
        """The metadata of ``link``, prefetched or obtained by ``fetch_now``.

        None means what it means for :meth:`MetadataFetcher.fetch`: let pip
        do it. A job that failed is not retried here; pip's own path runs.
        """
        self._look_ahead_from(link)
        job, claimed = self._claim_metadata(link)
        if claimed:
            # Nobody fetched it yet: do it now, on the resolver's thread,
            # with its log records emitted as they come.
            return job.run_here(fetch_now)
        if job.by_resolver:
            # Asked before by the resolver itself, which got this answer then.
            return None if job.future.exception() else job.future.result()
        if not self._take(job, counted="metadata_used"):
            # The speculative request was abandoned: the resolver's own
            # request decides, with pip's retries, prompts and keyring.
            return self._reclaim_metadata(link).run_here(fetch_now)
        return job.future.result()

    def close(self) -> None:
        """Stop at once: queued jobs are dropped, running ones abandoned.

        Nothing waits for a running job. Its next request is abandoned
        (:class:`~fastdeps.network.speculative.SpeculationAbandoned`), and
        the session and the log handlers are given back to pip when the
        last running job has ended, or now if none is running.
        """
        with self._lock:
            self._closed = True
        self._requests.close()
        self._finder_replaced.close()
        self._workers.close()
        self._delete_unused_wheels()
        logger.log(VERBOSE, "pip-fastdeps prefetch: %s", self.stats.summary())

    def _delete_unused_wheels(self) -> None:
        """Delete the whole wheels fetched ahead that the resolver never used.

        pip deletes its temporary directory, where they are, when it exits;
        this gives the disk space back now. One that a running job has yet to
        finish writing is left for pip.
        """
        with self._lock:
            untaken = [job for job in self._metadata.values() if not job.taken]
        for job in untaken:
            if job.by_resolver or not job.future.done() or job.future.exception():
                continue
            fetched = job.future.result()
            if fetched is None or fetched.file_path is None:
                continue
            with contextlib.suppress(OSError):
                size = os.path.getsize(fetched.file_path)
                os.unlink(fetched.file_path)
                self.stats.wheels_unused += 1
                self.stats.wheels_unused_bytes += size

    def _give_pip_back(self) -> None:
        self._requests.uninstall()
        self._log_filters.uninstall()

    def wait_until_idle(self) -> None:
        """Wait until every job, and every job those started, has finished.

        pip never calls it: nothing waits for speculation. It is public for
        tests and tools that must look at what the prefetcher did once it is
        done, without sleeping.
        """
        with self._idle:
            self._idle.wait_for(lambda: self._outstanding == 0)

    # -- claiming ---------------------------------------------------------------

    def _claim(
        self, jobs: dict[str, _Job[T]], key: str, by_resolver: bool
    ) -> tuple[_Job[T], bool]:
        """The job for ``key``, and whether the caller must compute it."""
        with self._lock:
            job = jobs.get(key)
            if job is not None:
                return job, False
            job = jobs[key] = _Job(by_resolver=by_resolver)
            return job, True

    def _claim_page(self, name: str) -> tuple[_Job[list[InstallationCandidate]], bool]:
        by_resolver = not in_speculative_thread()
        return self._claim(self._pages, name, by_resolver=by_resolver)

    def _claim_metadata(self, link: Link) -> tuple[_Job[FetchedMetadata | None], bool]:
        by_resolver = not in_speculative_thread()
        return self._claim(self._metadata, link.url, by_resolver=by_resolver)

    def _reclaim_metadata(self, link: Link) -> _Job[FetchedMetadata | None]:
        """A new job of the resolver's for ``link``, in place of an abandoned one."""
        with self._lock:
            job = self._metadata[link.url] = _Job(by_resolver=True)
            return job

    def _take(self, job: _Job[Any], counted: str) -> bool:
        """Wait for a worker's job; replay its logs; whether it succeeded."""
        job.awaited.set()
        exception = job.future.exception()
        with self._lock:
            first = not job.taken
            job.taken = True
        if exception is not None:
            return False
        if first:
            self._count(counted)
            _replay(job.held)
        return True

    def _count(self, counter: str) -> None:
        with self._lock:
            setattr(self.stats, counter, getattr(self.stats, counter) + 1)

    # -- the workers' side ------------------------------------------------------

    def _submit(self, function: Callable[..., object], *args: object) -> None:
        with self._lock:
            if self._closed:
                return
            self._outstanding += 1
        # Outside the lock: submitting may start a thread, and the resolver
        # must never wait for that to take a claim.
        try:
            self._workers.submit(lambda: self._run_job(function, *args))
        except RuntimeError:  # close() shut the pool down in between
            self._job_done()

    def _run_job(self, function: Callable[..., object], *args: object) -> None:
        try:
            function(*args)
        finally:
            self._job_done()

    def _job_done(self) -> None:
        with self._idle:
            self._outstanding -= 1
            self._idle.notify_all()

    def _prefetch_project(
        self,
        name: str,
        specifier: SpecifierSet,
        hashes: Hashes | None,
        extras: frozenset[str],
    ) -> None:
        candidates = self._page(name)
        if candidates is None or self._closed:
            return
        evaluator = self._finder.make_candidate_evaluator(name, specifier, hashes)
        ranking = _preference_order(evaluator.compute_best_candidate(candidates))
        with self._lock:
            self._ranking[name] = ranking
        if self._hash_checking and not (
            ranking
            and is_only_installable_file(
                ranking[0], self._finder, name, hashes, candidates
            )
        ):
            return
        if ranking:
            fetched = self._prefetch_metadata(ranking[0])
            if fetched is None and extras and not self._closed:
                # Read already, or on its way, for a request without these
                # extras: what they add is still to be fetched.
                fetched = self._metadata_read_by_others(ranking[0])
            if fetched is not None:
                self._prefetch_requirements_of(fetched, extras)

    def _page(self, name: str) -> list[InstallationCandidate] | None:
        job, claimed = self._claim_page(name)
        if claimed:
            self._count("pages")
            job.run_held(lambda: self._find_all_candidates(name))
        if job.future.exception() is not None:
            return None
        return job.future.result()

    def _prefetch_metadata(self, link: Link) -> FetchedMetadata | None:
        """Fetch ``link``'s metadata unless someone has; what this call got."""
        if self._closed:
            return None
        job, claimed = self._claim_metadata(link)
        if not claimed:
            return None
        self._count("metadata")
        job.run_held(lambda: self._fetch_metadata(link))
        if job.future.exception() is not None or job.future.result() is None:
            self._count("failed")
            return None
        fetched = job.future.result()
        if fetched is not None and fetched.file_path is not None:
            self._count("wheels")
        return fetched

    def _metadata_read_by_others(self, link: Link) -> FetchedMetadata | None:
        """The metadata another thread has read (or is reading) for ``link``."""
        with self._lock:
            job = self._metadata.get(link.url)
        if job is None or job.future.exception() is not None:
            return None
        return job.future.result()

    def _prefetch_requirements_of(
        self, fetched: FetchedMetadata, extras: frozenset[str]
    ) -> None:
        """Read ahead of the resolver: the dependencies of a likely candidate.

        The resolver will only announce them once it pins the candidate,
        and then it looks up the first of them at once and waits for it.
        Starting now, from the metadata that is likely to be pinned, takes
        that wait off the resolver's path, at every level of the graph.
        """
        for name, specifier, wanted in _requirements_applying(fetched.contents, extras):
            self.prefetch(name, specifier, None, wanted)

    def _look_ahead_from(self, link: Link) -> None:
        """When the resolver has given up a better file of the project, read ahead.

        Being asked for a file that is not first in the ranking is not enough
        to call it backtracking: the resolver combines specifiers that the
        ranking, computed for one of them, may not know. The sign is that the
        resolver asked for the file just before it in the ranking, and has
        now left it for this one.
        """
        if not link.is_wheel:
            return
        name = canonicalize_name(link.filename.split("-", 1)[0])
        with self._lock:
            ranking = self._ranking.get(name, [])
            asked_before = set(self._asked_by_resolver.get(name, ()))
            self._asked_by_resolver.setdefault(name, []).append(link.url)
        urls = [candidate.url for candidate in ranking]
        if link.url not in urls:
            return
        position = urls.index(link.url)
        if position == 0 or urls[position - 1] not in asked_before:
            return
        for following in ranking[position + 1 : position + 1 + BACKTRACK_LOOKAHEAD]:
            self._submit(self._prefetch_metadata, following)


# -- what the resolver announces --------------------------------------------


@contextmanager
def prefetching(factory: Factory) -> Iterator[None]:
    """Prefetch for the resolution run inside the ``with`` block.

    Only with the fast-deps preparer, when it reads metadata alone:
    otherwise this does nothing. The prefetcher lives exactly as long as one
    resolution; when the block ends its threads stop and the finder is
    itself again.
    """
    from fastdeps.operations.prepare import FastDepsRequirementPreparer

    preparer = factory.preparer
    if not isinstance(preparer, FastDepsRequirementPreparer):
        yield
        return
    if not preparer.reads_metadata_only:
        yield
        return
    prefetcher = Prefetcher(
        factory._finder,
        preparer.metadata_fetcher.fetch,
        session=preparer._session,
        workers=preparer.fast_deps.prefetch_workers,
        hash_checking=preparer.require_hashes,
    )
    preparer.prefetcher = prefetcher
    try:
        yield
    finally:
        prefetcher.close()
        preparer.prefetcher = None


def prefetcher_of(factory: Factory) -> Prefetcher | None:
    """The prefetcher of the resolution ``factory`` serves, if there is one."""
    prefetcher = getattr(factory.preparer, "prefetcher", None)
    return prefetcher if isinstance(prefetcher, Prefetcher) else None


def prefetch_dependencies(prefetcher: Prefetcher, candidate: Candidate) -> None:
    """Announce what ``candidate`` depends on, before the resolver reads it.

    Read from the candidate's metadata, not from pip's lazy stream of
    requirements: producing a requirement for a direct URL prepares that
    URL, which pip does only once the candidate's Requires-Python and the
    dependencies before it have been accepted. The resolver then reads
    pip's stream exactly as without the prefetcher.
    """
    base = getattr(candidate, "base", candidate)  # an extras candidate's base
    dist = getattr(base, "dist", None)
    if dist is None:
        return  # Requires-Python, or a candidate without metadata
    try:
        requirements = list(dist.iter_dependencies(getattr(candidate, "extras", ())))
    except Exception:
        return  # pip reports it, when the resolver reads the dependencies
    for requirement in requirements:
        if requirement.url is None:
            prefetcher.prefetch(
                requirement.name, requirement.specifier, None, requirement.extras
            )


def prefetch_requirements(
    prefetcher: Prefetcher,
    requirements: Iterable[ResolverRequirement],
    constraints: Mapping[str, Constraint],
) -> None:
    """Announce the root requirements that name a project on an index.

    First every root requirement and constraint restricts its project, as
    pip's factory combines them with any requirement it looks up (so that
    a dependency on ``bar`` beside a root ``bar==1.0`` asks for 1.0 only);
    a project whose root requirement is a direct URL is never prefetched.
    """
    announced = []
    for name, constraint in constraints.items():
        if constraint.links:
            prefetcher.skip(name)
        else:
            prefetcher.restrict(name, constraint.specifier, constraint.hashes)
    for requirement in requirements:
        candidate, ireq = requirement.get_candidate_lookup()
        if candidate is not None:
            prefetcher.skip(requirement.project_name)
        elif ireq is not None and ireq.req is not None:
            hashes = ireq.hashes(trust_internet=False)
            prefetcher.restrict(requirement.project_name, ireq.req.specifier, hashes)
            announced.append(requirement.project_name)
    for name in announced:
        prefetcher.prefetch(name, SpecifierSet(), None)

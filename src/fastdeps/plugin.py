"""The one module that touches pip's internals: every seam is here.

pip-fastdeps binds into pip at places that exist in every supported
release. The main one is ``RequirementCommand.make_requirement_preparer``,
the classmethod that builds the :class:`RequirementPreparer` of
``install``, ``download``, ``wheel`` and ``lock``. When (and only when)
fast-deps is enabled, the preparer it returns gets three methods of its own:

``_fetch_metadata_only``
    the metadata from :class:`~fastdeps.operations.metadata.MetadataFetcher`
    (the cache, the PEP 658 file, then our lazy wheel), remembering which
    metadata the resolver was given, and kept on in hash-checking mode when
    the command downloads every file anyway (see
    :func:`_metadata_only_allowed`). When that fails, pip's own PEP 658 path
    or its normal download takes over and reports any error.
``_complete_partial_requirements``
    the parallel downloads, then pip's own per-requirement preparation
    (hash checks included) and the metadata comparison.
``save_linked_requirement``
    the same, but the copy into a download directory is atomic.

The preparer class is never changed, so a preparer built without fast-deps
is stock pip's, byte for byte. The other seams are inert without a
fast-deps preparer: one option, ``--fast-deps-jobs``, added to those four
commands; three resolver hooks that run the prefetcher
(:func:`_bind_resolver_hooks`); and ``pip cache``'s list of HTTP cache
files, which gains the metadata cache (:func:`bind_cache_command`).

Every wrapper carries a marker that names what it wraps, which makes
:func:`bind` idempotent: each seam is wrapped once.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from optparse import Values
from pathlib import Path
from types import MethodType
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from pip._internal.metadata import BaseDistribution
    from pip._internal.models.link import Link
    from pip._internal.req.req_install import InstallRequirement

    from fastdeps.operations.metadata import FetchedMetadata, MetadataFetcher

logger = logging.getLogger(__name__)

# Oldest and newest (major, minor) pip releases whose internals this module
# has been checked against; setup.cfg pins the same range.
OLDEST_PIP = (24, 1)
NEWEST_PIP = (26, 3)

FEATURE = "fast-deps"
_ENV_FEATURES = "PIP_USE_FEATURE"
_JOBS_OPTION = "--fast-deps-jobs"
_BOUND_MARKER = "_fastdeps_original"

# Commands whose argument list run_pip() extends with the feature flag.
PIP_COMMANDS = ("install", "download", "wheel", "lock")

_bound = False
_warned = False


# -- version gate ------------------------------------------------------------


def pip_version() -> tuple[int, int]:
    """(major, minor) of the pip that is imported, without importing pip's CLI."""
    import pip

    parts = pip.__version__.split(".")
    return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)


def is_supported(version: tuple[int, int]) -> bool:
    return OLDEST_PIP <= version <= NEWEST_PIP


def _fast_deps_requested() -> bool:
    """Whether this process asked for fast-deps, as far as can be told early.

    Only used to decide whether the unsupported-version warning is worth
    printing: a pip that runs without the feature is none of our business.
    """
    in_argv = any(FEATURE in argument for argument in sys.argv[1:])
    return in_argv or FEATURE in os.environ.get(_ENV_FEATURES, "")


def _warn_unsupported(version: tuple[int, int]) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    sys.stderr.write(
        f"WARNING: pip-fastdeps supports pip {OLDEST_PIP[0]}.{OLDEST_PIP[1]} to "
        f"{NEWEST_PIP[0]}.{NEWEST_PIP[1]}, not {version[0]}.{version[1]}; "
        "pip runs without it.\n"
    )


# -- binding -----------------------------------------------------------------


def bind() -> bool:
    """Bind the plugin into the imported pip; return whether it is bound.

    Safe to call any number of times. On an unsupported pip nothing is
    changed, and one warning is printed if fast-deps was asked for.
    """
    global _bound
    if _bound:
        return True
    version = pip_version()
    if not is_supported(version):
        if _fast_deps_requested():
            _warn_unsupported(version)
        return False
    from pip._internal.cli.req_command import RequirementCommand

    _wrap_make_requirement_preparer(RequirementCommand)
    _wrap_init_with_jobs_option(RequirementCommand)
    _bind_resolver_hooks()
    _bound = True
    return True


def bind_cache_command() -> bool:
    """Make ``pip cache purge`` (and ``pip cache remove '*'``) clear our cache.

    pip's cache command lists the files of its HTTP caches in one method;
    the metadata cache is derived from HTTP answers, so its entries are
    listed, counted and removed with them, in pip's own words.
    """
    if not is_supported(pip_version()):
        return False
    from pip._internal.commands.cache import CacheCommand

    original = CacheCommand._find_http_files
    if hasattr(original, _BOUND_MARKER):
        return True

    def _find_http_files(self: Any, options: Values) -> list[str]:
        from fastdeps.cache import CACHE_SUBDIR, MetadataCache

        files: list[str] = original(self, options)
        metadata_cache = MetadataCache(os.path.join(options.cache_dir, CACHE_SUBDIR))
        return files + [str(path) for path in metadata_cache.entries()]

    setattr(_find_http_files, _BOUND_MARKER, original)
    CacheCommand._find_http_files = _find_http_files  # type: ignore[method-assign]
    return True


def bind_python_option_warning() -> bool:
    """Warn when ``pip --python TARGET`` leaves the plugin behind.

    pip runs its own sources again under TARGET's interpreter, where this
    plugin is not installed: fast-deps there is stock pip's. pip parses its
    general options, ``--python`` among them, in ``parse_command``, before
    any command runs, and re-runs itself from there.
    """
    if not is_supported(pip_version()):
        return False
    from pip._internal.cli import main_parser

    from fastdeps._bootstrap import runs_elsewhere

    original = main_parser.parse_command
    if hasattr(original, _BOUND_MARKER):
        return True

    def parse_command(args: list[str]) -> tuple[str, list[str]]:
        if runs_elsewhere(args) and _fast_deps_requested():
            sys.stderr.write(
                "WARNING: pip-fastdeps is not active with --python: the pip run "
                "by that interpreter has stock fast-deps. Install pip-fastdeps "
                "in that environment to use it there.\n"
            )
        return original(args)

    setattr(parse_command, _BOUND_MARKER, original)
    main_parser.parse_command = parse_command
    return True


def _wrap_make_requirement_preparer(command_class: Any) -> None:
    current = command_class.__dict__["make_requirement_preparer"]
    if hasattr(current.__func__, _BOUND_MARKER):
        return
    original: Callable[..., Any] = current.__func__

    def make_requirement_preparer(
        cls: Any, temp_build_dir: Any, options: Values, *args: Any, **kwargs: Any
    ) -> Any:
        enabled = FEATURE in options.features_enabled
        if not enabled:
            _warn_if_jobs_given(options)
        if not enabled or cls.determine_resolver_variant(options) == "legacy":
            return original(cls, temp_build_dir, options, *args, **kwargs)
        # Build the preparer with the feature hidden, which skips pip's
        # "not ready for production" warning; it only set use_lazy_wheel.
        features = options.features_enabled
        options.features_enabled = [name for name in features if name != FEATURE]
        try:
            preparer = original(cls, temp_build_dir, options, *args, **kwargs)
        finally:
            options.features_enabled = features
        _enable_on(preparer, _settings_from(cls, options))
        return preparer

    setattr(make_requirement_preparer, _BOUND_MARKER, original)
    command_class.make_requirement_preparer = classmethod(make_requirement_preparer)


def _bind_resolver_hooks() -> None:
    """Prefetch during fast-deps resolutions, as soon as pip knows what to fetch.

    Three class-level wrappers, which do nothing unless the resolver's
    preparer is a fast-deps one: the resolution runs inside
    :func:`_prefetching`; the root requirements, once collected, and each
    candidate's dependencies, once the resolver asks for them, are announced
    to the prefetcher.
    """
    from pip._internal.resolution.resolvelib.factory import Factory
    from pip._internal.resolution.resolvelib.provider import PipProvider
    from pip._internal.resolution.resolvelib.resolver import Resolver

    if not hasattr(Resolver.resolve, _BOUND_MARKER):
        resolve = Resolver.resolve

        def resolve_prefetching(self: Any, *args: Any, **kwargs: Any) -> Any:
            with _prefetching(self.factory):
                return resolve(self, *args, **kwargs)

        setattr(resolve_prefetching, _BOUND_MARKER, resolve)
        Resolver.resolve = resolve_prefetching  # type: ignore[method-assign]

    if not hasattr(Factory.collect_root_requirements, _BOUND_MARKER):
        collect = Factory.collect_root_requirements

        def collect_root_requirements(self: Any, *args: Any, **kwargs: Any) -> Any:
            collected = collect(self, *args, **kwargs)
            prefetcher = _prefetcher_of(self)
            if prefetcher is not None:
                _prefetch(prefetcher, collected.requirements, collected.constraints)
            return collected

        setattr(collect_root_requirements, _BOUND_MARKER, collect)
        Factory.collect_root_requirements = collect_root_requirements  # type: ignore[method-assign]

    if not hasattr(PipProvider.get_dependencies, _BOUND_MARKER):
        get_dependencies = PipProvider.get_dependencies

        def get_dependencies_prefetched(self: Any, candidate: Any) -> Any:
            prefetcher = _prefetcher_of(self._factory)
            if prefetcher is not None:
                _prefetch_dependencies(prefetcher, candidate)
            return get_dependencies(self, candidate)

        setattr(get_dependencies_prefetched, _BOUND_MARKER, get_dependencies)
        PipProvider.get_dependencies = get_dependencies_prefetched  # type: ignore[method-assign]


@contextmanager
def _prefetching(factory: Any) -> Iterator[None]:
    """Prefetch for the resolution run inside the ``with`` block.

    Only with fast-deps, whose preparer has the settings: otherwise this
    does nothing. The prefetcher lives exactly as long as one resolution;
    when the block ends its threads stop and the finder is itself again.
    """
    from fastdeps.resolution.prefetch import Prefetcher

    preparer = factory.preparer
    settings: FastDepsSettings | None = getattr(preparer, "_fastdeps", None)
    if settings is None or not settings.reads_metadata_only(preparer.require_hashes):
        yield
        return
    settings.prefetcher = Prefetcher(
        factory._finder,
        settings.fetcher.fetch,
        session=preparer._session,
        workers=settings.prefetch_workers,
        hash_checking=preparer.require_hashes,
    )
    try:
        yield
    finally:
        settings.prefetcher.close()
        settings.prefetcher = None


def _prefetcher_of(factory: Any) -> Any:
    """The prefetcher of the resolution ``factory`` serves, if there is one."""
    settings = getattr(factory.preparer, "_fastdeps", None)
    return None if settings is None else settings.prefetcher


def _prefetch_dependencies(prefetcher: Any, candidate: Any) -> None:
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
            prefetcher.prefetch(requirement.name, requirement.specifier, None)


def _prefetch(prefetcher: Any, requirements: Iterable[Any], constraints: Any) -> None:
    """Announce the root requirements that name a project on an index.

    First every root requirement and constraint restricts its project, as
    pip's factory combines them with any requirement it looks up (so that
    a dependency on ``bar`` beside a root ``bar==1.0`` asks for 1.0 only);
    a project whose root requirement is a direct URL is never prefetched.
    """
    from pip._vendor.packaging.specifiers import SpecifierSet

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


def _wrap_init_with_jobs_option(command_class: Any) -> None:
    original = command_class.__init__
    if hasattr(original, _BOUND_MARKER):
        return

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if not self.parser.has_option(_JOBS_OPTION):
            self.cmd_opts.add_option(_jobs_option())

    setattr(__init__, _BOUND_MARKER, original)
    command_class.__init__ = __init__


def _warn_if_jobs_given(options: Values) -> None:
    """Say that ``--fast-deps-jobs`` does nothing without the feature.

    Stock pip has no such option; the plugin's is there for every run, so
    that pip.conf may set it, but a value someone chose deserves a word.
    """
    from fastdeps.operations.prepare import DEFAULT_DOWNLOAD_JOBS

    jobs = getattr(options, "fast_deps_jobs", None)
    if jobs is not None and jobs != DEFAULT_DOWNLOAD_JOBS:
        logger.warning(
            "%s has no effect without --use-feature=%s", _JOBS_OPTION, FEATURE
        )


def _jobs_option() -> Any:
    from optparse import Option

    from fastdeps.operations.prepare import DEFAULT_DOWNLOAD_JOBS

    # A real pip option, so pip's configuration applies to it as to any
    # other: --fast-deps-jobs, PIP_FAST_DEPS_JOBS, fast-deps-jobs in pip.conf.
    return Option(
        _JOBS_OPTION,
        dest="fast_deps_jobs",
        type="int",
        metavar="N",
        default=DEFAULT_DOWNLOAD_JOBS,
        help=(
            "With --use-feature=fast-deps (pip-fastdeps): download at most N "
            "files at the same time (default: %default)."
        ),
    )


# -- what an enabled preparer knows -----------------------------------------


@dataclass
class FastDepsSettings:
    """The options the bound methods need, read once from pip's options."""

    jobs: int
    progress_bar: str
    metadata_only_with_hashes: bool
    cache_dir: str | None = None
    # link URL -> (distribution the resolver used, where it came from, and
    # what the fetcher returned: None when pip's own PEP 658 path read it)
    metadata_used: dict[str, tuple[Any, str, Any]] = field(default_factory=dict)
    # Set up by _enable_on and, for one resolution only, _prefetching.
    fetcher: Any = None
    prefetcher: Any = None

    @property
    def prefetch_workers(self) -> int:
        """Twice the downloads: a metadata read is mostly waiting."""
        return 2 * self.jobs

    def reads_metadata_only(self, require_hashes: bool) -> bool:
        """Whether resolution may read metadata alone, not whole files.

        Always, except in hash-checking mode when the command does not
        download the files afterwards (``metadata_only_with_hashes``).
        """
        return not require_hashes or self.metadata_only_with_hashes


def _settings_from(command_class: Any, options: Values) -> FastDepsSettings:
    from pip._internal.exceptions import CommandError

    jobs = getattr(options, "fast_deps_jobs", None)
    if jobs is None:
        from fastdeps.operations.prepare import DEFAULT_DOWNLOAD_JOBS

        jobs = DEFAULT_DOWNLOAD_JOBS
    if jobs < 1:
        raise CommandError(f"{_JOBS_OPTION} must be at least 1, not {jobs}")
    return FastDepsSettings(
        jobs=jobs,
        progress_bar=str(getattr(options, "progress_bar", "on")),
        metadata_only_with_hashes=_metadata_only_allowed(command_class, options),
        cache_dir=getattr(options, "cache_dir", None) or None,
    )


def _metadata_only_allowed(command_class: Any, options: Values) -> bool:
    """Whether metadata-only resolution may stay on in hash-checking mode.

    Stock pip turns it off there. We keep it on when the command goes on to
    download every file it resolved (install, download, wheel), because then
    nothing weaker than stock pip is guaranteed:

    - every file still passes pip's own ``Hashes.check_against_path`` in
      ``_prepare_linked_requirement`` before it is installed or saved, and a
      missing or unpinned hash fails as it does in stock pip;
    - the metadata the resolver used is compared with the verified file's
      METADATA, and any difference aborts;
    - metadata is read without its file only for a project's only
      installable file (:func:`_metadata_can_choose_the_file`): a pin such
      as ``==1.*``, or one version with a wheel and an sdist, leaves the
      resolver a choice that unverified metadata could steer, and there
      pip's own path reads each file whole, as stock pip does.

    ``install --dry-run`` and ``lock`` never download the files, so there the
    metadata would stay unverified: metadata-only stays off, as in stock pip.
    """
    if getattr(options, "dry_run", False):
        return False
    command_name: str = command_class.__name__
    return command_name != "LockCommand"


def _enable_on(preparer: Any, settings: FastDepsSettings) -> None:
    """Turn a stock preparer into a fast-deps one, for this command only.

    In the upstream patch series this is the constructor of
    ``FastDepsRequirementPreparer`` (``PREPARER_CLASS`` in
    tools/upstream/series.py): change both together.
    """
    from pip._internal.utils.logging import get_indentation

    import fastdeps
    from fastdeps.cache import open_metadata_cache
    from fastdeps.operations.metadata import MetadataFetcher
    from fastdeps.operations.whole_files import WholeFiles

    preparer.use_lazy_wheel = True
    settings.fetcher = MetadataFetcher(
        preparer._session,
        open_metadata_cache(settings.cache_dir),
        WholeFiles.in_pip_temp_dir(),
    )
    preparer._fastdeps = settings
    for name, function in _PREPARER_METHODS.items():
        setattr(preparer, name, MethodType(function, preparer))
    logger.info(
        "%spip-fastdeps %s is active: metadata from range requests, "
        "up to %d parallel downloads",
        " " * get_indentation(),
        fastdeps.__version__,
        settings.jobs,
    )


# -- the preparer's new methods ----------------------------------------------


def _fetch_metadata_only(self: Any, req: Any) -> Any:
    from fastdeps.operations.metadata import FROM_PEP_658

    settings: FastDepsSettings = self._fastdeps
    if self.legacy_resolver:
        return None
    if not settings.reads_metadata_only(self.require_hashes):
        logger.debug(
            "Metadata-only fetching is not used: hash checking is required "
            "and this command does not download the files afterwards"
        )
        return None
    if self.require_hashes and _metadata_can_choose_the_file(self, req):
        logger.debug(
            "Metadata-only fetching is not used for %s: hash checking is "
            "required and more than one file satisfies it",
            req.req,
        )
        return None
    fetched = _fetched_metadata(self, req.link)
    if fetched is not None:
        dist = _dist_from_fetched_metadata(self, req, fetched)
        if dist is not None:
            settings.metadata_used[req.link.url] = (dist, fetched.source, fetched)
            return dist
    # No metadata, or metadata pip would not accept (another project's, say).
    # pip's PEP 658 path reports a broken .metadata file; without one, None
    # makes pip download the file and report, in its own words, whatever is
    # wrong with it. Another lazy read would only repeat the failure.
    dist = self._fetch_metadata_using_link_data_attr(req)
    if dist is not None:
        settings.metadata_used[req.link.url] = (dist, FROM_PEP_658, None)
    return dist


def _metadata_can_choose_the_file(self: Any, req: InstallRequirement) -> bool:
    """Whether unverified metadata of ``req``'s file could change what is installed.

    A direct URL names its one file; a requirement from an index is safe
    only for its project's only installable file (see
    :func:`~fastdeps.operations.metadata.is_only_installable_file`). The
    project's page was fetched already: the finder answers from its cache.
    """
    from fastdeps.operations.metadata import is_only_installable_file

    if req.original_link is not None:
        return False
    if req.req is None or req.link is None:
        return True
    name = req.req.name
    hashes = req.hashes(trust_internet=False)
    candidates = self.finder.find_all_candidates(name)
    return not is_only_installable_file(req.link, self.finder, name, hashes, candidates)


def _fetched_metadata(self: Any, link: Link) -> FetchedMetadata | None:
    """The metadata of ``link`` from the prefetcher, the cache or the server.

    None when no fast path worked; why is logged at debug level.
    """
    settings: FastDepsSettings = self._fastdeps
    fetcher: MetadataFetcher = settings.fetcher
    if settings.prefetcher is None:
        return fetcher.fetch(link)
    fetched: FetchedMetadata | None = settings.prefetcher.metadata(
        link, lambda: fetcher.fetch(link)
    )
    return fetched


def _dist_from_fetched_metadata(
    self: Any, req: InstallRequirement, fetched: FetchedMetadata
) -> BaseDistribution | None:
    """The distribution of ``fetched`` metadata, if pip would accept it.

    None lets pip's own code try, and report what went wrong.
    """
    from pip._internal.utils._log import VERBOSE
    from pip._vendor.packaging.utils import canonicalize_name

    from fastdeps.network.lazy_wheel import metadata_distribution
    from fastdeps.operations.metadata import (
        FROM_LAZY_WHEEL,
        FROM_PEP_658,
        FROM_WHOLE_FILE,
    )

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
    if fetched.source == FROM_LAZY_WHEEL:
        logger.info(
            "Obtaining dependency information from %s %s", dist.raw_name, dist.version
        )
    elif fetched.source == FROM_PEP_658:
        logger.log(
            VERBOSE,
            "Obtaining dependency information for %s from %s",
            req.req,
            link.metadata_link(),
        )
    elif fetched.source == FROM_WHOLE_FILE:
        logger.info(
            "Obtaining dependency information from %s %s, downloaded whole",
            dist.raw_name,
            dist.version,
        )
    else:
        logger.log(VERBOSE, "Using cached metadata of %s", link.filename)
    return dist


def _complete_partial_requirements(
    self: Any, partially_downloaded_reqs: Iterable[Any], parallel_builds: bool = False
) -> None:
    from pip._internal.exceptions import HashError
    from pip._internal.utils.logging import get_indentation
    from pip._internal.utils.temp_dir import TempDirectory

    from fastdeps.operations.prepare import download_files, make_progress

    settings: FastDepsSettings = self._fastdeps
    reqs = list(partially_downloaded_reqs)
    if reqs:
        temp_dir = TempDirectory(kind="unpack", globally_managed=True).path
        links = list(dict.fromkeys(req.link for req in reqs))
        received = _files_received(settings, reqs)
        to_download = [link for link in links if link not in received]
        files = download_files(
            self._session,
            links,
            temp_dir,
            jobs=settings.jobs,
            progress=make_progress(
                settings.progress_bar, len(to_download), get_indentation()
            ),
            fallback=self._download,
            received=received,
        )
        for req in reqs:
            path, _content_type = files[req.link]
            # As pip does: the file is known to _prepare_linked_requirement,
            # which checks its hashes, and an sdist is unpacked from it.
            req.local_file_path = path
            self._downloaded[req.link.url] = path
            if not req.is_wheel:
                req.needs_unpacked_archive(Path(path))

    for req in reqs:
        try:
            dist = self._prepare_linked_requirement(req, parallel_builds)
        except HashError as exc:
            # During resolution pip's candidate attaches the requirement, so
            # the error shows the offending line; do the same here.
            exc.req = req
            raise
        used = settings.metadata_used.get(req.link.url)
        if used is not None and req.link.is_wheel and dist is not used[0]:
            _check_metadata_used(self, req.link, used, dist)


def _files_received(
    settings: FastDepsSettings, reqs: Iterable[InstallRequirement]
) -> dict[Link, str]:
    """The wheels that arrived whole while their metadata was read: on disk."""
    received = {}
    for req in reqs:
        used = settings.metadata_used.get(req.link.url) if req.link else None
        fetched = None if used is None else used[2]
        if req.link is not None and fetched is not None and fetched.file_path:
            received[req.link] = fetched.file_path
    return received


def _check_metadata_used(
    self: Any, link: Link, used: tuple[Any, str, Any], dist: BaseDistribution
) -> None:
    """Compare the resolver's metadata with the verified file's own METADATA.

    Whatever the answer, the metadata cache is then made to agree with the
    file (see :meth:`MetadataFetcher.settle`), so that an inconsistent
    answer stored by this run or an earlier one does not fail the next run;
    a difference raises :class:`MetadataMismatch`, which says what was done.
    """
    from fastdeps.operations.metadata import CacheOutcome
    from fastdeps.operations.prepare import MetadataMismatch, metadata_difference

    settings: FastDepsSettings = self._fastdeps
    used_dist, source, fetched = used
    difference = metadata_difference(used_dist, dist)
    outcome = CacheOutcome.NOT_CACHED
    if fetched is not None:
        outcome = settings.fetcher.settle(
            link, fetched, _file_metadata(dist), consistent=difference is None
        )
    if difference is not None:
        raise MetadataMismatch(link.filename, source, difference, outcome)


def _file_metadata(dist: BaseDistribution) -> bytes | None:
    """The METADATA of a wheel's distribution, as bytes, or None (logged)."""
    try:
        return dist.read_text("METADATA").encode("utf-8")
    except Exception as exc:
        logger.debug("Cannot read the METADATA of %s: %s", dist, exc)
        return None


def _save_linked_requirement(self: Any, req: Any) -> None:
    from pip._internal.utils.misc import display_path

    from fastdeps.operations.prepare import copy_atomically

    link = req.link
    copies_a_file = (
        self.download_dir is not None
        and link is not None
        and not link.is_vcs
        and not link.is_existing_dir()
        and req.local_file_path is not None
    )
    if not copies_a_file:
        type(self).save_linked_requirement(self, req)
        return
    destination = os.path.join(self.download_dir, os.path.basename(link.filename))
    if not os.path.exists(destination):
        copy_atomically(req.local_file_path, destination)
        logger.info("Saved %s", display_path(destination))


_PREPARER_METHODS: dict[str, Callable[..., Any]] = {
    "_fetch_metadata_only": _fetch_metadata_only,
    "_complete_partial_requirements": _complete_partial_requirements,
    "save_linked_requirement": _save_linked_requirement,
}


# -- python -m fastdeps ------------------------------------------------------


def _with_feature_flag(argv: list[str]) -> list[str]:
    """``argv`` with ``--use-feature=fast-deps`` right after the command."""
    flag = f"--use-feature={FEATURE}"
    for position, argument in enumerate(argv):
        if argument in PIP_COMMANDS:
            return [*argv[: position + 1], flag, *argv[position + 1 :]]
    return [*argv, flag]


def run_pip(argv: list[str]) -> int:
    """Run pip's CLI with the plugin bound and fast-deps enabled."""
    from pip._internal.cli.main import main

    if not bind():
        _warn_unsupported(pip_version())
    status: int = main(_with_feature_flag(list(argv)))
    return status

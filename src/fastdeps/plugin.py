"""Where pip-fastdeps binds into pip: every seam is here.

pip-fastdeps binds into pip at places that exist in every supported
release, each through :mod:`fastdeps.seams`:

- ``RequirementCommand.make_requirement_preparer``, the classmethod that
  builds the preparer of ``install``, ``download``, ``wheel`` and ``lock``:
  when (and only when) fast-deps is enabled, pip's own code builds a
  :class:`~fastdeps.operations.prepare.FastDepsRequirementPreparer` instead
  of its ``RequirementPreparer``, with the same arguments;
- one option, ``--fast-deps-jobs``, added to those commands;
- three resolver hooks that run the prefetcher
  (:mod:`fastdeps.resolution.prefetch`), which do nothing unless the
  resolver's preparer is the fast-deps one;
- ``pip cache``'s list of HTTP cache files, which gains the metadata cache;
- ``pip --python``, which warns that the pip it runs elsewhere has no
  pip-fastdeps;
- ``pip install``, whose bytecode is compiled in parallel
  (:mod:`fastdeps.install_seams`).

While fast-deps runs, three more of pip's objects are changed for a while,
and only through the named context managers of :mod:`fastdeps.seams`.
Without the feature, every pip object is stock pip's.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from optparse import Values
from typing import Any, Callable

from fastdeps import pip_versions
from fastdeps.pip_versions import FEATURE
from fastdeps.seams import replaced

logger = logging.getLogger(__name__)

_JOBS_OPTION = "--fast-deps-jobs"

#: The attribute of a wrapper that holds what it wraps.
WRAPPED = "_fastdeps_original"

_bound = False


# -- binding -----------------------------------------------------------------


def bind() -> bool:
    """Bind the plugin into the imported pip; return whether it is bound.

    Safe to call any number of times. On an unsupported pip nothing is
    changed, and one warning is printed if fast-deps was asked for.
    """
    global _bound
    if _bound:
        return True
    version = pip_versions.pip_version()
    if not pip_versions.is_supported(version):
        if pip_versions.fast_deps_requested():
            pip_versions.warn_unsupported(version)
        return False
    from pip._internal.cli.req_command import RequirementCommand

    wrap(RequirementCommand, "make_requirement_preparer", _preparer_factory)
    wrap(RequirementCommand, "__init__", _init_with_jobs_option)
    _bind_resolver_hooks()
    _bound = True
    return True


def bind_cache_command() -> bool:
    """Make ``pip cache purge`` (and ``pip cache remove '*'``) clear our cache.

    pip's cache command lists the files of its HTTP caches in one method;
    the metadata cache is derived from HTTP answers, so its entries are
    listed, counted and removed with them, in pip's own words.
    """
    if not pip_versions.is_supported(pip_versions.pip_version()):
        return False
    from pip._internal.commands.cache import CacheCommand

    def with_metadata_cache(original: Callable[..., list[str]]) -> Any:
        def _find_http_files(self: Any, options: Values) -> list[str]:
            from fastdeps.cache import CACHE_SUBDIR, MetadataCache

            files = original(self, options)
            cache = MetadataCache(os.path.join(options.cache_dir, CACHE_SUBDIR))
            return files + [str(path) for path in cache.entries()]

        return _find_http_files

    wrap(CacheCommand, "_find_http_files", with_metadata_cache)
    return True


def bind_python_option_warning() -> bool:
    """Warn when ``pip --python TARGET`` leaves the plugin behind.

    pip runs its own sources again under TARGET's interpreter, where this
    plugin is not installed: fast-deps there is stock pip's. pip parses its
    general options, ``--python`` among them, in ``parse_command``, before
    any command runs, and re-runs itself from there.
    """
    if not pip_versions.is_supported(pip_versions.pip_version()):
        return False
    from pip._internal.cli import main_parser

    from fastdeps._bootstrap import runs_elsewhere

    def warning_first(original: Callable[..., tuple[str, list[str]]]) -> Any:
        def parse_command(args: list[str]) -> tuple[str, list[str]]:
            if runs_elsewhere(args) and pip_versions.fast_deps_requested():
                sys.stderr.write(
                    "WARNING: pip-fastdeps is not active with --python: the pip "
                    "run by that interpreter has stock fast-deps. Install "
                    "pip-fastdeps in that environment to use it there.\n"
                )
            return original(args)

        return parse_command

    wrap(main_parser, "parse_command", warning_first)
    return True


def wrap(
    owner: object, name: str, make_wrapper: Callable[[Callable[..., Any]], Any]
) -> None:
    """Replace ``owner.name`` by ``make_wrapper(original)``, once per process.

    The wrapper carries the original under :data:`WRAPPED`, which makes this
    idempotent: a second call finds it and changes nothing.
    """
    current = vars(owner)[name] if name in vars(owner) else getattr(owner, name)
    function = getattr(current, "__func__", current)
    if hasattr(function, WRAPPED):
        return
    wrapper = make_wrapper(function)
    inner = getattr(wrapper, "__func__", wrapper)
    setattr(inner, WRAPPED, function)
    setattr(owner, name, wrapper)


# -- the preparer ------------------------------------------------------------


def _preparer_factory(original: Callable[..., Any]) -> classmethod[Any, Any, Any]:
    def make_requirement_preparer(
        cls: Any, temp_build_dir: Any, options: Values, *args: Any, **kwargs: Any
    ) -> Any:
        enabled = FEATURE in options.features_enabled
        if not enabled:
            _warn_if_jobs_given(options)
        if not enabled or cls.determine_resolver_variant(options) == "legacy":
            return original(cls, temp_build_dir, options, *args, **kwargs)
        with _building_fast_deps_preparer(cls, options):
            return original(cls, temp_build_dir, options, *args, **kwargs)

    return classmethod(make_requirement_preparer)


@contextmanager
def _building_fast_deps_preparer(
    command_class: type, options: Values
) -> Iterator[None]:
    """pip's own code builds the fast-deps preparer, with pip's arguments.

    The feature is hidden meanwhile, which skips pip's "not ready for
    production" warning; that is all pip does with it there.
    """
    from pip._internal.cli import req_command

    from fastdeps.cli.req_command import fast_deps_settings
    from fastdeps.operations.prepare import FastDepsRequirementPreparer

    preparer_class = partial(
        FastDepsRequirementPreparer,
        fast_deps=fast_deps_settings(command_class, options),
    )
    features = [name for name in options.features_enabled if name != FEATURE]
    with (
        replaced(options, "features_enabled", features),
        replaced(req_command, "RequirementPreparer", preparer_class),
    ):
        yield


def _init_with_jobs_option(original: Callable[..., None]) -> Any:
    from fastdeps.cli.cmdoptions import fast_deps_jobs

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if not self.parser.has_option(_JOBS_OPTION):
            self.cmd_opts.add_option(fast_deps_jobs())

    return __init__


def _warn_if_jobs_given(options: Values) -> None:
    """Say that ``--fast-deps-jobs`` does nothing without the feature.

    Stock pip has no such option; the plugin's is there for every run, so
    that pip.conf may set it, but a value someone chose deserves a word.
    """
    from fastdeps.cli.cmdoptions import DEFAULT_DOWNLOAD_JOBS

    jobs = getattr(options, "fast_deps_jobs", None)
    if jobs is not None and jobs != DEFAULT_DOWNLOAD_JOBS:
        logger.warning(
            "%s has no effect without --use-feature=%s", _JOBS_OPTION, FEATURE
        )


# -- the resolver ------------------------------------------------------------


def _bind_resolver_hooks() -> None:
    """Prefetch during fast-deps resolutions, as soon as pip knows what to fetch.

    Three class-level wrappers, which do nothing unless the resolver's
    preparer is a fast-deps one: the resolution runs inside ``prefetching()``;
    the root requirements, once collected, and each candidate's
    dependencies, once the resolver asks for them, are announced to the
    prefetcher.
    """
    from pip._internal.resolution.resolvelib.factory import Factory
    from pip._internal.resolution.resolvelib.provider import PipProvider
    from pip._internal.resolution.resolvelib.resolver import Resolver

    wrap(Resolver, "resolve", _resolving_prefetched)
    wrap(Factory, "collect_root_requirements", _roots_announced)
    wrap(PipProvider, "get_dependencies", _dependencies_announced)


def _resolving_prefetched(resolve: Callable[..., Any]) -> Any:
    from fastdeps.resolution.prefetch import prefetching

    def resolve_prefetching(self: Any, *args: Any, **kwargs: Any) -> Any:
        with prefetching(self.factory):
            return resolve(self, *args, **kwargs)

    return resolve_prefetching


def _roots_announced(collect: Callable[..., Any]) -> Any:
    from fastdeps.resolution.prefetch import prefetch_requirements, prefetcher_of

    def collect_root_requirements(self: Any, *args: Any, **kwargs: Any) -> Any:
        collected = collect(self, *args, **kwargs)
        prefetcher = prefetcher_of(self)
        if prefetcher is not None:
            prefetch_requirements(
                prefetcher, collected.requirements, collected.constraints
            )
        return collected

    return collect_root_requirements


def _dependencies_announced(get_dependencies: Callable[..., Any]) -> Any:
    from fastdeps.resolution.prefetch import prefetch_dependencies, prefetcher_of

    def get_dependencies_prefetched(self: Any, candidate: Any) -> Any:
        prefetcher = prefetcher_of(self._factory)
        if prefetcher is not None:
            prefetch_dependencies(prefetcher, candidate)
        return get_dependencies(self, candidate)

    return get_dependencies_prefetched

"""Bytecode compiled in a pool of processes while pip installs the next wheels.

pip compiles a wheel's ``.py`` files one at a time, right after extracting
the wheel and before the next one, on one core: for a large environment
that is most of the install step. :class:`ParallelBytecode` lets pip
install each wheel without compiling it, hands the wheel's files to a pool
of processes, and goes on with the next wheel while they compile; once the
last wheel is installed (or an install fails), every wheel's compiled files
are added to its RECORD, as pip would have recorded them.

What stock pip writes, it writes: the same files compiled (every installed
``.py`` file, as pip chooses them), by :func:`compileall.compile_file` with
pip's arguments, in processes that inherit the interpreter's optimisation
level and ``SOURCE_DATE_EPOCH``; the same RECORD rows (a compiled file's
path, without hash or size), sorted as pip sorts them; compiler output
logged at debug level, as pip logs it. Whatever could make a compilation
see other bytes than pip's does is waited for first: before a wheel that
writes a path another wheel's pending compilation reads, and before pip
uninstalls anything.
"""

from __future__ import annotations

import compileall
import contextlib
import csv
import ctypes
import importlib
import importlib.util
import io
import logging
import multiprocessing
import os
import signal
import stat
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from optparse import Values
from typing import IO, Any, cast

from pip._internal.models.scheme import Scheme
from pip._internal.operations.install.wheel import (
    csv_io_kwargs,
    wheel_root_is_purelib,
)
from pip._internal.utils._log import VERBOSE
from pip._internal.utils.filesystem import adjacent_tmp_file, replace
from pip._internal.utils.wheel import parse_wheel

from fastdeps.utils.parallel import PROCESS_POOLS_WORK

logger = logging.getLogger(__name__)

try:  # pip 26.3 and later refuse imports while installing, with this error
    from pip._internal.exceptions import BlockedImportError

    _IMPORT_REFUSED: tuple[type[Exception], ...] = (BlockedImportError, ImportError)
except ImportError:
    _IMPORT_REFUSED = (ImportError,)

#: What starting a process pool imports: imported with this module, since
#: pip 26.3 refuses imports once it has begun to install.
_POOL_MODULES = (
    "concurrent.futures.process",
    "multiprocessing.connection",
    "multiprocessing.popen_fork",
    "multiprocessing.queues",
    "multiprocessing.synchronize",
)
if sys.platform == "linux":
    for _module in _POOL_MODULES:
        importlib.import_module(_module)

#: prctl(2): a Linux process asks to be sent a signal when its parent ends
#: (strictly, the parent's thread that forked it: forked_pool forks every
#: worker at once, from the thread that makes the pool).
_PR_SET_PDEATHSIG = 1


def _libc() -> ctypes.CDLL | None:
    if sys.platform != "linux":
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()

#: Files sent to a worker at a time: sending each on its own costs about as
#: much as compiling it.
SOURCES_PER_JOB = 64


def in_batches(paths: list[str]) -> list[list[str]]:
    """``paths`` in order, in batches of :data:`SOURCES_PER_JOB`."""
    size = SOURCES_PER_JOB
    return [paths[start : start + size] for start in range(0, len(paths), size)]


#: What one compilation gives back: the source, whether it compiled, and
#: what the compiler printed.
Compiled = tuple[str, bool, str]


def compile_source(path: str) -> Compiled:
    """Compile one file as pip does; in a worker process.

    pip calls ``compileall.compile_file(path, force=True, quiet=True)`` with
    warnings ignored and standard output captured for its debug log.
    """
    output = io.StringIO()
    with contextlib.redirect_stdout(output), warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        try:
            success = bool(compileall.compile_file(path, force=True, quiet=True))
        except _IMPORT_REFUSED as exc:
            print(f"Skipping bytecode compilation for {path}: {exc}")
            success = False
    return path, success, output.getvalue()


def compile_sources(paths: list[str]) -> list[Compiled]:
    """Compile several files in one worker: one message each way for all."""
    return [compile_source(path) for path in paths]


def _worker_ready() -> None:
    """Nothing: submitted once so that the workers start right away."""


def _die_with_parent(parent: int) -> None:
    """A worker's first step: end when pip ends, however pip ends.

    A forked worker holds pip's standard output and error, and its end of
    the pool's pipes: one that outlived a pip killed with SIGKILL would wait
    for work forever, and whoever reads pip's output would wait with it.
    """
    if _LIBC is not None:
        with contextlib.suppress(Exception):
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # pip ended before the request was made
        os._exit(1)


def forked_pool(workers: int, what: str) -> ProcessPoolExecutor | None:
    """A pool of ``workers`` processes, forked now; None where there can be
    none (pip then does the work itself, as it does without the feature).
    The workers end when pip does (:func:`_die_with_parent`). One pool for
    the whole command, not :func:`~fastdeps.utils.parallel.map_multiprocess`'s
    pool per call: pip 26.3 blocks imports once it installs, and a process
    forked while pip's threads run may inherit a lock one of them held."""
    fork = multiprocessing.get_context("fork")
    try:
        pool = ProcessPoolExecutor(
            workers,
            mp_context=fork,
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
        )
        pool.submit(_worker_ready).result()
    except Exception as exc:
        logger.debug("No %s (%r); pip does the work itself", what, exc)
        return None
    return pool


@dataclass
class _PendingWheel:
    """One installed wheel whose files are compiling."""

    plan: WheelPlan
    #: Each batch of sources, and the pool's compilation of it (None when
    #: there is no pool: the batch is compiled here, as pip would).
    batches: list[tuple[list[str], Future[list[Compiled]] | None]]

    @property
    def sources(self) -> frozenset[str]:
        return self.plan.sources

    def finish(self) -> None:
        """Wait for the compilations; add their files to the wheel's RECORD."""
        results = sorted(
            compiled for batch in self.batches for compiled in _compiled(*batch)
        )
        # One debug record per wheel, empty or not, as pip logs it.
        logger.debug("".join(text for _, _, text in results))
        compiled = [
            importlib.util.cache_from_source(path)
            for path, success, _ in results
            if success
        ]
        add_to_record(self.plan.record_path, self.plan.lib_dir, compiled)


def _compiled(
    paths: list[str], future: Future[list[Compiled]] | None
) -> list[Compiled]:
    """The pool's results for a batch; if the pool broke, compiled here.

    A worker that dies (killed for memory, say) must not fail an install
    that stock pip would complete: this process compiles the batch then,
    exactly as pip does.
    """
    if future is not None:
        try:
            return future.result()
        except Exception as exc:
            logger.debug("Bytecode pool failed (%r); compiling here", exc)
    return compile_sources(paths)


class ParallelBytecode:
    """Compiles each installed wheel's files in a pool, one wheel after another.

    :param workers: processes in the pool, started by :meth:`start`.
    """

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._started = False
        self._pending: list[_PendingWheel] = []
        #: Whether the wheel being installed has all its files in place.
        self._files_in_place = False

    def start(self) -> None:
        """Start the workers, as pip is about to install the first wheel.

        Forked then, they are in the state pip compiles in: the modules pip
        imported, and pip 26.3's refusal of any other import once installing
        has begun (a source whose encoding needs a codec pip did not import
        is not compiled, with pip as without the pool). Everything a pool
        needs was imported with this module, before pip refuses imports.
        """
        if self._started:
            return
        self._started = True
        self._pool = forked_pool(self._workers, "bytecode pool")

    def install_wheel(
        self, original: Callable[..., None], *args: Any, **kwargs: Any
    ) -> None:
        """pip's ``install_wheel``, with the compilation left to the pool.

        A wheel this cannot plan for (one pip will refuse, say) is installed
        by pip as it is, compiled by pip, once the pending wheels are done:
        pip then reports whatever is wrong, in its own words.
        """
        if not kwargs.get("pycompile", True):
            original(*args, **kwargs)
            return
        plan = plan_for(*_wheel_arguments(args, kwargs))
        if plan is None or any(wheel.sources & plan.sources for wheel in self._pending):
            self.finish()
        if plan is None:
            original(*args, **kwargs)
            return
        self._files_in_place = False
        try:
            original(*args, **{**kwargs, "pycompile": False})
        except Exception:
            if self._files_in_place:
                # pip compiles a wheel's files as soon as they are in place:
                # what it leaves of a wheel that fails afterwards is compiled.
                compiled = compile_sources(_installed_paths(plan))
                logger.debug("".join(text for _, _, text in compiled))
            raise
        self._compile(plan)

    def files_in_place(
        self, original: Callable[..., list[str]], *args: Any, **kwargs: Any
    ) -> list[str]:
        """pip's ``get_console_script_specs``, which pip calls right after it
        compiles a wheel's files, before anything else can fail."""
        self._files_in_place = True
        return original(*args, **kwargs)

    def _compile(self, plan: WheelPlan) -> None:
        self.start()
        paths = _installed_paths(plan)
        batches = [self._submit(batch) for batch in in_batches(paths)]
        self._pending.append(_PendingWheel(plan, batches))
        if self._pool is None:
            return
        logger.log(
            VERBOSE,
            "Compiling %d files of %s in %d processes",
            len(paths),
            plan.name,
            self._workers,
        )

    def _submit(
        self, paths: list[str]
    ) -> tuple[list[str], Future[list[Compiled]] | None]:
        if self._pool is None:
            return paths, None
        try:
            return paths, self._pool.submit(compile_sources, paths)
        except Exception:  # a broken pool refuses work: compiled at finish
            return paths, None

    def install_all(
        self, original: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        """pip's ``install_given_reqs``: the pool starts first, and everything
        is recorded before it returns, even when an install fails."""
        self.start()
        try:
            return original(*args, **kwargs)
        finally:
            self.finish()

    def after_pending(self, method: Callable[..., Any]) -> Callable[..., Any]:
        """``method`` of pip's, run once every pending compilation is done."""

        def finished_first(instance: Any, *args: Any, **kwargs: Any) -> Any:
            self.finish()
            return method(instance, *args, **kwargs)

        return finished_first

    def finish(self) -> None:
        """Wait for every pending compilation and record it, in pip's order."""
        pending, self._pending = self._pending, []
        for wheel in pending:
            wheel.finish()

    def close(self) -> None:
        try:
            self.finish()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)


def _wheel_arguments(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, str, Scheme]:
    """``install_wheel(name, wheel_path, scheme, ...)``'s first three."""
    names = ("name", "wheel_path", "scheme")
    values = dict(zip(names, args))
    values.update({key: kwargs[key] for key in names if key in kwargs})
    return values["name"], values["wheel_path"], values["scheme"]


@dataclass(frozen=True)
class WheelPlan:
    """What pip will install of one wheel, and compile."""

    name: str
    lib_dir: str
    record_path: str
    #: The ``.py`` files it installs, as RECORD names them (relative to
    #: ``lib_dir``): what pip compiles, and what a later wheel must not
    #: overwrite while they compile.
    sources: frozenset[str]


def _installed_paths(plan: WheelPlan) -> list[str]:
    """The plan's sources that pip installed, as pip compiles them: sorted."""
    installed = (os.path.join(plan.lib_dir, path) for path in sorted(plan.sources))
    return [path for path in installed if os.path.isfile(path)]


def plan_for(name: str, wheel_path: str, scheme: Scheme) -> WheelPlan | None:
    """The plan for a wheel, or None when pip would refuse it."""
    try:
        with zipfile.ZipFile(wheel_path) as wheel_zip:
            info_dir, metadata = parse_wheel(wheel_zip, name)
            purelib = wheel_root_is_purelib(metadata)
            lib_dir = scheme.purelib if purelib else scheme.platlib
            sources = _installed_sources(wheel_zip.namelist(), scheme, lib_dir)
    except Exception:
        return None
    if sources is None:
        return None
    record_path = os.path.join(lib_dir, info_dir, "RECORD")
    return WheelPlan(name, lib_dir, record_path, sources)


def _installed_sources(
    names: list[str], scheme: Scheme, lib_dir: str
) -> frozenset[str] | None:
    """Where pip installs a wheel's ``.py`` files, relative to ``lib_dir``.

    As pip places them: a top-level directory ending in ``.data`` holds
    files for the scheme's directories, named by their first component;
    everything else goes to ``lib_dir``. None for a category pip refuses.
    """
    places = {
        "purelib": scheme.purelib,
        "platlib": scheme.platlib,
        "scripts": scheme.scripts,
        "headers": scheme.headers,
        "data": scheme.data,
    }
    sources = set()
    for name in names:
        if not name.endswith(".py"):
            continue
        top, _, rest = name.partition("/")
        path = os.path.join(lib_dir, name)
        if top.endswith(".data"):
            category, _, inside = rest.partition("/")
            if category not in places or not inside:
                return None
            path = os.path.join(places[category], inside)
        sources.add(os.path.relpath(path, lib_dir).replace(os.path.sep, "/"))
    return frozenset(sources)


def add_to_record(record_path: str, lib_dir: str, compiled: list[str]) -> None:
    """Add compiled files to RECORD, sorted as pip sorts RECORD, atomically."""
    if not compiled:
        return
    with open(record_path, **csv_io_kwargs("r")) as record_file:
        rows = [tuple(row) for row in csv.reader(record_file) if row]
    for path in compiled:
        # pip records a compiled file without hash or size.
        relative = os.path.relpath(path, lib_dir).replace(os.path.sep, "/")
        rows.append((relative, "", ""))
    mode = stat.S_IMODE(os.stat(record_path).st_mode)
    with adjacent_tmp_file(record_path, **csv_io_kwargs("w")) as record_file:
        csv.writer(cast("IO[str]", record_file)).writerows(sorted(rows))
    os.chmod(record_file.name, mode)
    replace(record_file.name, record_path)


def bytecode_workers(options: Values, feature: str) -> int:
    """How many processes compile for this ``pip install``; below 2, none.

    Only with the feature, when pip compiles at all and installs for real
    into its own environment (not ``--target``, ``--prefix``, ``--root`` or
    ``--user``, which stock pip handles), on Linux with working process
    pools: at most one per CPU, and at most ``--fast-deps-jobs``. Only where
    processes can be forked: a worker forked from pip compiles in pip's own
    state, which a spawned one would not share (pip 26.3's refused imports,
    for one).
    """
    if feature not in options.features_enabled or not options.compile:
        return 0
    other_places = (
        options.target_dir,
        options.prefix_path,
        options.root_path,
        getattr(options, "use_user_site", False),
    )
    if options.dry_run or any(other_places) or sys.platform != "linux":
        return 0
    if not PROCESS_POOLS_WORK:
        return 0
    jobs: int = options.fast_deps_jobs
    return min(os.cpu_count() or 1, jobs)


@contextlib.contextmanager
def parallel_bytecode(workers: int) -> Iterator[ParallelBytecode]:
    """A pool for one install command; everything is recorded when it ends."""
    compiler = ParallelBytecode(workers)
    try:
        yield compiler
    finally:
        compiler.close()

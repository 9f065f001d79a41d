"""Wheels installed ahead, into a staging tree, while the others download.

pip installs every wheel after the last download, one at a time: it
extracts the wheel, writes its scripts and RECORD, and compiles its ``.py``
files, on one core. Here each wheel is run through that very code, pip's
``install_wheel``, as soon as its file is on disk, in a pool of processes,
into a staging tree that mirrors the layout of the scheme pip will install
it to (a ``.fastdeps-*`` directory inside the environment, so that every
move is a rename on one file system; removed when the command ends); its
files are compiled there under the names they will have (``compileall``'s
``ddir``), except those pip 26.3 might refuse to compile (see
:func:`compile_batch`), which are compiled in pip's process. When pip
then installs the wheel, in its own order, after its own checks and any
uninstall, the staged files are moved into place, one rename each: later
wheels still win where two write the same path, and nothing reaches the
environment before pip would have written it.

Where anything differs from what was staged (another scheme, a direct URL,
a failure while staging), pip installs the wheel itself, as it would have:
so a wheel pip refuses is refused by pip, in its words, at its point in the
install. What pip logs while installing is logged when the wheel is moved
into place, as pip would have logged it then.
"""

from __future__ import annotations

import compileall
import contextlib
import importlib.util
import inspect
import io
import logging
import os
import shutil
import tempfile
import threading
import tokenize
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pip._internal.locations import get_scheme
from pip._internal.models.scheme import SCHEME_KEYS, Scheme
from pip._internal.operations.install import wheel as pip_wheel
from pip._internal.req.req_install import InstallRequirement
from pip._internal.utils._log import VERBOSE
from pip._internal.utils.hashes import Hashes

from fastdeps.cli.progress_bars import InstallProgress
from fastdeps.operations.bytecode import (
    add_to_record,
    compile_sources,
    forked_pool,
    in_batches,
    plan_for,
)

logger = logging.getLogger(__name__)

#: The logger pip's ``install_wheel`` writes to, where what it logged in a
#: worker is logged again when the wheel is put in place.
_PIP_WHEEL_LOGGER = pip_wheel.__name__


@dataclass(frozen=True)
class StageJob:
    """One wheel to install into the staging tree: all a worker needs."""

    name: str
    wheel_path: str
    req_description: str
    requested: bool
    pycompile: bool
    #: Where pip will install it, and where it is staged (the same layout):
    #: each directory of pip's ``Scheme`` by name (a ``Scheme`` of some pip
    #: releases cannot be sent to another process).
    scheme: dict[str, str]
    staged_scheme: dict[str, str]
    #: The directory that holds every path of ``scheme``, and its mirror.
    root: str
    staged_root: str
    #: The hashes pip will check the file against (the user's: pip's
    #: ``trust_internet=False``; with ``True``, pip adds the index's hash to
    #: the requirement's own list, and its later check then accepts a file
    #: that fails the user's hash); the file is staged only when it matches
    #: them, so that no unverified file is ever unpacked.
    hashes: Hashes | None = None


@dataclass
class CompiledBatch:
    """What compiling some of a wheel's staged sources left."""

    #: The compiled files, staged: for the wheel's RECORD.
    compiled: list[str] = field(default_factory=list)
    #: Sources left for pip's process to compile once in place (see
    #: :func:`compile_batch`), at their final paths.
    deferred: list[str] = field(default_factory=list)
    #: What the compiler printed.
    output: str = ""

    def add(self, other: CompiledBatch) -> None:
        self.compiled += other.compiled
        self.deferred += other.deferred
        self.output += other.output


@dataclass
class StageResult:
    """What staging a wheel left, for the moment pip installs it."""

    staged: bool
    #: What pip's code logged meanwhile: (logger, level, message), in order.
    records: list[tuple[str, int, str]] = field(default_factory=list)
    #: The console scripts pip generated, at their final paths: pip warns
    #: about them when their directory is not on PATH.
    console_scripts: list[str] = field(default_factory=list)
    #: The staged RECORD and library directory the compiled files belong to.
    record_path: str = ""
    lib_dir: str = ""
    #: The worker's first batch of the sources, compiled; the other batches,
    #: in pip's order, for the pool to compile while the wheel waits.
    compiled: CompiledBatch = field(default_factory=CompiledBatch)
    pending_batches: list[list[str]] = field(default_factory=list)


def stage_wheel(job: StageJob) -> StageResult:
    """Install ``job``'s wheel into its staging tree; in a worker process.

    Never raises: a wheel that cannot be staged (one pip refuses, a file
    that does not match its hashes) is left for pip to install itself.
    """
    try:
        if job.hashes:
            job.hashes.check_against_path(job.wheel_path)
        with _captured_logs() as records, _recorded_console_scripts() as scripts:
            pip_wheel.install_wheel(
                job.name,
                job.wheel_path,
                scheme=Scheme(**job.staged_scheme),
                req_description=job.req_description,
                pycompile=False,
                direct_url=None,
                requested=job.requested,
            )
        result = _compile_staged(job) if job.pycompile else StageResult(staged=True)
    except BaseException:
        shutil.rmtree(job.staged_root, ignore_errors=True)
        return StageResult(staged=False)
    result.records = records
    result.console_scripts = [_final_path(job, path) for path in scripts]
    return result


@contextlib.contextmanager
def _captured_logs() -> Iterator[list[tuple[str, int, str]]]:
    """Keep what is logged in this worker, instead of writing it to the
    terminal pip's handlers write to, out of pip's order."""
    records: list[tuple[str, int, str]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append((record.name, record.levelno, record.getMessage()))

    root = logging.getLogger()
    handlers, root.handlers = root.handlers, [Keep()]
    try:
        yield records
    finally:
        root.handlers = handlers


@contextlib.contextmanager
def _recorded_console_scripts() -> Iterator[list[str]]:
    """The scripts pip would warn about, recorded instead of warned about.

    pip passes the console scripts it generated to
    ``message_about_scripts_not_on_PATH``; in this worker the function only
    records them, and the warning is given for the final paths.
    """
    scripts: list[str] = []

    def record(paths: list[str]) -> None:
        scripts.extend(paths)

    original = pip_wheel.message_about_scripts_not_on_PATH
    pip_wheel.message_about_scripts_not_on_PATH = record  # type: ignore[assignment]
    try:
        yield scripts
    finally:
        pip_wheel.message_about_scripts_not_on_PATH = original


def _compile_staged(job: StageJob) -> StageResult:
    """Compile the first batch of the staged ``.py`` files; the rest are
    left for the pool (:meth:`StagedInstalls._compile_the_rest`)."""
    plan = plan_for(job.name, job.wheel_path, Scheme(**job.staged_scheme))
    if plan is None:
        return StageResult(staged=True)
    sources = [os.path.join(plan.lib_dir, path) for path in sorted(plan.sources)]
    first, *rest = in_batches(sources) or [[]]
    return StageResult(
        staged=True,
        record_path=plan.record_path,
        lib_dir=plan.lib_dir,
        compiled=compile_batch(job, first),
        pending_batches=rest,
    )


def compile_batch(job: StageJob, sources: list[str]) -> CompiledBatch:
    """Compile staged ``.py`` files as pip compiles them in place; in a worker.

    As pip: ``compileall.compile_file(path, force=True, quiet=True)``, with
    warnings ignored, in sorted order; but each under its final name, so
    that the code objects name the installed file.

    A source that declares another encoding than UTF-8 is left for pip's
    own process: reading it may need a codec that pip (26.3 and later) will
    refuse to import once it installs, and then pip does not compile it.
    """
    batch = CompiledBatch()
    output = io.StringIO()
    with contextlib.redirect_stdout(output), warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        for path in sources:
            if not os.path.isfile(path):
                continue
            final_path = _final_path(job, path)
            if not _declares_utf8(path):
                batch.deferred.append(final_path)
            elif compileall.compile_file(
                path, ddir=os.path.dirname(final_path), force=True, quiet=True
            ):
                batch.compiled.append(importlib.util.cache_from_source(path))
    batch.output = output.getvalue()
    return batch


def _declares_utf8(path: str) -> bool:
    """Whether a source is read as UTF-8 (no cookie, or a UTF-8 one)."""
    try:
        with open(path, "rb") as source:
            encoding, _ = tokenize.detect_encoding(source.readline)
    except (OSError, SyntaxError):
        return False
    return encoding == "utf-8"


def _final_path(job: StageJob, staged_path: str) -> str:
    return os.path.join(job.root, os.path.relpath(staged_path, job.staged_root))


@dataclass
class _Staged:
    job: StageJob
    result: Future[StageResult]
    #: The pool's compilation of each pending batch (None where the pool
    #: refused it), set once ``result`` is done.
    batches: Future[list[tuple[list[str], Future[CompiledBatch] | None]]] = field(
        default_factory=Future
    )


class StagedInstalls:
    """The wheels of one ``pip install``, staged in a pool as they arrive.

    :param workers: processes in the pool.
    :param pycompile: whether pip compiles (``--compile``, the default).
    :param before_placing: called before a staged wheel is moved into
        place (the bytecode pool finishes what may read its paths).
    """

    def __init__(
        self,
        workers: int,
        pycompile: bool,
        before_placing: Callable[[], None],
        pip_install_wheel: Callable[..., None],
    ) -> None:
        self._workers = workers
        #: pip's own function's signature, to read its calls by name.
        self._signature = inspect.signature(pip_install_wheel)
        self._pycompile = pycompile
        self._before_placing = before_placing
        self._pool: ProcessPoolExecutor | None = None
        self._directory: str | None = None
        self._no_directory = False
        self._staged: dict[str, _Staged] = {}
        self._lock = threading.Lock()
        self._count = 0
        #: The display of the downloads and of the installs that follow.
        self.progress = InstallProgress()

    def start(self) -> None:
        """Fork the workers now, before pip starts a thread.

        A process forked while other threads run may inherit a lock one of
        them held; at the start of the command there are none.
        """
        self._pool = forked_pool(self._workers, "pool for staged installs")

    def close(self) -> None:
        """Stop the workers, and remove whatever was staged and not used."""
        self.progress.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)

    # -- while the files arrive -------------------------------------------------

    def stage(self, req: InstallRequirement, wheel_path: str) -> None:
        """Start installing ``req``'s wheel at ``wheel_path`` into staging.

        Not a direct URL (pip records where it came from), and only where
        the staging tree can be made inside the environment. pip has not
        verified the file yet: the worker checks it against the hashes pip
        will check it against, and unpacks nothing that fails them. Never
        raises: the download that hands the file on must not fail for it.
        """
        try:
            self._stage(req, wheel_path)
        except Exception as exc:
            logger.debug("Not installing %s ahead: %r", wheel_path, exc)

    def _stage(self, req: InstallRequirement, wheel_path: str) -> None:
        if self._pool is None or req.req is None or req.is_direct:
            return
        if not req.is_wheel:
            return
        with self._lock:
            if wheel_path in self._staged:
                return
            job = self._job_for(req, wheel_path)
            if job is None:
                return
            staged = _Staged(job, self._pool.submit(stage_wheel, job))
            self._staged[wheel_path] = staged
        self.progress.installing_ahead()
        staged.result.add_done_callback(lambda _: self._compile_the_rest(staged))

    def _compile_the_rest(self, staged: _Staged) -> None:
        """Once a wheel is staged, its pending batches to the pool: a large
        wheel, the last to arrive, say, is compiled by every worker."""
        batches: list[tuple[list[str], Future[CompiledBatch] | None]] = []
        try:
            done = staged.result
            if not done.cancelled() and done.exception() is None:
                batches = [
                    (batch, self._submit_batch(staged.job, batch))
                    for batch in done.result().pending_batches
                ]
                if done.result().staged:
                    self.progress.installed_ahead()
        finally:
            staged.batches.set_result(batches)

    def _submit_batch(
        self, job: StageJob, sources: list[str]
    ) -> Future[CompiledBatch] | None:
        try:
            assert self._pool is not None
            return self._pool.submit(compile_batch, job, sources)
        except Exception:  # a broken pool, or one shutting down
            return None

    def _job_for(self, req: InstallRequirement, wheel_path: str) -> StageJob | None:
        assert req.req is not None
        scheme = _paths_of(get_scheme(req.req.name, isolated=req.isolated))
        root = os.path.commonpath(list(scheme.values()))
        directory = self._staging_directory(root)
        if directory is None or not _renames_reach(directory, scheme):
            return None
        self._count += 1
        staged_root = os.path.join(directory, str(self._count))
        mirrored = {
            key: os.path.join(staged_root, os.path.relpath(path, root))
            for key, path in scheme.items()
        }
        return StageJob(
            name=req.req.name,
            wheel_path=wheel_path,
            req_description=str(req.req),
            requested=req.user_supplied,
            pycompile=self._pycompile,
            scheme=scheme,
            staged_scheme=mirrored,
            root=root,
            staged_root=staged_root,
            hashes=req.hashes(trust_internet=False) or None,
        )

    def _staging_directory(self, root: str) -> str | None:
        """The staging tree, made once, inside ``root`` (the environment);
        None where it cannot be made, or is elsewhere."""
        if self._directory is None and not self._no_directory:
            try:
                self._directory = tempfile.mkdtemp(prefix=".fastdeps-", dir=root)
            except OSError as exc:
                logger.debug("No staging directory in %s: %s", root, exc)
                self._no_directory = True
        if self._directory is None or os.path.dirname(self._directory) != root:
            return None
        return self._directory

    # -- when pip installs ------------------------------------------------------

    def install_all(
        self,
        original: Callable[..., Any],
        to_install: list[Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """pip's ``install_given_reqs``: what is not staged yet (files pip
        did not download: ``--find-links`` directories, the wheel cache) is
        staged first, in pip's order, while pip installs the first ones."""
        for req in to_install:
            if req.local_file_path:
                self.stage(req, req.local_file_path)
        if self.progress.drawn and "progress_bar" in kwargs:
            kwargs["progress_bar"] = "off"  # the display shows the installs
        self.progress.installing(len(to_install))
        try:
            return original(to_install, *args, **kwargs)
        finally:
            self.progress.close()

    def install_wheel(
        self, original: Callable[..., None], *args: Any, **kwargs: Any
    ) -> None:
        """pip's ``install_wheel``: the staged files moved into place, or,
        for anything not staged exactly so, pip's own install."""
        call = self._signature.bind(*args, **kwargs)
        call.apply_defaults()
        self._place_or_install(original, call.arguments, args, kwargs)
        self.progress.installed(call.arguments["name"])

    def _place_or_install(
        self,
        original: Callable[..., None],
        arguments: dict[str, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        with self._lock:
            staged = self._staged.pop(arguments["wheel_path"], None)
        result = None if staged is None else _result_of(staged)
        if staged is None or result is None or not result.staged:
            original(*args, **kwargs)
            return
        _wait_for_batches(staged, result)
        if not _called_as_staged(staged.job, arguments):
            shutil.rmtree(staged.job.staged_root, ignore_errors=True)
            original(*args, **kwargs)
            return
        job = staged.job
        self._before_placing()
        add_to_record(result.record_path, result.lib_dir, result.compiled.compiled)
        moved = _move_into_place(job.staged_root, job.root)
        logger.log(VERBOSE, "Installed %s: %d files unpacked ahead", job.name, moved)
        if job.pycompile:
            result.compiled.output += _compile_deferred(job, result)
        _log_as_pip_would(
            result, bool(arguments.get("warn_script_location", True)), job.pycompile
        )


def _result_of(staged: _Staged) -> StageResult | None:
    """The staging's result; None if its worker failed (killed for memory,
    say), and pip then installs the wheel itself."""
    try:
        return staged.result.result()
    except Exception as exc:
        logger.debug("Staging %s failed: %r", staged.job.name, exc)
        return None


def _wait_for_batches(staged: _Staged, result: StageResult) -> None:
    """The pool's batches of the wheel's sources, added to what the worker
    compiled; a batch whose worker failed is left for pip's process, once
    in place, as a source that may need a codec is."""
    if not result.pending_batches:
        return
    for sources, future in staged.batches.result():
        result.compiled.add(_batch_result(staged.job, sources, future))


def _batch_result(
    job: StageJob, sources: list[str], future: Future[CompiledBatch] | None
) -> CompiledBatch:
    """The pool's compilation of a batch; if its worker failed or the pool
    refused it, the batch's sources, left for pip's process."""
    try:
        assert future is not None, "the pool refused the batch"
        return future.result()
    except Exception as exc:
        logger.debug("Compiling %s ahead failed: %r", job.name, exc)
    staged = [path for path in sources if os.path.isfile(path)]
    return CompiledBatch(deferred=[_final_path(job, path) for path in staged])


def _called_as_staged(job: StageJob, arguments: dict[str, Any]) -> bool:
    """Whether pip installs the wheel exactly as it was staged."""
    return (
        arguments["name"] == job.name
        and _paths_of(arguments["scheme"]) == job.scheme
        and bool(arguments.get("pycompile", True)) == job.pycompile
        and bool(arguments.get("requested", False)) == job.requested
        and arguments.get("direct_url") is None
        and arguments.get("script_executable") is None
    )


def _renames_reach(directory: str, scheme: dict[str, str]) -> bool:
    """Whether a file in ``directory`` can be renamed into each directory of
    ``scheme``: the nearest of its parents that exists is on one device."""
    device = os.stat(directory).st_dev
    for path in scheme.values():
        while not os.path.exists(path) and os.path.dirname(path) != path:
            path = os.path.dirname(path)
        if os.stat(path).st_dev != device:
            return False
    return True


def _paths_of(scheme: Scheme) -> dict[str, str]:
    """Each directory of a pip ``Scheme``, by name."""
    return {key: str(getattr(scheme, key)) for key in SCHEME_KEYS}


def _move_into_place(staged_root: str, root: str) -> int:
    """Rename every staged file to its place under ``root``; how many.

    A file there already is replaced, as pip replaces it; directories are
    made as pip makes them, with the process's umask.
    """
    moved = 0
    for directory, _, files in os.walk(staged_root):
        target = os.path.join(root, os.path.relpath(directory, staged_root))
        if files:
            os.makedirs(target, exist_ok=True)
        for name in files:
            os.replace(os.path.join(directory, name), os.path.join(target, name))
            moved += 1
    shutil.rmtree(staged_root, ignore_errors=True)
    return moved


def _compile_deferred(job: StageJob, result: StageResult) -> str:
    """Compile, here, the sources left for pip's process; what it printed."""
    deferred = result.compiled.deferred
    if not deferred:
        return ""
    compiled = compile_sources(deferred)
    add_to_record(
        _final_path(job, result.record_path),
        _final_path(job, result.lib_dir),
        [importlib.util.cache_from_source(path) for path, ok, _ in compiled if ok],
    )
    return "".join(text for _, _, text in compiled)


def _log_as_pip_would(
    result: StageResult, warn_script_location: bool, pycompile: bool
) -> None:
    """What pip logs while installing a wheel: what its code logged in the
    worker, the compiler's output, the warning about scripts not on PATH."""
    for name, level, message in result.records:
        logging.getLogger(name).log(level, "%s", message)
    wheel_logger = logging.getLogger(_PIP_WHEEL_LOGGER)
    if pycompile:
        wheel_logger.debug(result.compiled.output)
    if warn_script_location:
        warning = pip_wheel.message_about_scripts_not_on_PATH(result.console_scripts)
        if warning is not None:
            wheel_logger.warning(warning)


@contextlib.contextmanager
def staged_installs(
    workers: int,
    pycompile: bool,
    before_placing: Callable[[], None],
    pip_install_wheel: Callable[..., None],
) -> Iterator[StagedInstalls]:
    """Staged installs for one command: the workers forked now, the
    staging tree removed at the end, whatever happens."""
    stager = StagedInstalls(workers, pycompile, before_placing, pip_install_wheel)
    stager.start()
    try:
        yield stager
    finally:
        stager.close()

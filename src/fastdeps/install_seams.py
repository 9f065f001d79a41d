"""Where ``pip install`` installs wheels ahead and compiles in processes.

``InstallCommand.run`` is wrapped once per process (:func:`bind`). With
fast-deps, and where a pool helps
(:func:`~fastdeps.operations.bytecode.bytecode_workers`), the staging pool
(:mod:`fastdeps.operations.staged_install`) is forked before pip starts any
thread, and these are replaced for the length of the command, and restored
after: the preparer's ``wheel_arrived``, which stages each wheel as its file
arrives, and its ``download_progress``, a display that stays for the
installs; ``install_wheel``, which moves a staged wheel into place, or
installs without compiling and hands the files to the bytecode pool;
``get_console_script_specs``, which pip calls once a wheel's files are in
place (where pip would have compiled them, should the install fail later);
``install_given_reqs``, which first stages the wheels pip did not download,
and after which everything is recorded, before pip says what it installed;
``InstallRequirement.uninstall``, before which pending compilations finish,
so that none reads a file an upgrade removes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import partial
from optparse import Values
from typing import Any

from fastdeps import pip_versions
from fastdeps.pip_versions import FEATURE
from fastdeps.plugin import wrap
from fastdeps.seams import replaced


def bind() -> bool:
    """Wrap ``InstallCommand.run``; without the feature it runs as it is."""
    if not pip_versions.is_supported(pip_versions.pip_version()):
        return False
    from pip._internal.commands.install import InstallCommand

    wrap(InstallCommand, "run", _run_compiling_in_parallel)
    return True


def _run_compiling_in_parallel(original: Callable[..., int]) -> Any:
    def run(self: Any, options: Values, args: list[str]) -> int:
        if FEATURE not in options.features_enabled:
            return original(self, options, args)  # stock pip: nothing imported
        from fastdeps.operations.bytecode import bytecode_workers

        workers = bytecode_workers(options, FEATURE)
        if workers < 2:
            return original(self, options, args)
        with _compiling_in_parallel(workers):
            return original(self, options, args)

    return run


@contextlib.contextmanager
def _compiling_in_parallel(workers: int) -> Iterator[None]:
    from pip._internal.commands import install
    from pip._internal.operations.install import wheel
    from pip._internal.req import req_install

    from fastdeps.operations.bytecode import parallel_bytecode
    from fastdeps.operations.prepare import FastDepsRequirementPreparer as preparer
    from fastdeps.operations.staged_install import staged_installs

    requirement = req_install.InstallRequirement
    # pip 26.3 imports install_wheel when it installs; older pips at import.
    callers = [wheel, *([req_install] if hasattr(req_install, "install_wheel") else [])]
    install_all = install.install_given_reqs  # type: ignore[attr-defined]
    with contextlib.ExitStack() as stack:
        compiler = stack.enter_context(parallel_bytecode(workers))
        stager = stack.enter_context(
            staged_installs(workers, True, compiler.finish, wheel.install_wheel)
        )
        install_one = partial(
            stager.install_wheel, partial(compiler.install_wheel, wheel.install_wheel)
        )
        for caller in callers:
            stack.enter_context(replaced(caller, "install_wheel", install_one))
        arrived = staticmethod(stager.stage)
        stack.enter_context(replaced(preparer, "wheel_arrived", arrived))
        progress = staticmethod(stager.progress.for_downloads)
        stack.enter_context(replaced(preparer, "download_progress", progress))
        specs = partial(compiler.files_in_place, wheel.get_console_script_specs)
        stack.enter_context(replaced(wheel, "get_console_script_specs", specs))
        recorded = partial(
            compiler.install_all, partial(stager.install_all, install_all)
        )
        stack.enter_context(replaced(install, "install_given_reqs", recorded))
        uninstall = compiler.after_pending(requirement.uninstall)
        stack.enter_context(replaced(requirement, "uninstall", uninstall))
        yield

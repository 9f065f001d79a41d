"""Start-up hook that binds pip-fastdeps into pip when pip needs it.

``pip_fastdeps.pth`` in site-packages imports this module at every
interpreter start, so it must cost next to nothing: it imports no module
that the interpreter has not already loaded (not even ``importlib.abc``,
since a meta path finder only needs a ``find_spec`` method) and it only
puts one finder at the front of ``sys.meta_path``.

The finder waits for ``pip._internal.cli.req_command``: pip imports that
module only for the commands that resolve requirements (install, download,
wheel, lock), and by the time it has run every class that the plugin binds
into exists. It also waits for ``pip._internal.commands.cache``, so that
``pip cache purge`` clears the plugin's metadata cache, and for
``pip._internal.cli.main_parser``, so that ``pip --python`` can say that the
pip it runs elsewhere does not have the plugin (the plugin is imported only
when ``--python`` is given), and for ``pip._internal.commands.install``, so
that ``pip install`` compiles bytecode in parallel with fast-deps. Other pip commands,
and every program that is not pip, never import the plugin.
"""

from __future__ import annotations

import os
import sys

# typing and types are not loaded at interpreter start; importing them here
# would cost more than the whole hook. Type checkers still see them.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

TRIGGER_MODULE = "pip._internal.cli.req_command"
CACHE_COMMAND_MODULE = "pip._internal.commands.cache"
MAIN_PARSER_MODULE = "pip._internal.cli.main_parser"
INSTALL_COMMAND_MODULE = "pip._internal.commands.install"
TRIGGER_MODULES = (
    TRIGGER_MODULE,
    CACHE_COMMAND_MODULE,
    MAIN_PARSER_MODULE,
    INSTALL_COMMAND_MODULE,
)


class _BindAfterExec:
    """Loader proxy: run the real loader, then bind the plugin into pip."""

    def __init__(self, loader: Any, fullname: str) -> None:
        self._loader = loader
        self._fullname = fullname

    def create_module(self, spec: Any) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _bind_plugin(self._fullname)

    def __getattr__(self, name: str) -> Any:
        # get_code(), get_source(), get_resource_reader() and friends stay
        # the real loader's, so tracebacks and importlib.resources still work.
        return getattr(self._loader, name)


class PipImportHook:
    """Meta path finder that notices the import of :data:`TRIGGER_MODULES`."""

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> Any | None:
        if fullname not in TRIGGER_MODULES:
            return None
        if all(name in sys.modules or name == fullname for name in TRIGGER_MODULES):
            # Nothing left to wait for: pip imports without us in the way.
            uninstall()
        spec = _find_spec_elsewhere(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _BindAfterExec(spec.loader, fullname)
        return spec


def _find_spec_elsewhere(fullname: str, path: Any, target: Any) -> Any | None:
    """Ask the remaining finders, as the import system would have."""
    for finder in sys.meta_path:
        if isinstance(finder, PipImportHook):
            continue
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        spec = find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


def runs_elsewhere(args: list[str]) -> bool:
    """Whether pip was asked to run under another interpreter (``--python``).

    Checked here, from the arguments, so that the plugin is imported for
    ``pip --python`` only, not for every pip command that parses options.
    """
    if "_PIP_RUNNING_IN_SUBPROCESS" in os.environ:
        return False
    given = any(arg == "--python" or arg.startswith("--python=") for arg in args)
    return given or bool(os.environ.get("PIP_PYTHON"))


def _bind_plugin(fullname: str) -> None:
    """Bind the plugin; a failure here must never stop pip from running."""
    if fullname == MAIN_PARSER_MODULE and not runs_elsewhere(sys.argv[1:]):
        return
    try:
        from fastdeps import plugin

        if fullname == CACHE_COMMAND_MODULE:
            plugin.bind_cache_command()
        elif fullname == MAIN_PARSER_MODULE:
            plugin.bind_python_option_warning()
        elif fullname == INSTALL_COMMAND_MODULE:
            from fastdeps import install_seams

            install_seams.bind()
        else:
            plugin.bind()
    except Exception as exc:
        sys.stderr.write(
            f"WARNING: pip-fastdeps could not bind into pip ({exc!r}); "
            "pip runs unchanged.\n"
        )


def install() -> None:
    """Put the hook in front of the other finders, once."""
    if not any(isinstance(finder, PipImportHook) for finder in sys.meta_path):
        sys.meta_path.insert(0, PipImportHook())


def uninstall() -> None:
    """Remove every instance of the hook from ``sys.meta_path``."""
    sys.meta_path[:] = [
        finder for finder in sys.meta_path if not isinstance(finder, PipImportHook)
    ]


if not all(name in sys.modules for name in TRIGGER_MODULES):
    install()

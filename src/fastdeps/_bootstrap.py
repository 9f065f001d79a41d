"""Start-up hook that binds pip-fastdeps into pip when pip needs it.

``pip_fastdeps.pth`` in site-packages imports this module at every
interpreter start, so it must cost next to nothing: it imports no module
that the interpreter has not already loaded (not even ``importlib.abc``,
since a meta path finder only needs a ``find_spec`` method) and it only
puts one finder at the front of ``sys.meta_path``.

The finder waits for ``pip._internal.cli.req_command``: pip imports that
module only for the commands that resolve requirements (install, download,
wheel, lock), and by the time it has run every class that the plugin binds
into exists. Other pip commands, and every program that is not pip, never
import the plugin.
"""

from __future__ import annotations

import sys

# typing and types are not loaded at interpreter start; importing them here
# would cost more than the whole hook. Type checkers still see them.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

TRIGGER_MODULE = "pip._internal.cli.req_command"


class _BindAfterExec:
    """Loader proxy: run the real loader, then bind the plugin into pip."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _bind_plugin()

    def __getattr__(self, name: str) -> Any:
        # get_code(), get_source(), get_resource_reader() and friends stay
        # the real loader's, so tracebacks and importlib.resources still work.
        return getattr(self._loader, name)


class PipImportHook:
    """Meta path finder that notices the import of :data:`TRIGGER_MODULE`."""

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> Any | None:
        if fullname != TRIGGER_MODULE:
            return None
        # One shot: from here on pip imports without us in the way.
        uninstall()
        spec = _find_spec_elsewhere(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _BindAfterExec(spec.loader)
        return spec


def _find_spec_elsewhere(fullname: str, path: Any, target: Any) -> Any | None:
    """Ask the remaining finders, as the import system would have."""
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        spec = find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


def _bind_plugin() -> None:
    """Bind the plugin; a failure here must never stop pip from running."""
    try:
        from fastdeps import plugin

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


if TRIGGER_MODULE not in sys.modules:
    install()

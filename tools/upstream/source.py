"""Python source as text with an AST beside it: the pieces an export moves.

Everything here works on the text of a module, with the AST only telling
where things are, so that comments, blank lines and formatting survive a
move. Line numbers are 1-based, as in :mod:`ast`; a span is inclusive.
"""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: The package whose modules are exported, and pip's equivalent of it.
PLUGIN_PACKAGE = "fastdeps"
PIP_PACKAGE = "pip._internal"


class ExportError(Exception):
    """The plugin's source cannot be exported as it is; the message says why."""


def run(
    command: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
    """Run ``command``; its output, or an :class:`ExportError` with it."""
    result = subprocess.run(
        list(command), cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ExportError(
            f"{' '.join(command)} failed in {cwd or '.'}:\n"
            f"{result.stdout}{result.stderr}"
        )
    return result.stdout


def pip_module_for(plugin_module: str, renames: Mapping[str, str]) -> str:
    """pip's module for a plugin module: the same path under ``pip._internal``.

    The package mirrors pip's tree, so ``fastdeps.network.lazy_wheel`` is
    ``pip._internal.network.lazy_wheel``; ``renames`` holds the exceptions.
    """
    if plugin_module in renames:
        return renames[plugin_module]
    if plugin_module == PLUGIN_PACKAGE:
        raise ExportError(f"{plugin_module} itself has no place in pip")
    prefix = PLUGIN_PACKAGE + "."
    if not plugin_module.startswith(prefix):
        return plugin_module
    return PIP_PACKAGE + "." + plugin_module[len(prefix) :]


def path_of(pip_module: str) -> str:
    """The file of a module inside pip's repository: ``src/`` holds pip,
    ``tests/`` its test suite."""
    relative = pip_module.replace(".", "/") + ".py"
    return relative if pip_module.startswith("tests.") else "src/" + relative


def module_of(path: str) -> str:
    """The module of a file in pip's repository (the inverse of :func:`path_of`)."""
    return path.removeprefix("src/").removesuffix(".py").replace("/", ".")


@dataclass
class Chunk:
    """Top-level statement with the comments and blank lines above it."""

    node: ast.stmt
    #: First line of the leading comments and blank lines (the line after the
    #: previous statement), and first and last line of the statement itself.
    lead_start: int
    start: int
    end: int
    names: frozenset[str]


def bound_names(node: ast.stmt) -> frozenset[str]:
    """Names a top-level statement binds (imports excluded)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return frozenset({node.name})
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    names: set[str] = set()
    for target in targets:
        names.update(
            sub.id
            for sub in ast.walk(target)
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store)
        )
    return frozenset(names)


def is_type_checking_block(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
        and all(isinstance(sub, (ast.Import, ast.ImportFrom)) for sub in node.body)
    )


def first_line(node: ast.stmt) -> int:
    """A statement's first line, decorators included."""
    decorators: list[ast.expr] = getattr(node, "decorator_list", [])
    return min([node.lineno, *(decorator.lineno for decorator in decorators)])


@dataclass
class Module:
    """One module's text and where its parts are."""

    name: str
    text: str
    tree: ast.Module = field(init=False)
    lines: list[str] = field(init=False)

    def __post_init__(self) -> None:
        try:
            self.tree = ast.parse(self.text)
        except SyntaxError as exc:
            raise ExportError(f"{self.name} does not parse: {exc}") from exc
        self.lines = self.text.splitlines(keepends=True)

    def segment(self, start: int, end: int) -> str:
        return "".join(self.lines[start - 1 : end])

    # -- imports ------------------------------------------------------------

    def imports(self) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        """Top-level imports, each with whether it is under TYPE_CHECKING."""
        for node in self.tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                yield node, False
            elif is_type_checking_block(node):
                assert isinstance(node, ast.If)
                for sub in node.body:
                    assert isinstance(sub, (ast.Import, ast.ImportFrom))
                    yield sub, True

    def imported_names(self) -> dict[str, tuple[str, str | None]]:
        """What each import binds, keyed by :attr:`ImportLine.key`."""
        names: dict[str, tuple[str, str | None]] = {}
        for node, _ in self.imports():
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                continue
            if isinstance(node, ast.ImportFrom) and node.level:
                # pip's own relative imports: never the plugin's.
                module = "." * node.level + (node.module or "")
                for alias in node.names:
                    names[alias.asname or alias.name] = (module, alias.name)
                continue
            for line in import_lines(node, {}):
                names[line.key] = (line.module, line.name)
        return names

    def last_import_line(self) -> int:
        """Last line of the module's main import block (TYPE_CHECKING aside)."""
        ends = [
            node.end_lineno or node.lineno
            for node in self.tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom))
        ]
        if not ends:
            raise ExportError(f"{self.name} has no imports to add to")
        return max(ends)

    # -- definitions ----------------------------------------------------------

    def chunks(self) -> list[Chunk]:
        """Every top-level statement after the docstring, with its lead-in."""
        body = self.tree.body
        chunks = []
        previous_end = 0
        for index, node in enumerate(body):
            start = first_line(node)
            end = node.end_lineno or node.lineno
            is_docstring = index == 0 and _is_string(node)
            if not is_docstring:
                chunks.append(
                    Chunk(node, previous_end + 1, start, end, bound_names(node))
                )
            previous_end = end
        return chunks

    def definitions(self) -> dict[str, Chunk]:
        """Top-level name -> the statement that binds it."""
        found: dict[str, Chunk] = {}
        for chunk in self.chunks():
            for name in chunk.names:
                found[name] = chunk
        return found


def _is_string(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


# -- imports ------------------------------------------------------------------


@dataclass(frozen=True)
class ImportLine:
    """One imported name, as a line ruff's isort can merge with the others."""

    module: str
    name: str | None  # None: ``import module``
    asname: str | None = None

    @property
    def key(self) -> str:
        """What identifies the import: ``import a.b`` and ``import a.c`` both
        bind ``a`` but are two imports, ``from m import x`` binds ``x``."""
        if self.name is None and not self.asname:
            return self.module
        return self.local

    @property
    def local(self) -> str:
        if self.asname:
            return self.asname
        return self.name if self.name else self.module.partition(".")[0]

    def render(self) -> str:
        alias = f" as {self.asname}" if self.asname else ""
        if self.name is None:
            return f"import {self.module}{alias}\n"
        return f"from {self.module} import {self.name}{alias}\n"


def import_lines(
    node: ast.Import | ast.ImportFrom, renames: Mapping[str, str]
) -> list[ImportLine]:
    """An import statement as one :class:`ImportLine` per name, rewritten.

    ``from fastdeps.x import y`` becomes ``from pip._internal.x import y``;
    pip's own and vendored names (``pip._vendor...``) stay as they are.
    """
    if isinstance(node, ast.Import):
        lines = []
        for alias in node.names:
            if alias.name.partition(".")[0] == PLUGIN_PACKAGE:
                raise ExportError(f"'import {alias.name}' has no equivalent in pip")
            lines.append(ImportLine(alias.name, None, alias.asname))
        return lines
    if node.level:
        raise ExportError("relative imports are not supported")
    module = pip_module_for(node.module or "", renames)
    return [ImportLine(module, alias.name, alias.asname) for alias in node.names]


def rewrite_import_statements(module: Module, renames: Mapping[str, str]) -> str:
    """The module's text with its plugin imports pointing into pip.

    Only the module path of each ``from fastdeps...`` statement changes, in
    place, so that the statement keeps its formatting.
    """
    lines = list(module.lines)
    for node in ast.walk(module.tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Import) or node.module is None:
            import_lines(node, renames)  # raises for ``import fastdeps``
            continue
        target = pip_module_for(node.module, renames)
        if target == node.module:
            continue
        index = node.lineno - 1
        pattern = re.compile(rf"\bfrom\s+{re.escape(node.module)}\s+import\b")
        new_line, count = pattern.subn(f"from {target} import", lines[index], 1)
        if count != 1:
            raise ExportError(f"{module.name}:{node.lineno}: import not on one line")
        lines[index] = new_line
    return "".join(lines)


def drop_imports_of(
    lines: Iterable[ImportLine], module: str, defined: Iterable[str]
) -> list[ImportLine]:
    """Imports still needed in ``module``: not of itself, not of its own names."""
    own = set(defined)
    return [line for line in lines if line.module != module and line.local not in own]

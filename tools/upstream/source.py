"""Python source as text with an AST beside it: the AST only says where things
are, the text is what moves, so that comments and formatting survive."""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: The package whose modules are exported, and pip's equivalent of it.
PLUGIN_PACKAGE = "fastdeps"
PIP_PACKAGE = "pip._internal"


class ExportError(Exception):
    """The plugin's source cannot be exported as it is; the message says why."""


def run(
    command: Sequence[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
) -> str:
    """Run ``command``; its output, or an :class:`ExportError` with it."""
    result = subprocess.run(
        list(command), cwd=cwd, env=env, input=input, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise ExportError(
            f"{' '.join(command)} failed in {cwd or '.'}:\n"
            f"{result.stdout}{result.stderr}"
        )
    return result.stdout


def pip_module_for(plugin_module: str, renames: Mapping[str, str]) -> str:
    """The mirror path under ``pip._internal``, unless ``renames`` says
    otherwise; modules outside the plugin stay as they are."""
    if plugin_module in renames:
        return renames[plugin_module]
    if plugin_module == PLUGIN_PACKAGE:
        raise ExportError(f"{plugin_module} itself has no place in pip")
    if not plugin_module.startswith(PLUGIN_PACKAGE + "."):
        return plugin_module
    return PIP_PACKAGE + plugin_module.removeprefix(PLUGIN_PACKAGE)


def path_of(pip_module: str) -> str:
    """A module's file in pip's repository: ``src/`` but for ``tests/``."""
    relative = pip_module.replace(".", "/") + ".py"
    return relative if pip_module.startswith("tests.") else "src/" + relative


def module_of(path: str) -> str:
    """The inverse of :func:`path_of`."""
    return path.removeprefix("src/").removesuffix(".py").replace("/", ".")


def bound_names(node: ast.stmt) -> frozenset[str]:
    """Names a top-level statement binds (imports excluded)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return frozenset({node.name})
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    return frozenset(
        sub.id
        for target in targets
        for sub in ast.walk(target)
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store)
    )


@dataclass
class Module:
    """One module's text and where its parts are (lines are 1-based)."""

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

    def span(self, node: ast.stmt) -> tuple[int, int]:
        """A statement's first and last line, decorators included."""
        decorators: list[ast.expr] = getattr(node, "decorator_list", [])
        first = min([node.lineno, *(decorator.lineno for decorator in decorators)])
        return first, node.end_lineno or node.lineno

    def imports(self) -> Iterator[ast.Import | ast.ImportFrom]:
        """Top-level imports, those under ``if TYPE_CHECKING:`` too, but not
        ``__future__``'s, which every module has."""
        for node in self.tree.body:
            nodes = [node]
            if (
                isinstance(node, ast.If)
                and getattr(node.test, "id", "") == "TYPE_CHECKING"
            ):
                nodes = node.body
            for sub in nodes:
                if isinstance(sub, ast.Import) or (
                    isinstance(sub, ast.ImportFrom) and sub.module != "__future__"
                ):
                    yield sub

    def import_lines(self, renames: Mapping[str, str]) -> list[ImportLine]:
        return [line for node in self.imports() for line in import_lines(node, renames)]

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

    def chunks(self) -> Iterator[tuple[ast.stmt, str]]:
        """Every top-level statement after the docstring, with its text from
        the line after the previous one (so with its comments)."""
        previous_end = 0
        for index, node in enumerate(self.tree.body):
            end = node.end_lineno or node.lineno
            if index or ast.get_docstring(self.tree, clean=False) is None:
                yield node, self.segment(previous_end + 1, end)
            previous_end = end

    def defined_names(self) -> set[str]:
        return {name for node in self.tree.body for name in bound_names(node)}


@dataclass(frozen=True)
class ImportLine:
    """One imported name, as a line ruff's isort can merge with the others."""

    module: str
    name: str | None  # None: ``import module``
    asname: str | None = None

    @property
    def key(self) -> str:
        """``import a.b`` and ``import a.c`` both bind ``a`` but are two
        imports; ``from m import x`` binds ``x``."""
        if self.name is None and not self.asname:
            return self.module
        return self.local

    @property
    def local(self) -> str:
        return self.asname or self.name or self.module.partition(".")[0]

    def render(self) -> str:
        alias = f" as {self.asname}" if self.asname else ""
        if self.name is None:
            return f"import {self.module}{alias}\n"
        return f"from {self.module} import {self.name}{alias}\n"


def import_lines(
    node: ast.Import | ast.ImportFrom, renames: Mapping[str, str]
) -> list[ImportLine]:
    """An import statement as one :class:`ImportLine` per name, pointing into
    pip."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.partition(".")[0] == PLUGIN_PACKAGE:
                raise ExportError(f"'import {alias.name}' has no equivalent in pip")
        return [ImportLine(alias.name, None, alias.asname) for alias in node.names]
    module = pip_module_for("." * node.level + (node.module or ""), renames)
    return [ImportLine(module, alias.name, alias.asname) for alias in node.names]


def rewrite_import_statements(module: Module, renames: Mapping[str, str]) -> str:
    """The module's text with its plugin imports pointing into pip: only each
    statement's module path changes, so that it keeps its formatting."""
    lines = list(module.lines)
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            import_lines(node, renames)  # raises for ``import fastdeps``
        if not isinstance(node, ast.ImportFrom) or node.module is None:
            continue
        target = pip_module_for(node.module, renames)
        if target == node.module:
            continue
        index = node.lineno - 1
        pattern = re.compile(rf"\bfrom\s+{re.escape(node.module)}\s+import\b")
        lines[index], count = pattern.subn(f"from {target} import", lines[index], 1)
        if count != 1:
            raise ExportError(f"{module.name}:{node.lineno}: import not on one line")
    return "".join(lines)

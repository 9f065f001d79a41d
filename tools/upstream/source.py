"""Python source as text with an AST beside it: the pieces an export moves.

Everything here works on the text of a module, with the AST only telling
where things are, so that comments, blank lines and formatting survive a
move. Line numbers are 1-based, as in :mod:`ast`; a span is inclusive.
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

#: The package whose modules are exported, and pip's equivalent of it.
PLUGIN_PACKAGE = "fastdeps"
PIP_PACKAGE = "pip._internal"


class ExportError(Exception):
    """The plugin's source cannot be exported as it is; the message says why."""


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
    """The file of a pip module inside pip's source tree (``src/`` layout)."""
    return "src/" + pip_module.replace(".", "/") + ".py"


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

    def definition_text(self, chunk: Chunk) -> str:
        """A statement with the comment lines directly above it."""
        start = chunk.start
        while start - 1 >= chunk.lead_start and self.lines[
            start - 2
        ].lstrip().startswith("#"):
            start -= 1
        return self.segment(start, chunk.end)

    def function(self, name: str) -> ast.FunctionDef:
        node = self.definitions().get(name)
        if node is None or not isinstance(node.node, ast.FunctionDef):
            raise ExportError(f"{self.name} has no function {name}")
        return node.node

    def class_method(self, class_name: str, method: str) -> ast.FunctionDef:
        chunk = self.definitions().get(class_name)
        if chunk is None or not isinstance(chunk.node, ast.ClassDef):
            raise ExportError(f"{self.name} has no class {class_name}")
        for node in chunk.node.body:
            if isinstance(node, ast.FunctionDef) and node.name == method:
                return node
        raise ExportError(f"{self.name}: {class_name} has no method {method}")

    def constant(self, name: str) -> ast.Constant:
        """The literal a module-level constant is assigned."""
        chunk = self.definitions().get(name)
        node = chunk.node if chunk else None
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if value is None or not isinstance(value, ast.Constant):
            raise ExportError(f"{self.name}.{name} is not a literal constant")
        return value

    def dict_of_functions(self, name: str) -> dict[str, str]:
        """A module-level ``{"name": function, ...}`` literal, as names."""
        chunk = self.definitions().get(name)
        node = chunk.node if chunk else None
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if not isinstance(value, ast.Dict):
            raise ExportError(f"{self.name}.{name} is not a dict literal")
        mapping = {}
        for key, item in zip(value.keys, value.values):
            if not (
                isinstance(key, ast.Constant)
                and isinstance(key.value, str)
                and isinstance(item, ast.Name)
            ):
                raise ExportError(f"{self.name}.{name}: entries must be 'name': func")
            mapping[key.value] = item.id
        return mapping


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


# -- names ----------------------------------------------------------------------


def free_names(node: ast.AST) -> set[str]:
    """Names a definition reads (a superset: locals are left for the caller)."""
    return {
        sub.id
        for sub in ast.walk(node)
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load)
    }


def rename_identifiers(text: str, renames: Mapping[str, str]) -> str:
    """``text`` with every NAME token in ``renames`` replaced (not strings)."""
    if not renames:
        return text
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    lines = text.splitlines(keepends=True)
    # Right to left, so that earlier columns stay valid.
    for token in reversed(tokens):
        if token.type == tokenize.NAME and token.string in renames:
            row, col = token.start
            line = lines[row - 1]
            lines[row - 1] = (
                line[:col] + renames[token.string] + line[col + len(token.string) :]
            )
    return "".join(lines)


# -- function bodies ------------------------------------------------------------


@dataclass
class Body:
    """A function's body as text at its own indentation, minus local imports."""

    text: str
    docstring: str | None
    local_imports: list[ImportLine]


def _string_continuation_lines(text: str) -> set[int]:
    """Lines (1-based) that continue a multi-line string token."""
    inside: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.STRING and token.end[0] > token.start[0]:
            inside.update(range(token.start[0] + 1, token.end[0] + 1))
    return inside


def function_body(
    module: Module, function: ast.FunctionDef, renames: Mapping[str, str]
) -> Body:
    """The body of a module-level function, dedented to column zero.

    Function-level imports are taken out and returned rewritten, so that the
    caller can put them at the top of pip's module, where pip keeps them.
    """
    statements = list(function.body)
    docstring = None
    if statements and _is_string(statements[0]):
        doc = statements.pop(0)
        docstring = module.segment(doc.lineno, doc.end_lineno or doc.lineno)
    if not statements:
        raise ExportError(f"{module.name}.{function.name} has an empty body")
    start = statements[0].lineno
    # Comments above the first statement belong to it; a docstring, or the
    # ``def`` line, is where they stop.
    floor = (doc.end_lineno or doc.lineno) + 1 if docstring else function.lineno + 1
    while start - 1 >= floor and module.lines[start - 2].strip().startswith("#"):
        start -= 1
    end = function.end_lineno or function.lineno
    skipped, local_imports = _local_imports(module, function, renames)
    kept = [
        module.lines[number - 1]
        for number in range(start, end + 1)
        if number not in skipped
    ]
    text = _drop_blank_edges(textwrap.dedent("".join(kept)))
    return Body(text, docstring, local_imports)


def _drop_blank_edges(text: str) -> str:
    lines = text.splitlines(keepends=True)
    while lines and not lines[0].strip():
        lines.pop(0)
    # A blank line left where an import was taken out of the top.
    while lines and not lines[-1].strip():
        lines.pop()
    return "".join(lines)


def _local_imports(
    module: Module, outer: ast.AST, renames: Mapping[str, str]
) -> tuple[set[int], list[ImportLine]]:
    """Lines of the imports nested in ``outer``, and those imports rewritten.

    A blank line after imports that open a block goes with them, so that the
    block does not start with an empty line.
    """
    skipped: set[int] = set()
    imports: list[ImportLine] = []
    for node in ast.walk(outer):
        if node is not outer and isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.extend(import_lines(node, renames))
            skipped.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    for node in ast.walk(outer):
        for name in ("body", "orelse", "finalbody"):
            block = getattr(node, name, None)
            if not isinstance(block, list) or not block:
                continue
            leading = 0
            while leading < len(block) and isinstance(
                block[leading], (ast.Import, ast.ImportFrom)
            ):
                leading += 1
            if leading and leading < len(block):
                after = (block[leading - 1].end_lineno or 0) + 1
                if after <= len(module.lines) and not module.lines[after - 1].strip():
                    skipped.add(after)
    return skipped, imports


def definition_without_local_imports(
    module: Module, chunk: Chunk, renames: Mapping[str, str]
) -> tuple[str, list[ImportLine]]:
    """A definition's text minus the imports inside it, and those imports.

    The plugin imports pip lazily inside functions, to stay cheap to import
    into any pip; inside pip the imports belong at the top of the module.
    """
    text = module.definition_text(chunk)
    first = chunk.end - text.count("\n") + 1
    skipped, imports = _local_imports(module, chunk.node, renames)
    kept = [
        module.lines[number - 1]
        for number in range(first, chunk.end + 1)
        if number not in skipped
    ]
    return "".join(kept), imports


def indent(text: str, prefix: str) -> str:
    """Indent every line but the continuation lines of multi-line strings."""
    inside = _string_continuation_lines(text)
    return "".join(
        line if number in inside or not line.strip() else prefix + line
        for number, line in enumerate(text.splitlines(keepends=True), start=1)
    )


def replace_type_self_calls(text: str) -> str:
    """``type(self).name(self, ...)`` -> ``super().name(...)``.

    A plugin function bound on an instance reaches the class's own method
    through ``type(self)``; as a method of a subclass it reaches it through
    ``super()``.
    """
    text = re.sub(r"\btype\(self\)\.(\w+)\(self, ", r"super().\1(", text)
    return re.sub(r"\btype\(self\)\.(\w+)\(self\)", r"super().\1()", text)


def drop_imports_of(
    lines: Iterable[ImportLine], module: str, defined: Iterable[str]
) -> list[ImportLine]:
    """Imports still needed in ``module``: not of itself, not of its own names."""
    own = set(defined)
    return [line for line in lines if line.module != module and line.local not in own]

"""The edits that turn the plugin into changes to pip's own files.

A patch of the series is a list of steps. Most steps are mechanical: they
read the plugin's source and derive pip's code from it (a module moved into
pip's tree, or merged into pip's module of the same name, with its imports
rewritten). The rest are :class:`Edit`: small hand-written changes anchored
on pip's text, for the few places where the plugin binds into pip instead
of providing code (the plugin's wrappers have no equivalent in pip: pip's
own code is edited there instead).
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tools.upstream.source import (
    ExportError,
    ImportLine,
    Module,
    drop_imports_of,
    first_line,
    import_lines,
    module_of,
    path_of,
    pip_module_for,
    rewrite_import_statements,
)

#: Names that a plugin module and pip's module both define with the same
#: meaning: the plugin's is dropped and pip's is used.
SAME_MEANING = frozenset({"logger"})


@dataclass
class Context:
    """What the steps share: both source trees and what has moved where."""

    plugin_src: Path
    pip_tree: Path
    #: plugin module -> pip module, where the mirror rule does not apply.
    module_renames: Mapping[str, str]
    #: pip files changed by the current patch.
    touched: set[str] = field(default_factory=set)
    #: Formats a snippet of generated code as pip's formatter would.
    formatter: Callable[[str], str] = lambda text: text
    #: How news fragments are named: ``{issue}`` and ``{slug}`` are filled in.
    news_name: str = "{issue}"

    @property
    def has_tests(self) -> bool:
        """Whether pip's tree has its test suite (a checkout; an sdist has not)."""
        return (self.pip_tree / "tests").is_dir()

    def plugin_module(self, name: str) -> Module:
        relative = name.replace(".", "/") + ".py"
        return Module(name, (self.plugin_src / relative).read_text(encoding="utf-8"))

    def pip_module(self, name: str) -> Module:
        return Module(name, self.read(path_of(name)))

    def exists(self, path: str) -> bool:
        return (self.pip_tree / path).is_file()

    def read(self, path: str) -> str:
        try:
            return (self.pip_tree / path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ExportError(f"pip's tree has no {path}") from None

    def write(self, path: str, text: str) -> None:
        target = self.pip_tree / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        self.touched.add(path)


class Step(Protocol):
    def apply(self, context: Context) -> None: ...


# -- helpers shared by the steps ----------------------------------------------


def add_imports(context: Context, pip_module: str, lines: Iterable[ImportLine]) -> None:
    """Add imports to a pip module, after its last one; ruff sorts them later.

    An import of a name the module already imports the same way is skipped;
    a name it binds differently is an error, not a silent shadowing.
    """
    module = context.pip_module(pip_module)
    existing = module.imported_names()
    defined = set(module.definitions())
    needed: list[ImportLine] = []
    for line in drop_imports_of(lines, pip_module, defined):
        if line.key in existing:
            if existing[line.key] != (line.module, line.name):
                raise ExportError(
                    f"{pip_module} already binds {line.key} to "
                    f"{existing[line.key]}, the plugin to {line.module}"
                )
            continue
        if line not in needed:
            needed.append(line)
    if not needed:
        return
    at = module.last_import_line()
    text = "".join(line.render() for line in needed)
    lines_before = module.lines[:at]
    context.write(
        path_of(pip_module), "".join([*lines_before, text, *module.lines[at:]])
    )


def append_definitions(context: Context, pip_module: str, text: str) -> None:
    """Put top-level code at the end of a pip module, formatted as pip's."""
    module = context.pip_module(pip_module)
    text = context.formatter(text.strip("\n") + "\n")
    context.write(path_of(pip_module), module.text.rstrip("\n") + "\n\n\n" + text)


def _module_level_imports(
    module: Module, renames: Mapping[str, str]
) -> dict[str, list[ImportLine]]:
    """The module's imports (rewritten), by the name each one binds."""
    found: dict[str, list[ImportLine]] = {}
    for node, _ in module.imports():
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        for line in import_lines(node, renames):
            found.setdefault(line.local, []).append(line)
    return found


# -- modules ----------------------------------------------------------------------


@dataclass
class NewModule:
    """A plugin module becomes a new pip module (or replaces pip's own).

    :param replaces: whether pip already has a module of that name, which
        the plugin's supersedes; checked, so that the series notices when
        pip adds or removes one.
    """

    plugin_module: str
    replaces: bool = False

    def apply(self, context: Context) -> None:
        module = context.plugin_module(self.plugin_module)
        pip_module = pip_module_for(self.plugin_module, context.module_renames)
        path = path_of(pip_module)
        if context.exists(path) != self.replaces:
            state = "has" if context.exists(path) else "has no"
            raise ExportError(f"pip's tree {state} {path}; update the series")
        text = rewrite_import_statements(module, context.module_renames)
        context.write(path, text)


@dataclass
class MergeModule:
    """A plugin module's definitions go into pip's module of the same name.

    See :func:`merge_module` for what is kept out.
    """

    plugin_module: str

    def apply(self, context: Context) -> None:
        module = context.plugin_module(self.plugin_module)
        pip_module = pip_module_for(self.plugin_module, context.module_renames)
        merge_module(context, module, pip_module)


def merge_module(context: Context, module: Module, pip_module: str) -> None:
    """Add ``module``'s definitions and imports to ``pip_module``.

    The module docstring stays out (the patch's message carries it); its
    imports join pip's; a name pip's module already defines is an error
    unless it means the same (:data:`SAME_MEANING`). A compatibility import
    (``try: from <this pip module> import name`` with a fallback for older
    pips) stays out too: the series is made against the newest pip, whose
    module defines the name.
    """
    target = context.pip_module(pip_module)
    taken = set(target.definitions()) | {
        key.partition(".")[0] for key in target.imported_names()
    }
    pieces = []
    for chunk in module.chunks():
        if isinstance(chunk.node, (ast.Import, ast.ImportFrom, ast.If)):
            if isinstance(chunk.node, ast.If) and not _imports_only(chunk.node):
                raise ExportError(f"{module.name}: top-level if is not supported")
            continue
        if chunk.names == {"__all__"}:
            continue
        if _imports_from(chunk.node, pip_module, taken):
            continue
        clash = chunk.names & taken
        if clash and clash <= SAME_MEANING:
            continue
        if clash:
            raise ExportError(f"{pip_module} already defines {sorted(clash)}")
        piece = module.segment(chunk.lead_start, chunk.end)
        pieces.append(_SECTION_RULE.sub("", piece))
    imports = [
        line
        for lines in _module_level_imports(module, context.module_renames).values()
        for line in lines
    ]
    add_imports(context, pip_module, imports)
    append_definitions(context, pip_module, "".join(pieces))


# The plugin's "# -- section ----" rules: pip's modules have none.
_SECTION_RULE = re.compile(r"^# -- .*-{3,}[ \t]*\n", re.MULTILINE)


def _imports_from(node: ast.AST, pip_module: str, defined: set[str]) -> bool:
    """Whether ``node`` is ``try:`` imports of names ``pip_module`` defines,
    ``except ImportError:`` a fallback."""
    if not isinstance(node, ast.Try) or not node.body:
        return False
    catches_import_error = all(
        isinstance(handler.type, ast.Name) and handler.type.id == "ImportError"
        for handler in node.handlers
    )
    return catches_import_error and all(
        isinstance(sub, ast.ImportFrom)
        and sub.module == pip_module
        and all(alias.name in defined for alias in sub.names)
        for sub in node.body
    )


def _imports_only(node: ast.If) -> bool:
    return all(isinstance(sub, (ast.Import, ast.ImportFrom)) for sub in node.body)


# -- hand-written edits ---------------------------------------------------------


@dataclass
class Edit:
    """A hand-written change to a pip file: ``old`` must occur exactly once.

    :param imports: what the new text needs, as ``(module, name)``.
    """

    path: str
    old: str
    new: str
    imports: tuple[tuple[str, str], ...] = ()

    def apply(self, context: Context) -> None:
        if self.path.startswith("tests/") and not context.has_tests:
            return
        text = context.read(self.path)
        count = text.count(self.old)
        if count != 1:
            raise ExportError(
                f"{self.path}: the anchor occurs {count} times, expected once; "
                f"update tools/upstream/series.py:\n{self.old}"
            )
        context.write(self.path, text.replace(self.old, self.new))
        if self.imports:
            add_imports(
                context,
                module_of(self.path),
                [ImportLine(origin, name) for origin, name in self.imports],
            )


@dataclass
class RemoveDefinition:
    """Delete a function or method of pip's by qualified name (``Class.method``):
    no copy of its text is needed as an anchor, and its body may change."""

    path: str
    qualname: str

    def apply(self, context: Context) -> None:
        module = Module(module_of(self.path), context.read(self.path))
        nodes: list[ast.stmt] = module.tree.body
        for name in self.qualname.split("."):
            siblings = nodes
            found = [node for node in nodes if getattr(node, "name", None) == name]
            if not found:
                raise ExportError(
                    f"{self.path} has no {self.qualname}; "
                    "update tools/upstream/series.py"
                )
            nodes = getattr(found[0], "body", [])
        start, end = first_line(found[0]) - 1, found[0].end_lineno or 0
        lines = module.lines
        # The blank lines between it and the one before (or, if first, after)
        # go with it, so that what is left is spaced as before.
        if found[0] is not siblings[0]:
            while start and not lines[start - 1].strip():
                start -= 1
        else:
            while end < len(lines) and not lines[end].strip():
                end += 1
        context.write(self.path, "".join(lines[:start] + lines[end:]))


@dataclass
class NewsFragment:
    """A news entry in pip's ``news/`` directory (towncrier).

    pip names an entry after the issue or pull request it belongs to:
    ``<number>.<kind>.rst``. ``issue`` is the pip issue the patch addresses,
    ``slug`` a name for it; :attr:`Context.news_name` says which to use.
    """

    issue: int
    slug: str
    kind: str
    text: str

    KINDS = ("feature", "bugfix", "removal", "doc", "vendor", "process", "trivial")

    def path(self, pattern: str = "{issue}") -> str:
        if self.kind not in self.KINDS:
            raise ExportError(f"pip has no news type {self.kind!r}")
        name = pattern.format(issue=self.issue, slug=self.slug)
        return f"news/{name}.{self.kind}.rst"

    def apply(self, context: Context) -> None:
        path = self.path(context.news_name)
        if context.exists(path):
            raise ExportError(f"pip's tree already has {path}; pass --news-name")
        context.write(path, textwrap.fill(" ".join(self.text.split()), 79) + "\n")


# -- pip's tests ------------------------------------------------------------------

#: Tests written for pip's own suite, laid out as in pip's repository.
PIP_TESTS = Path(__file__).with_name("pip_tests")


@dataclass
class PipTests:
    """A test module for pip's suite: new, or merged into pip's of that name.

    Skipped where pip's tree has no tests (an sdist).
    """

    path: str

    def apply(self, context: Context) -> None:
        if not context.has_tests:
            return
        name = module_of(self.path)
        module = Module(name, (PIP_TESTS / self.path).read_text(encoding="utf-8"))
        if context.exists(self.path):
            merge_module(context, module, name)
        else:
            context.write(self.path, module.text)

"""The steps of a patch, and the Python source they move. The AST only says
where things are; the text is what moves, so that comments survive."""

from __future__ import annotations

import ast
import hashlib
import re
import subprocess
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

#: The package whose modules are exported, and pip's equivalent of it.
PLUGIN_PACKAGE = "fastdeps"
PIP_PACKAGE = "pip._internal"

#: Plugin modules whose pip module is not the mirror path under pip._internal.
MODULE_RENAMES = {"fastdeps.seams": "pip._internal.utils.seams"}

#: Names that a plugin module and pip's module both define with the same
#: meaning: the plugin's is dropped and pip's is used.
SAME_MEANING = frozenset({"logger"})

#: Tests written for pip's own suite, laid out as in pip's repository.
PIP_TESTS = Path(__file__).with_name("pip_tests")

# "from fastdeps.x import": the module path is what moves into pip.
_PLUGIN_IMPORT = re.compile(rf"\bfrom\s+({PLUGIN_PACKAGE}(?:\.\w+)*)\s+import\b")


class ExportError(Exception):
    """The plugin's source cannot be exported as it is; the message says why."""


def run(
    command: Sequence[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
    ok: Sequence[int] = (0,),
) -> str:
    """Run ``command``; its output, or an :class:`ExportError` with it."""
    result = subprocess.run(
        command, cwd=cwd, env=env, input=input, capture_output=True, text=True
    )
    if result.returncode not in ok:
        raise ExportError(
            f"{' '.join(command)} exited with {result.returncode} in {cwd or '.'}:\n"
            f"{result.stdout}{result.stderr}"
        )
    return result.stdout


def pip_module_for(plugin_module: str) -> str:
    """The mirror path under ``pip._internal``, unless :data:`MODULE_RENAMES`
    names another."""
    if plugin_module in MODULE_RENAMES:
        return MODULE_RENAMES[plugin_module]
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
    if isinstance(node, ast.Assign):
        targets = node.targets
    else:  # an augmented assignment binds no new name
        targets = [node.target] if isinstance(node, ast.AnnAssign) else []
    return frozenset(
        sub.id
        for target in targets
        for sub in ast.walk(target)
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store)
    )


class Module:
    """One module's text and its AST (whose lines are 1-based)."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        try:
            self.tree = ast.parse(text)
        except SyntaxError as exc:
            raise ExportError(f"{name} does not parse: {exc}") from exc
        self.lines = text.splitlines(keepends=True)

    def segment(self, start: int, end: int) -> str:
        return "".join(self.lines[start - 1 : end])

    def span(self, node: ast.stmt) -> tuple[int, int]:
        """A statement's first and last line, decorators included."""
        decorators: list[ast.expr] = getattr(node, "decorator_list", [])
        first = min([node.lineno, *(decorator.lineno for decorator in decorators)])
        return first, node.end_lineno or node.lineno

    def import_lines(self) -> list[ImportLine]:
        """The names top-level imports bind, under ``if TYPE_CHECKING:`` too,
        but not ``__future__``'s, which every module has."""
        lines = []
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
                    lines += import_lines(sub)
        return lines

    def chunks(self) -> Iterator[tuple[ast.stmt, str]]:
        """Each top-level statement after the docstring, with the lines before it."""
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


def import_lines(node: ast.Import | ast.ImportFrom) -> list[ImportLine]:
    """An import statement as one :class:`ImportLine` per name, into pip."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.partition(".")[0] == PLUGIN_PACKAGE:
                raise ExportError(f"'import {alias.name}' has no equivalent in pip")
        return [ImportLine(alias.name, None, alias.asname) for alias in node.names]
    module = pip_module_for("." * node.level + (node.module or ""))
    return [ImportLine(module, alias.name, alias.asname) for alias in node.names]


def rewrite_import_statements(module: Module) -> str:
    """The module's text with its plugin imports pointing into pip (any other
    use of the plugin's name stops the export: :mod:`tools.upstream.export`)."""
    return _PLUGIN_IMPORT.sub(
        lambda match: f"from {pip_module_for(match[1])} import", module.text
    )


@dataclass
class Context:
    """What the steps share: both source trees and what has moved where."""

    plugin_src: Path
    pip_tree: Path
    #: How news fragments are named: ``{issue}`` and ``{slug}`` are filled in.
    news_name: str = "{issue}"
    #: pip files changed by the current patch.
    touched: set[str] = field(default_factory=set)

    def skips(self, name: str) -> bool:
        """Whether module ``name`` is one of pip's tests and pip's tree has none
        (an sdist): the steps for it then do nothing."""
        return name.startswith("tests.") and not (self.pip_tree / "tests").is_dir()

    def plugin_module(self, name: str) -> tuple[Module, str]:
        """A plugin module, or one of :data:`PIP_TESTS` (``tests.*``), and the
        path of its pip module."""
        root = PIP_TESTS if name.startswith("tests.") else self.plugin_src
        text = (root / (name.replace(".", "/") + ".py")).read_text("utf-8")
        return Module(name, text), path_of(pip_module_for(name))

    def module(self, path: str) -> Module:
        return Module(module_of(path), self.read(path))

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


def add_imports(context: Context, path: str, lines: Iterable[ImportLine]) -> None:
    """Add imports after a pip module's last one (ruff sorts them later); a
    name the module binds otherwise is an error, not a silent shadowing."""
    module = context.module(path)
    existing = {line.key: (line.module, line.name) for line in module.import_lines()}
    own = module.defined_names()
    needed: list[ImportLine] = []
    for line in lines:
        if line.module == module.name or line.local in own:
            continue
        bound = existing.get(line.key, (line.module, line.name))
        if bound != (line.module, line.name):
            raise ExportError(
                f"{module.name} already binds {line.key} to {bound}, "
                f"the plugin to {line.module}"
            )
        if line.key not in existing and line not in needed:
            needed.append(line)
    # The main import block's end, TYPE_CHECKING aside.
    ends = [
        node.end_lineno or node.lineno
        for node in module.tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
    ]
    if not needed:
        return
    if not ends:
        raise ExportError(f"{module.name} has no imports to add to")
    at = max(ends)
    text = "".join(line.render() for line in needed)
    context.write(path, "".join([*module.lines[:at], text, *module.lines[at:]]))


@dataclass
class NewModule:
    """A plugin module becomes a new pip module, or (``replaces``) pip's own of
    that name; checked, so that the series notices when pip adds or drops one."""

    plugin_module: str
    replaces: bool = False

    def apply(self, context: Context) -> None:
        if context.skips(self.plugin_module):
            return
        module, path = context.plugin_module(self.plugin_module)
        if context.exists(path) != self.replaces:
            state = "has" if context.exists(path) else "has no"
            raise ExportError(f"pip's tree {state} {path}; update the series")
        context.write(path, rewrite_import_statements(module))


@dataclass
class MergeModule:
    """A plugin module's definitions go into pip's module of the same name."""

    plugin_module: str

    def apply(self, context: Context) -> None:
        if not context.skips(self.plugin_module):
            merge_module(context, *context.plugin_module(self.plugin_module))


def merge_module(context: Context, module: Module, path: str) -> None:
    """Append ``module``'s definitions to pip's module at ``path``, with their
    imports; not the docstring, ``__all__``, :data:`SAME_MEANING` names, nor
    compatibility imports of the pip module's own names."""
    target = context.module(path)
    taken = target.defined_names() | {line.local for line in target.import_lines()}
    pieces = []
    for node, text in module.chunks():
        names = bound_names(node)
        if isinstance(node, ast.If) and not all(
            isinstance(sub, (ast.Import, ast.ImportFrom)) for sub in node.body
        ):
            raise ExportError(f"{module.name}: top-level if is not supported")
        if (
            isinstance(node, (ast.Import, ast.ImportFrom, ast.If))
            or names == {"__all__"}
            or _imports_from(node, target.name, taken)
        ):
            continue
        clash = names & taken
        if clash and not clash <= SAME_MEANING:
            raise ExportError(f"{target.name} already defines {sorted(clash)}")
        if not clash:
            pieces.append(text)
    add_imports(context, path, module.import_lines())
    text = "".join(pieces).strip("\n")
    context.write(path, context.read(path).rstrip("\n") + "\n\n\n" + text + "\n")


def _imports_from(node: ast.AST, pip_module: str, defined: set[str]) -> bool:
    """Whether ``node`` is ``try:`` imports of names ``pip_module`` defines,
    ``except ImportError:`` a fallback."""
    return (
        isinstance(node, ast.Try)
        and all(getattr(h.type, "id", "") == "ImportError" for h in node.handlers)
        and all(
            isinstance(sub, ast.ImportFrom)
            and sub.module == pip_module
            and {alias.name for alias in sub.names} <= defined
            for sub in node.body
        )
    )


@dataclass
class Edit:
    """A hand-written change to a pip file, as diff hunks: " " starts a line
    kept, "-" one removed, "+" one added, and "@@" alone starts the next hunk.
    What a hunk removes and keeps must occur exactly once. ``imports`` is a
    module and the names that the added lines need from it."""

    path: str
    hunks: str
    imports: tuple[str, ...] = ()

    def apply(self, context: Context) -> None:
        for hunk in re.split(r"^@@\n", self.hunks, flags=re.MULTILINE):
            lines = hunk.splitlines(keepends=True)
            for line in lines:
                if line[0] not in " -+":
                    raise ExportError(f"{self.path}: not a hunk line: {line!r}")
            old = "".join(line[1:] for line in lines if line[0] != "+")
            new = "".join(line[1:] for line in lines if line[0] != "-")
            text = context.read(self.path)
            count = text.count(old)
            if count != 1:
                raise ExportError(
                    f"{self.path}: the anchor occurs {count} times, expected once; "
                    f"update tools/upstream/series.py:\n{old}"
                )
            context.write(self.path, text.replace(old, new))
        if self.imports:
            origin, *names = self.imports
            add_imports(context, self.path, [ImportLine(origin, n) for n in names])


def _definition(module: Module, path: str, qualname: str) -> tuple[ast.stmt, bool]:
    """The function or class ``qualname`` (``Class.method``), and if it is first."""
    nodes: list[ast.stmt] = module.tree.body
    for name in qualname.split("."):
        siblings = nodes
        found = [node for node in nodes if getattr(node, "name", None) == name]
        if not found:
            raise ExportError(f"{path} has no {qualname}; update the series")
        nodes = getattr(found[0], "body", [])
    return found[0], found[0] is siblings[0]


@dataclass
class RemoveDefinition:
    """Delete a function or method of pip's by name: its body may change."""

    path: str
    qualname: str

    def apply(self, context: Context) -> None:
        module = context.module(self.path)
        node, is_first = _definition(module, self.path, self.qualname)
        (start, end), lines = module.span(node), module.lines
        start -= 1
        # The blank lines between it and the one before (or, if first, after)
        # go with it, so that what is left is spaced as before.
        while not is_first and start and not lines[start - 1].strip():
            start -= 1
        while is_first and end < len(lines) and not lines[end].strip():
            end += 1
        context.write(self.path, "".join(lines[:start] + lines[end:]))


@dataclass
class NewsFragment:
    """A news entry in pip's ``news/``, named as :attr:`Context.news_name` says."""

    issue: int
    slug: str
    kind: str
    text: str

    def path(self, pattern: str = "{issue}") -> str:
        name = pattern.format(issue=self.issue, slug=self.slug)
        return f"news/{name}.{self.kind}.rst"

    def apply(self, context: Context) -> None:
        path = self.path(context.news_name)
        if context.exists(path):
            raise ExportError(f"pip's tree already has {path}; pass --news-name")
        context.write(path, textwrap.fill(" ".join(self.text.split()), 79) + "\n")


@dataclass
class ReplaceTest:
    """A test function of pip's replaced by ours of that name; ``was``, the
    start of the sha256 of pip's, stops the export when pip changes it."""

    path: str
    name: str
    was: str

    def apply(self, context: Context) -> None:
        name = module_of(self.path)
        if context.skips(name):
            return
        module, (ours, _) = context.module(self.path), context.plugin_module(name)
        old, new = (_definition(m, self.path, self.name)[0] for m in (module, ours))
        start, end = module.span(old)
        digest = hashlib.sha256(module.segment(start, end).encode()).hexdigest()
        if not digest.startswith(self.was):
            raise ExportError(
                f"{self.path}: pip's {self.name} changed (now {digest[:12]}); "
                f"update it in {PIP_TESTS / self.path} and tools/upstream/series.py"
            )
        lines, text = module.lines, ours.segment(*ours.span(new))
        context.write(self.path, "".join([*lines[: start - 1], text, *lines[end:]]))

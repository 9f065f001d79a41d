"""Build the patch series: apply the steps to a copy of pip, commit, format.

Each patch of :data:`~tools.upstream.series.SERIES` is applied to a scratch
git repository holding pip's sources, then checked the way pip's CI would
(its own ruff configuration, from the sdist's pyproject.toml), then
committed; ``git format-patch`` writes the series. Author and date are the
plugin checkout's last commit's, so that one checkout always gives the same
bytes.
"""

from __future__ import annotations

import ast
import difflib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tools.upstream.series import (
    MODULE_RENAMES,
    SERIES,
    TEXT_SUBSTITUTIONS,
    Patch,
)
from tools.upstream.source import PIP_PACKAGE, PLUGIN_PACKAGE, ExportError, run
from tools.upstream.steps import Context

logger = logging.getLogger(__name__)

#: What ruff may fix by itself in generated code: import order (pip's
#: sections), imports that a replaced body no longer uses, ``noqa`` comments
#: for rules that pip does not select, and pyupgrade's rewrites for pip's
#: newer target Python (``collections.abc.Callable``).
RUFF_FIXES = "I,F401,RUF100,UP"

_PLUGIN_REFERENCE = re.compile(rf"(?<![\w.-]){PLUGIN_PACKAGE}\.(?=[a-z_])")

#: Words that must not reach pip: they name the plugin (its package, its
#: distribution). Case matters: FastDepsSettings is a fine name in pip.
LEAK_WORDS = ("fastdeps",)


@dataclass(frozen=True)
class Identity:
    """Author and date of the commits, as git wants them."""

    name: str
    email: str
    date: str


def ruff_command() -> list[str]:
    """How to run ruff: the one installed next to this Python, else PATH's."""
    candidate = Path(sys.executable).with_name("ruff")
    if candidate.exists():
        return [str(candidate)]
    found = shutil.which("ruff")
    if found is None:
        raise ExportError("ruff is needed to check the patches; pip install ruff")
    return [found]


class Ruff:
    """ruff with pip's configuration: the pyproject.toml at the tree's root."""

    def __init__(self, tree: Path) -> None:
        self.tree = tree
        self.command = ruff_command()

    def format_text(self, text: str, filename: str = "src/pip/_snippet.py") -> str:
        result = subprocess.run(
            [*self.command, "format", "--no-cache", "--stdin-filename", filename, "-"],
            cwd=self.tree,
            input=text,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            numbered = "".join(
                f"{number:4} {line}"
                for number, line in enumerate(text.splitlines(keepends=True), 1)
            )
            raise ExportError(
                f"ruff format failed on generated code:\n{result.stderr}{numbered}"
            )
        return result.stdout

    def fix(self, paths: Sequence[str]) -> None:
        # pip's whole rule set stays selected, so that RUF100 knows which
        # suppression comments pip needs; only these rules are fixed.
        self._check(paths, "--fix-only", f"--fixable={RUFF_FIXES}")

    def check(self, paths: Sequence[str]) -> None:
        self._check(paths)

    def _check(self, paths: Sequence[str], *options: str) -> None:
        if paths:
            run([*self.command, "check", "--no-cache", *options, *paths], self.tree)

    def format_complaints(self, text: str, filename: str) -> set[str]:
        """Lines that ruff format would change in ``text``."""
        formatted = self.format_text(text, filename)
        return {
            line[2:]
            for line in difflib.ndiff(text.splitlines(), formatted.splitlines())
            if line.startswith("- ")
        }


def identity_of(checkout: Path, author: str | None = None) -> Identity:
    """The patches' author and date, for reproducible patches.

    The date is always the checkout's last commit's; so is the author,
    unless ``author`` (``"Name <email>"``, as git writes it) is given.
    """
    output = run(["git", "log", "-1", "--format=%an%n%ae%n%aI"], checkout)
    name, email, date = output.splitlines()[:3]
    if author is not None:
        match = re.fullmatch(r"\s*([^<>]+?)\s*<([^<>\s]+@[^<>\s]+)>\s*", author)
        if match is None:
            raise ExportError(f"--author must be 'Name <email>', not {author!r}")
        name, email = match.groups()
    return Identity(name, email, date)


def _copy_pip(pip_source: Path, tree: Path) -> None:
    if not (pip_source / "src" / "pip" / "_internal").is_dir():
        raise ExportError(f"{pip_source} is not a pip source tree (no src/pip)")
    shutil.copytree(
        pip_source / "src" / "pip",
        tree / "src" / "pip",
        # The vendored packages are neither changed nor checked (pip's ruff
        # configuration excludes them), and are most of the bytes.
        ignore=shutil.ignore_patterns("_vendor", "__pycache__"),
    )
    shutil.copy2(pip_source / "pyproject.toml", tree / "pyproject.toml")
    # A checkout of pip's repository has its test suite, which the series
    # extends; an sdist has none.
    if (pip_source / "tests").is_dir():
        shutil.copytree(
            pip_source / "tests",
            tree / "tests",
            ignore=shutil.ignore_patterns("__pycache__"),
        )


class Series:
    """A scratch repository in which the patches are made one by one."""

    def __init__(
        self, plugin_src: Path, tree: Path, identity: Identity, news_name: str
    ) -> None:
        self.tree = tree
        self.identity = identity
        self.ruff = Ruff(tree)
        self.context = Context(
            plugin_src=plugin_src,
            pip_tree=tree,
            module_renames=MODULE_RENAMES,
            formatter=self.ruff.format_text,
            news_name=news_name,
        )
        self.unused_substitutions = set(TEXT_SUBSTITUTIONS)

    def git(self, *args: str) -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": self.identity.name,
            "GIT_AUTHOR_EMAIL": self.identity.email,
            "GIT_AUTHOR_DATE": self.identity.date,
            "GIT_COMMITTER_NAME": self.identity.name,
            "GIT_COMMITTER_EMAIL": self.identity.email,
            "GIT_COMMITTER_DATE": self.identity.date,
        }
        result = subprocess.run(
            ["git", "-c", "core.autocrlf=false", *args],
            cwd=self.tree,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ExportError(f"git {' '.join(args)}: {result.stderr}")
        return result.stdout

    def start(self) -> None:
        self.git("init", "-q", "-b", "base")
        (self.tree / ".git" / "info" / "exclude").write_text(
            ".ruff_cache/\n__pycache__/\n", encoding="utf-8"
        )
        self.git("add", "-A")
        self.git("commit", "-q", "--no-verify", "-m", "pip as released")
        self.git("tag", "base")

    def make(self, patch: Patch) -> None:
        context = self.context
        context.touched = set()
        for step in patch.steps:
            step.apply(context)
        patch.news.apply(context)
        self._substitute(sorted(context.touched))
        python_paths = sorted(path for path in context.touched if path.endswith(".py"))
        self.ruff.fix(python_paths)
        self._verify(patch, python_paths)
        self.git("add", "-A")
        self.git("commit", "-q", "--no-verify", "-m", patch.commit_message)

    def _substitute(self, paths: Sequence[str]) -> None:
        for path in paths:
            text = self.context.read(path)
            for old, new in TEXT_SUBSTITUTIONS:
                if old in text:
                    text = text.replace(old, new)
                    self.unused_substitutions.discard((old, new))
            # References in docstrings and comments (":mod:`fastdeps.cache`")
            # follow the modules into pip.
            text = _PLUGIN_REFERENCE.sub(PIP_PACKAGE + ".", text)
            self.context.write(path, text)

    def _verify(self, patch: Patch, python_paths: Sequence[str]) -> None:
        for path in python_paths:
            text = self.context.read(path)
            compile(text, path, "exec")
            self._check_format(path, text)
        self.ruff.check(python_paths)
        self._check_imports(python_paths)
        self._check_leaks(patch)

    def _check_imports(self, python_paths: Sequence[str]) -> None:
        """Every ``pip._internal`` module a changed file imports must exist.

        Nothing else would notice an import of a plugin module that no
        patch of the series brings into pip, until pip runs.
        """
        for path in python_paths:
            tree = ast.parse(self.context.read(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.ImportFrom) or node.level:
                    continue
                module = node.module or ""
                if not module.startswith(PIP_PACKAGE + "."):
                    continue
                base = self.tree / "src" / module.replace(".", "/")
                if not (base.with_suffix(".py").is_file() or base.is_dir()):
                    raise ExportError(
                        f"{path} imports {module}, which pip does not have and "
                        "no earlier step of the series adds"
                    )

    def _check_format(self, path: str, text: str) -> None:
        """New files must be formatted; changed files no worse than pip's own.

        A newer ruff than pip's may want to reformat a few lines pip never
        touched; those are not the series' business.
        """
        complaints = self.ruff.format_complaints(text, path)
        try:
            original = self.git("show", f"base:{path}")
        except ExportError:
            original = ""
        complaints -= self.ruff.format_complaints(original, path) if original else set()
        if complaints:
            raise ExportError(
                f"{path}: generated code is not formatted as ruff wants:\n"
                + "\n".join(sorted(complaints))
            )

    def _check_leaks(self, patch: Patch) -> None:
        diff = self.git("diff", "-U0", "HEAD", "--", *sorted(self.context.touched))
        diff += "".join(
            (self.tree / path).read_text(encoding="utf-8")
            for path in self.git("ls-files", "--others", "--exclude-standard").split()
        )
        added = [
            line
            for line in diff.splitlines()
            if not line.startswith(("+++", "---", "-", "@@", "diff ", "index "))
        ]
        leaks = [line for line in added if any(word in line for word in LEAK_WORDS)]
        if leaks:
            raise ExportError(
                f"{patch.subject!r} would bring plugin names into pip; add a "
                "substitution in tools/upstream/series.py:\n" + "\n".join(leaks)
            )

    def write(self, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("[0-9][0-9][0-9][0-9]-*.patch"):
            old.unlink()
        output = self.git(
            "format-patch",
            "--zero-commit",
            "--no-signature",
            "--numbered",
            "--stat=80",
            "-o",
            str(out.resolve()),
            "base..HEAD",
        )
        return [Path(line) for line in output.splitlines() if line.strip()]


def export(
    plugin_src: Path,
    pip_source: Path,
    out: Path,
    *,
    identity: Identity,
    news_name: str = "{issue}",
    series: Sequence[Patch] = SERIES,
) -> list[Path]:
    """Write the series into ``out``; return the patch files, in order."""
    with tempfile.TemporaryDirectory(prefix="fastdeps-upstream-") as scratch:
        tree = Path(scratch) / "pip"
        _copy_pip(pip_source, tree)
        maker = Series(plugin_src, tree, identity, news_name)
        maker.start()
        for patch in series:
            logger.info("making %s", patch.subject)
            maker.make(patch)
        for old, _ in sorted(maker.unused_substitutions):
            logger.warning("substitution no longer used: %r", old)
        return maker.write(out)

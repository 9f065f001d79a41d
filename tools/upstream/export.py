"""Make the series in a scratch git repository of pip's sources, checking
each patch with pip's own ruff configuration before committing it."""

from __future__ import annotations

import ast
import difflib
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tools.upstream.series import MODULE_RENAMES, SERIES, TEXT_SUBSTITUTIONS, Patch
from tools.upstream.steps import PIP_PACKAGE, PLUGIN_PACKAGE, Context, ExportError, run

logger = logging.getLogger(__name__)

REPOSITORY = Path(__file__).resolve().parents[2]

#: What ruff may fix by itself in generated code: import order (pip's
#: sections), imports that a replaced body no longer uses, ``noqa`` comments
#: for rules that pip does not select, and pyupgrade's rewrites for pip's
#: newer target Python (``collections.abc.Callable``).
RUFF_FIXES = "I,F401,RUF100,UP"

_PLUGIN_REFERENCE = re.compile(rf"(?<![\w.-]){PLUGIN_PACKAGE}\.(?=[a-z_])")


#: The commits' author and date, as git's environment variables.
Identity = dict[str, str]


def identity_of(author: str | None = None) -> Identity:
    """This checkout's last commit's date and author, or ``author``
    (``"Name <email>"``): one checkout always gives the same bytes."""
    output = run(["git", "log", "-1", "--format=%an%n%ae%n%aI"], REPOSITORY)
    name, email, date = output.splitlines()[:3]
    if author is not None:
        match = re.fullmatch(r"\s*([^<>]+?)\s*<([^<>\s]+@[^<>\s]+)>\s*", author)
        if match is None:
            raise ExportError(f"--author must be 'Name <email>', not {author!r}")
        name, email = match.groups()
    return {
        f"GIT_{role}_{key}": value
        for role in ("AUTHOR", "COMMITTER")
        for key, value in (("NAME", name), ("EMAIL", email), ("DATE", date))
    }


class Series(Context):
    """A scratch git repository of pip's sources, where the steps make the
    patches one by one."""

    def __init__(
        self, pip_source: Path, tree: Path, identity: Identity, news_name: str
    ) -> None:
        super().__init__(REPOSITORY / "src", tree, MODULE_RENAMES, news_name)
        if not (pip_source / "src" / "pip" / "_internal").is_dir():
            raise ExportError(f"{pip_source} is not a pip source tree (no src/pip)")
        # The vendored packages are neither changed nor checked (pip's ruff
        # configuration excludes them), and are most of the bytes. A checkout
        # of pip's repository has its test suite; an sdist has none.
        ignore = shutil.ignore_patterns("_vendor", "__pycache__")
        for part in ("src/pip", "tests"):
            if (pip_source / part).is_dir():
                shutil.copytree(pip_source / part, tree / part, ignore=ignore)
        shutil.copy2(pip_source / "pyproject.toml", tree / "pyproject.toml")
        self.env = {**os.environ, **identity}
        # The ruff installed next to this Python, else PATH's.
        ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
        self.ruff = ruff or shutil.which("ruff") or ""
        if not self.ruff:
            raise ExportError("ruff is needed to check the patches; pip install ruff")
        self.unused_substitutions = set(TEXT_SUBSTITUTIONS)
        self.git("init", "-q", "-b", "base")
        (tree / ".git" / "info" / "exclude").write_text(
            ".ruff_cache/\n__pycache__/\n", encoding="utf-8"
        )
        self.git("add", "-A")
        self.git("commit", "-q", "--no-verify", "-m", "pip as released")
        self.git("tag", "base")

    def git(self, *args: str) -> str:
        command = ["git", "-c", "core.autocrlf=false", *args]
        return run(command, self.pip_tree, env=self.env)

    def format(self, text: str, filename: str = "src/pip/_snippet.py") -> str:
        command = [self.ruff, "format", "--no-cache", "--stdin-filename", filename]
        try:
            return run([*command, "-"], self.pip_tree, input=text)
        except ExportError as exc:
            numbered = "".join(
                f"{number:4} {line}"
                for number, line in enumerate(text.splitlines(keepends=True), 1)
            )
            raise ExportError(f"generated code: {exc}{numbered}") from None

    def make(self, patch: Patch) -> None:
        self.touched = set()
        for step in patch.steps:
            step.apply(self)
        patch.news.apply(self)
        for path in sorted(self.touched):
            self.write(path, self._substitute(self.read(path)))
        python_paths = sorted(path for path in self.touched if path.endswith(".py"))
        # pip's whole rule set stays selected, so that RUF100 knows which
        # suppression comments pip needs; only RUFF_FIXES are fixed.
        self._ruff_check(python_paths, "--fix-only", f"--fixable={RUFF_FIXES}")
        self.git("add", "-A")
        for path in python_paths:
            self._check_format(path)
        self._ruff_check(python_paths)
        self._check_imports(python_paths)
        self._check_leaks(patch)
        self.git("commit", "-q", "--no-verify", "-m", patch.commit_message)

    def _ruff_check(self, paths: Sequence[str], *options: str) -> None:
        if paths:
            run([self.ruff, "check", "--no-cache", *options, *paths], self.pip_tree)

    def _substitute(self, text: str) -> str:
        for old, new in TEXT_SUBSTITUTIONS.items():
            if old in text:
                text = text.replace(old, new)
                self.unused_substitutions.discard(old)
        # References in docstrings and comments (":mod:`fastdeps.cache`")
        # follow the modules into pip.
        return _PLUGIN_REFERENCE.sub(PIP_PACKAGE + ".", text)

    def _check_imports(self, python_paths: Sequence[str]) -> None:
        """Every ``pip._internal`` module a changed file imports must exist:
        nothing else would notice a plugin module no patch brings into pip."""
        for path in python_paths:
            for node in ast.walk(ast.parse(self.read(path))):
                if not isinstance(node, ast.ImportFrom) or node.level:
                    continue
                module = node.module or ""
                base = self.pip_tree / "src" / module.replace(".", "/")
                if module.startswith(PIP_PACKAGE + ".") and not (
                    base.with_suffix(".py").is_file() or base.is_dir()
                ):
                    raise ExportError(
                        f"{path} imports {module}, which pip does not have and "
                        "no earlier step of the series adds"
                    )

    def _check_format(self, path: str) -> None:
        """New files must be formatted; changed files no worse than pip's own
        (a newer ruff than pip's may want to change lines pip never touched)."""
        try:
            original = self.git("show", f"base:{path}")
        except ExportError:
            original = ""  # a new file
        complaints = self._unformatted(self.read(path), path)
        complaints -= self._unformatted(original, path) if original else set()
        if complaints:
            raise ExportError(
                f"{path}: generated code is not formatted as ruff wants:\n"
                + "\n".join(sorted(complaints))
            )

    def _unformatted(self, text: str, filename: str) -> set[str]:
        """Lines that ruff format would change in ``text``."""
        formatted = self.format(text, filename)
        return {
            line[2:]
            for line in difflib.ndiff(text.splitlines(), formatted.splitlines())
            if line.startswith("- ")
        }

    def _check_leaks(self, patch: Patch) -> None:
        leaks = [
            line
            for line in self.git("diff", "--cached", "-U0").splitlines()
            # Case matters: FastDepsSettings is a fine name in pip.
            if line.startswith("+")
            and not line.startswith("+++")
            and PLUGIN_PACKAGE in line
        ]
        if leaks:
            raise ExportError(
                f"{patch.subject!r} would bring plugin names into pip; add a "
                "substitution in tools/upstream/series.py:\n" + "\n".join(leaks)
            )

    def write_patches(self, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("[0-9][0-9][0-9][0-9]-*.patch"):
            old.unlink()
        options = ["--zero-commit", "--no-signature", "--numbered", "--stat=80"]
        output = self.git("format-patch", *options, "-o", str(out.resolve()), "base..")
        return [Path(line) for line in output.splitlines() if line.strip()]


def export(
    pip_source: Path, out: Path, identity: Identity, news_name: str = "{issue}"
) -> list[Path]:
    """Write the series into ``out``; return the patch files, in order."""
    with tempfile.TemporaryDirectory(prefix="fastdeps-upstream-") as scratch:
        series = Series(pip_source, Path(scratch) / "pip", identity, news_name)
        for patch in SERIES:
            logger.info("making %s", patch.subject)
            series.make(patch)
        for old in sorted(series.unused_substitutions):
            logger.warning("substitution no longer used: %r", old)
        return series.write_patches(out)

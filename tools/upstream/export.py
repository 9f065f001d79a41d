"""Make the series in a scratch git repository of pip's sources, checking each
patch with pip's ruff configuration; apply it for :func:`prepare` and :func:`check`."""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import re
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from tools.upstream.series import PIP_VERSION, SERIES, TEXT_SUBSTITUTIONS, Patch
from tools.upstream.steps import PIP_PACKAGE, PLUGIN_PACKAGE, Context, ExportError, run

logger = logging.getLogger(__name__)

REPOSITORY = Path(__file__).resolve().parents[2]

#: What ruff may fix by itself in generated code: import order (pip's
#: sections), imports that a replaced body no longer uses, ``noqa`` comments
#: for rules that pip does not select, and pyupgrade's rewrites for pip's
#: newer target Python (``collections.abc.Callable``).
RUFF_FIXES = "I,F401,RUF100,UP"

# An added line importing from pip: "+    from pip._internal.x import y".
_IMPORT = re.compile(rf"\+\s*from ({re.escape(PIP_PACKAGE)}\.[\w.]+) import\b")

_PLUGIN_REFERENCE = re.compile(rf"(?<![\w.-]){PLUGIN_PACKAGE}\.(?=[a-z_])")

# "(docs/servers.rst)": the project's documents, which pip does not have.
_DOCUMENT_REFERENCE = re.compile(r" \(docs/[\w.-]+\)")


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
    """A scratch git repository of pip's sources, where the patches are made."""

    def __init__(
        self, pip_source: Path, tree: Path, identity: Identity, news_name: str
    ) -> None:
        super().__init__(REPOSITORY / "src", tree, news_name)
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
        # The ruff installed for this Python (pip install ruff).
        self.ruff = [sys.executable, "-m", "ruff"]
        self.unused_substitutions = set(TEXT_SUBSTITUTIONS)
        self.git("init", "-q", "-b", "base")
        self.git("add", "-A")
        self.git("commit", "-q", "--no-verify", "-m", "pip as released")
        self.git("tag", "base")

    def git(self, *args: str) -> str:
        command = ["git", "-c", "core.autocrlf=false", *args]
        return run(command, self.pip_tree, env=self.env)

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
        self._check_added_lines(patch)
        self.git("commit", "-q", "--no-verify", "-m", patch.commit_message)

    def _ruff_check(self, paths: Sequence[str], *options: str) -> None:
        if paths:
            run([*self.ruff, "check", "--no-cache", *options, *paths], self.pip_tree)

    def _substitute(self, text: str) -> str:
        for old, new in TEXT_SUBSTITUTIONS.items():
            if old in text:
                text = text.replace(old, new)
                self.unused_substitutions.discard(old)
        # References in docstrings and comments (":mod:`fastdeps.cache`")
        # follow the modules into pip.
        text = _DOCUMENT_REFERENCE.sub("", text)
        return _PLUGIN_REFERENCE.sub(PIP_PACKAGE + ".", text)

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
        command = [*self.ruff, "format", "--no-cache", "--stdin-filename", filename]
        formatted = run([*command, "-"], self.pip_tree, input=text)
        return {
            line[2:]
            for line in difflib.ndiff(text.splitlines(), formatted.splitlines())
            if line.startswith("- ")
        }

    def _check_added_lines(self, patch: Patch) -> None:
        """The lines a patch adds must not name the plugin, nor import a pip
        module that pip does not have and no earlier step of the series adds
        (nothing else would notice until pip runs)."""
        diff = self.git("diff", "--cached", "-U0").splitlines()
        added = [line for line in diff if line[:1] == "+" and line[:3] != "+++"]
        # Case matters: FastDepsSettings is a fine name in pip.
        leaks = [line for line in added if PLUGIN_PACKAGE in line]
        if leaks:
            raise ExportError(
                f"{patch.subject!r} would bring plugin names into pip; add a "
                "substitution in tools/upstream/series.py:\n" + "\n".join(leaks)
            )
        for module in (match[1] for line in added if (match := _IMPORT.match(line))):
            base = self.pip_tree / "src" / module.replace(".", "/")
            if not (base.with_suffix(".py").is_file() or base.is_dir()):
                raise ExportError(
                    f"{patch.subject!r} imports {module}, which pip does not have "
                    "and no earlier step of the series adds"
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


#: The test files the series' changes reach; pip's reviewers would run all.
DEFAULT_TEST_FILES = (
    "tests/unit",
    "tests/functional/test_fast_deps.py",
    "tests/functional/test_download.py",
    "tests/functional/test_install.py",
    "tests/functional/test_install_reqs.py",
    "tests/functional/test_install_upgrade.py",
    "tests/functional/test_install_index.py",
    "tests/functional/test_install_config.py",
    "tests/functional/test_new_resolver.py",
    "tests/functional/test_new_resolver_hashes.py",
    "tests/functional/test_lock.py",
    "tests/functional/test_cache.py",
    "tests/functional/test_wheel.py",
)


def new_venv(venv: Path, *options: str) -> Path:
    """A new venv at ``venv``, replacing the one there; its python."""
    if venv.exists():
        shutil.rmtree(venv)  # not ignore_errors: venv would reuse what is left
    run([sys.executable, "-m", "venv", *options, str(venv)])
    return venv / ("Scripts" if sys.platform == "win32" else "bin") / "python"


def patched_copy(
    pip_source: Path, work: Path, identity: Identity, news_name: str
) -> tuple[list[Path], Path]:
    """The series made against ``pip_source`` and applied to a fresh copy of it.
    git must not look above the copy: in this checkout's .nox/, it would skip
    files."""
    patches = export(pip_source, work / "patches", identity, news_name)
    tree = work / "pip"
    shutil.rmtree(tree, ignore_errors=True)
    ignore = shutil.ignore_patterns(".git", ".nox", "__pycache__")
    shutil.copytree(pip_source, tree, ignore=ignore)
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(tree.resolve().parent)}
    for patch in patches:
        run(["git", "apply", str(patch)], cwd=tree, env=env)
        logger.info("applied %s", patch.name)
    return patches, tree


def changed_files(patches: Sequence[Path]) -> list[str]:
    """The files under ``src/pip/`` that the series adds or changes, sorted."""
    files = {
        line.removeprefix("+++ b/")
        for patch in patches
        for line in patch.read_text(encoding="utf-8").splitlines()
        if line.startswith("+++ b/src/pip/")
    }
    return sorted(files)


def install_patched_pip(tree: Path, venv: Path) -> Path:
    """A new venv with the pip built from ``tree`` and no plugin; its python."""
    python = new_venv(venv, "--without-pip")
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    run([*pip, "install", "-q", "--no-deps", str(tree)])
    probe = (
        "import importlib.util as u, pip; "
        "print(u.find_spec('fastdeps'), pip.__version__, sep='\\n')"
    )
    found, version = run([str(python), "-c", probe]).splitlines()
    if found != "None" or version != PIP_VERSION:
        raise ExportError(f"{venv}: fastdeps importable ({found}) or pip {version}")
    return python


def prepare(
    cache: Path, work: Path, identity: Identity, news_name: str
) -> tuple[list[Path], Path]:
    """The series applied to pip's sdist (kept in ``cache``) and installed."""
    sdist = cache / f"pip-{PIP_VERSION}.tar.gz"
    if not sdist.exists():
        run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary"]
            + [":all:", "--dest", str(cache), f"pip=={PIP_VERSION}"]
        )
    pristine = work / "pristine"
    if pristine.exists():
        shutil.rmtree(pristine)
    shutil.unpack_archive(sdist, pristine, filter="data")
    (top,) = pristine.iterdir()
    patches, patched = patched_copy(top, work, identity, news_name)
    # mypy with pip's own configuration, as pip's CI runs it.
    modules = [path for path in changed_files(patches) if path.endswith(".py")]
    run([sys.executable, "-m", "mypy", *modules], cwd=patched)
    logger.info("mypy, with pip's configuration: no issues")
    return patches, install_patched_pip(patched, work / "venv")


def run_tests(
    python: Path, tree: Path, files: Sequence[str], fast_deps: bool
) -> dict[str, str]:
    """pytest over ``files`` (network tests deselected); each test's outcome."""
    report = tree.parent / f"junit-{'fast-deps' if fast_deps else 'stock'}.xml"
    # This machine's pip configuration must not reach the pips under test.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    if fast_deps:
        env["PIP_USE_FEATURE"] = "fast-deps"
    command = [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "-q"]
    # xunit1 reports name each test's file.
    command += ["-m", "not network", "-o", "junit_family=xunit1"]
    command += [f"--junitxml={report}", *files]
    logger.info("running %s%s", " ".join(files), " with fast-deps" if fast_deps else "")
    # 1 means some tests failed: their outcomes are the result. Anything else
    # (interrupted, a usage error, nothing collected) leaves none to compare.
    run(command, tree, ok=(0, 1), env=env)
    return outcomes_of(report)


def outcomes_of(report: Path) -> dict[str, str]:
    """Each test case of a JUnit XML report: passed, failed, error or skipped."""
    outcomes: dict[str, str] = {}
    tags = {"failure": "failed", "error": "error", "skipped": "skipped"}
    for case in ElementTree.parse(report).iter("testcase"):
        found = [tags[child.tag] for child in case if child.tag in tags]
        test = f"{case.get('file', '?')}::{case.get('name')}"
        outcomes[test] = found[-1] if found else "passed"
    return outcomes


def report(stock: dict[str, str], fast_deps: dict[str, str]) -> str:
    """Per file: outcome counts in both runs; then the tests only fast-deps fails."""
    files = sorted({test.split("::")[0] for test in stock | fast_deps})
    lines = ["file | without fast-deps | with fast-deps", "---|---|---"]
    lines += [
        f"{file} | {_counts(stock, file)} | {_counts(fast_deps, file)}"
        for file in files
    ]
    regressions = sorted(
        test
        for test, outcome in fast_deps.items()
        if outcome in ("failed", "error") and stock.get(test) == "passed"
    )
    lines += ["", f"failing only with fast-deps: {len(regressions)}"]
    lines.extend(f"  {test}" for test in regressions)
    return "\n".join(lines)


def _counts(outcomes: dict[str, str], file: str) -> str:
    counter = Counter(o for t, o in outcomes.items() if t.split("::")[0] == file)
    order = ("passed", "failed", "error", "skipped")
    return ", ".join(f"{counter[key]} {key}" for key in order if counter[key])


def check(
    pip_repo: Path, work: Path, identity: Identity, files: Sequence[str], news_name: str
) -> str:
    """The report of pip's tests run both ways on a patched copy of ``pip_repo``."""
    _, tree = patched_copy(pip_repo, work, identity, news_name)
    # The unit tests import the editable install; pip's harness builds the pip
    # that the functional tests run from the tree.
    python = new_venv(work / "venv")
    pip = [str(python), "-m", "pip"]
    run([*pip, "install", "-q", "--upgrade", "pip"])
    run([*pip, "install", "-q", "--group", "test", "-e", "."], tree)
    wheels = str(tree / "tests" / "data" / "common_wheels")
    run([*pip, "wheel", "-q", "-w", wheels, "--group", "test-common-wheels"], tree)
    stock = run_tests(python, tree, files, fast_deps=False)
    return report(stock, run_tests(python, tree, files, fast_deps=True))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.upstream",
        description="Turn pip-fastdeps into a patch series against pip's source.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    export_parser = commands.add_parser(
        "export", help=f"write the series (made against pip {PIP_VERSION})"
    )
    source_help = f"an unpacked pip {PIP_VERSION} sdist (the directory with src/pip)"
    _path(export_parser, "--pip-source", source_help)
    _path(export_parser, "--out", "where the .patch files go")
    prepare_parser = commands.add_parser(
        "prepare",
        help="download pip's sdist, export and apply the series, install the "
        "patched pip into a new venv; print that venv's python",
    )
    _path(prepare_parser, "--cache", "where the sdist is kept")
    suite_parser = commands.add_parser(
        "suite",
        help="apply the series to a checkout of pip's repository and run pip's "
        "own tests, with and without fast-deps; print the outcomes per file",
    )
    _path(suite_parser, "--pip-repo", "a checkout of pypa/pip")
    suite_parser.add_argument(
        "tests",
        nargs="*",
        default=DEFAULT_TEST_FILES,
        help="test files or directories (default: those the series reaches)",
    )
    for sub in (prepare_parser, suite_parser):
        _path(sub, "--work", "scratch directory (replaced)")
    for sub in (export_parser, prepare_parser, suite_parser):
        sub.add_argument(
            "--author",
            metavar="'NAME <EMAIL>'",
            help="the patches' author (default: this checkout's last commit's)",
        )
        sub.add_argument(
            "--news-name",
            default="{issue}",
            metavar="PATTERN",
            help="news fragment names, from {issue} (the pip issue a patch "
            "addresses) and {slug}; default: pip's own naming, {issue}",
        )
    return parser


def _path(parser: argparse.ArgumentParser, flag: str, text: str) -> None:
    parser.add_argument(flag, type=Path, required=True, help=text)


def main(argv: list[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        identity, news_name = identity_of(options.author), options.news_name
        if options.command == "export":
            patches = export(options.pip_source, options.out, identity, news_name)
            print(*patches, sep="\n")  # as git format-patch prints them
        elif options.command == "suite":
            work, tests = options.work, options.tests
            print(check(options.pip_repo, work, identity, tests, news_name))
        else:
            patches, python = prepare(options.cache, options.work, identity, news_name)
            print(*patches, python, sep="\n")
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0

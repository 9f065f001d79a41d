"""The export of the plugin as patches to pip (tools/upstream), offline.

Each step runs on a small synthetic plugin module and a small synthetic pip
module; ``nox -s upstream`` runs the real series against pip's sdist.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from tools.upstream.export import (
    _DOCUMENT_REFERENCE,
    _PLUGIN_REFERENCE,
    changed_files,
    identity_of,
    outcomes_of,
    report,
    run_tests,
)
from tools.upstream.series import PIP_VERSION, SERIES
from tools.upstream.steps import (
    PIP_TESTS,
    Context,
    Edit,
    ExportError,
    MergeModule,
    Module,
    NewModule,
    NewsFragment,
    RemoveDefinition,
    ReplaceTest,
    path_of,
    pip_module_for,
    rewrite_import_statements,
)

from fastdeps.pip_versions import NEWEST_PIP

REPOSITORY = Path(__file__).resolve().parents[2]


def module(text: str, name: str = "fastdeps.example") -> Module:
    return Module(name, textwrap.dedent(text).lstrip("\n"))


def make_context(
    tmp_path: Path, plugin: dict[str, str], pip: dict[str, str]
) -> Context:
    """Plugin modules and pip modules (dotted name -> source) on disk."""
    plugin_src = tmp_path / "plugin"
    pip_tree = tmp_path / "pip"
    for name, text in plugin.items():
        target = plugin_src / (name.replace(".", "/") + ".py")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    for name, text in pip.items():
        target = pip_tree / path_of(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return Context(
        plugin_src=plugin_src,
        pip_tree=pip_tree,
    )


def pip_text(context: Context, name: str) -> str:
    return context.read(path_of(name))


# -- module names and imports ------------------------------------------------------


def test_plugin_modules_mirror_pips_tree() -> None:
    assert (
        pip_module_for("fastdeps.network.lazy_wheel")
        == "pip._internal.network.lazy_wheel"
    )
    assert pip_module_for("fastdeps.seams") == "pip._internal.utils.seams"
    assert pip_module_for("pip._vendor.rich") == "pip._vendor.rich"
    assert path_of("pip._internal.utils.parallel") == (
        "src/pip/_internal/utils/parallel.py"
    )


def test_plugin_imports_point_into_pip_and_keep_their_layout() -> None:
    source = module(
        """
        from pip._vendor.packaging.utils import canonicalize_name

        from fastdeps.network.lazy_wheel import (
            HTTPRangeRequestUnsupported,
            dist_from_wheel_url,
        )


        def f() -> None:
            from fastdeps.utils.parallel import map_multithread
        """
    )

    rewritten = rewrite_import_statements(source)

    assert rewritten == source.text.replace(
        "from fastdeps.network.lazy_wheel import (",
        "from pip._internal.network.lazy_wheel import (",
    ).replace(
        "from fastdeps.utils.parallel import",
        "from pip._internal.utils.parallel import",
    )


def test_importing_the_plugin_package_itself_is_refused() -> None:
    with pytest.raises(ExportError, match="no equivalent in pip"):
        module("import fastdeps\n").import_lines()


# -- text ----------------------------------------------------------------------------


# -- steps ---------------------------------------------------------------------------

PLUGIN = '''
    """The plugin's binding."""

    from __future__ import annotations

    import logging
    import os
    from typing import Any, Callable

    logger = logging.getLogger(__name__)

    _SOURCE = "range requests"


    def _fetch(self: Any, link: Any) -> Any:
        from fastdeps.operations.prep import fetch_lazily

        if self._fastdeps is None:
            return None
        return _annotated(self, fetch_lazily(link, os.sep))


    def _annotated(self: Any, dist: Any) -> Any:
        """Record where ``dist`` came from."""
        self.sources[dist] = _SOURCE
        return dist


    def _save(self: Any, req: Any) -> None:
        type(self).save(self, req)


    _METHODS: dict[str, Callable[..., Any]] = {"fetch": _fetch, "save": _save}
'''

PIP_PREPARE = '''
    """pip's preparer."""

    from __future__ import annotations

    import logging

    from pip._internal.models.link import Link

    logger = logging.getLogger(__name__)


    def fetch_lazily(link: Link, separator: str) -> str:
        return link.url + separator


    class Preparer:
        def fetch(
            self,
            link: Link,
        ) -> str | None:
            """pip's docstring."""
            return None

        def save(self, req: object) -> None:
            pass
'''

HEADER = '''
class FastPreparer(Preparer):
    """The fast one."""
'''


def test_a_merged_module_brings_its_definitions_and_imports_not_its_logger(
    tmp_path: Path,
) -> None:
    context = make_context(
        tmp_path,
        {
            "fastdeps.operations.prep": '''
                """Plugin docstring, kept out of pip's module."""

                from __future__ import annotations

                import logging
                import threading

                __all__ = ["DEFAULT_JOBS"]

                logger = logging.getLogger(__name__)

                # Why eight.
                DEFAULT_JOBS = 8


                def lock() -> threading.Lock:
                    return threading.Lock()
            '''
        },
        {"pip._internal.operations.prep": PIP_PREPARE},
    )

    MergeModule("fastdeps.operations.prep").apply(context)

    text = pip_text(context, "pip._internal.operations.prep")
    assert "Plugin docstring" not in text
    assert "__all__" not in text
    assert text.count("logger = ") == 1
    assert "import threading\n" in text
    assert text.index("# Why eight.\nDEFAULT_JOBS = 8") < text.index("def lock()")
    assert text.index("class Preparer:") < text.index("# Why eight.")


def test_a_compatibility_import_from_pips_own_module_stays_out(
    tmp_path: Path,
) -> None:
    """The series targets the newest pip, which defines what older pips lack."""
    context = make_context(
        tmp_path,
        {
            "fastdeps.operations.prep": """
                try:
                    from pip._internal.operations.prep import fetch_lazily
                except ImportError:  # an older pip

                    def fetch_lazily(link: str, separator: str) -> str:
                        return link


                def fetch_twice(link: str) -> str:
                    return fetch_lazily(fetch_lazily(link, ""), "")
            """
        },
        {"pip._internal.operations.prep": PIP_PREPARE},
    )

    MergeModule("fastdeps.operations.prep").apply(context)

    text = pip_text(context, "pip._internal.operations.prep")
    assert "ImportError" not in text
    assert text.count("def fetch_lazily(") == 1
    assert "def fetch_twice(link: str) -> str:" in text


def test_a_merged_definition_may_not_replace_one_of_pips(tmp_path: Path) -> None:
    context = make_context(
        tmp_path,
        {"fastdeps.operations.prep": "def fetch_lazily() -> None:\n    pass\n"},
        {"pip._internal.operations.prep": PIP_PREPARE},
    )

    with pytest.raises(ExportError, match=r"already defines \['fetch_lazily'\]"):
        MergeModule("fastdeps.operations.prep").apply(context)


def test_an_edit_whose_anchor_moved_names_itself(tmp_path: Path) -> None:
    context = make_context(tmp_path, {}, {"pip._internal.operations.prep": PIP_PREPARE})
    path = path_of("pip._internal.operations.prep")

    with pytest.raises(ExportError, match="occurs 0 times") as raised:
        Edit(path, "-return link.url\n").apply(context)
    assert "tools/upstream/series.py" in str(raised.value)
    with pytest.raises(ExportError, match="not a hunk line"):
        Edit(path, "return link.url\n").apply(context)

    Edit(
        path,
        '         """pip\'s docstring."""\n'
        "-        return None\n+        return fast()\n",
        imports=("pip._internal.fast", "fast"),
    ).apply(context)
    text = context.read(path)
    assert 'docstring."""\n        return fast()\n' in text
    assert "from pip._internal.fast import fast\n" in text


def test_a_definition_of_pips_is_removed_by_name_with_its_spacing(
    tmp_path: Path,
) -> None:
    context = make_context(tmp_path, {}, {"pip._internal.operations.prep": PIP_PREPARE})
    path = path_of("pip._internal.operations.prep")

    RemoveDefinition(path, "Preparer.fetch").apply(context)

    assert context.read(path).endswith(
        "class Preparer:\n    def save(self, req: object) -> None:\n        pass\n"
    )
    with pytest.raises(ExportError, match="has no Preparer.fetch; update"):
        RemoveDefinition(path, "Preparer.fetch").apply(context)


def test_a_test_of_pips_is_replaced_whole_unless_pip_changed_it(
    tmp_path: Path,
) -> None:
    name = "test_refresh_package_per_package"
    pip_test = f"import os\n\n\ndef {name}() -> None:\n    pass\n\n\nX = 1\n"
    context = make_context(tmp_path, {}, {"tests.functional.test_install": pip_test})
    path = "tests/functional/test_install.py"

    with pytest.raises(
        ExportError, match=f"pip's {name} changed \\(now 2dc569315d1c\\)"
    ):
        ReplaceTest(path, name, "0ffa249a78de").apply(context)
    ReplaceTest(path, name, "2dc5").apply(context)

    text = context.read(path)
    ours = (PIP_TESTS / path).read_text(encoding="utf-8")
    assert text.startswith(f"import os\n\n\ndef {name}(\n")
    assert text.endswith("\n\n\nX = 1\n")
    assert text[len("import os\n\n\n") : -len("\n\nX = 1\n")] in ours


def test_a_new_module_must_not_exist_in_pip_and_a_replacement_must(
    tmp_path: Path,
) -> None:
    context = make_context(
        tmp_path,
        {"fastdeps.network.lazy_wheel": "from fastdeps.utils.x import y\n"},
        {"pip._internal.network.lazy_wheel": "OLD = 1\n"},
    )

    with pytest.raises(ExportError, match="has src/pip/_internal/network/lazy_wheel"):
        NewModule("fastdeps.network.lazy_wheel").apply(context)
    NewModule("fastdeps.network.lazy_wheel", replaces=True).apply(context)

    assert pip_text(context, "pip._internal.network.lazy_wheel") == (
        "from pip._internal.utils.x import y\n"
    )


def test_news_fragments_are_named_as_pip_names_them(tmp_path: Path) -> None:
    context = make_context(tmp_path, {}, {})
    fragment = NewsFragment(8670, "fast-deps-prefetch", "feature", "word " * 30)

    fragment.apply(context)

    assert fragment.path() == "news/8670.feature.rst"
    assert fragment.path("{slug}") == "news/fast-deps-prefetch.feature.rst"
    lines = context.read("news/8670.feature.rst").splitlines()
    assert lines and all(len(line) <= 79 for line in lines)
    assert " ".join(lines) == ("word " * 30).strip()
    with pytest.raises(ExportError, match="already has news/8670.feature.rst"):
        fragment.apply(context)


def test_the_series_news_fragments_have_distinct_names_and_pips_types() -> None:
    paths = [patch.news.path() for patch in SERIES]

    assert len(set(paths)) == len(paths)
    # pip's towncrier types (its pyproject.toml).
    pip_types = {"feature", "bugfix", "removal", "doc", "vendor", "process", "trivial"}
    assert {patch.news.kind for patch in SERIES} <= pip_types


def test_the_author_is_given_as_git_writes_it() -> None:
    identity = identity_of("Ada Lovelace <ada@example.org>")

    assert identity["GIT_AUTHOR_NAME"] == identity["GIT_COMMITTER_NAME"]
    assert identity["GIT_AUTHOR_NAME"] == "Ada Lovelace"
    assert identity["GIT_AUTHOR_EMAIL"] == "ada@example.org"
    assert identity["GIT_AUTHOR_DATE"] == identity_of()["GIT_COMMITTER_DATE"]
    with pytest.raises(ExportError, match="--author must be 'Name <email>'"):
        identity_of("ada@example.org")
    for sloppy in ("Ada <ada@example.org>, Bob <bob@example.org>", "Ada <a @b>"):
        with pytest.raises(ExportError, match="--author must be"):
            identity_of(sloppy)


def test_tests_for_pips_suite_go_where_pip_has_a_test_suite(tmp_path: Path) -> None:
    name = "test_refresh_package_per_package"
    sdist = make_context(tmp_path / "sdist", {}, {})
    checkout = make_context(
        tmp_path / "checkout",
        {},
        {"tests.functional.test_install": f"def {name}() -> None:\n    pass\n"},
    )

    for context in (sdist, checkout):
        ReplaceTest("tests/functional/test_install.py", name, "2dc5").apply(context)
        NewModule("tests.unit.test_utils_parallel").apply(context)

    assert not sdist.touched
    assert checkout.touched == {
        "tests/functional/test_install.py",
        "tests/unit/test_utils_parallel.py",
    }
    assert checkout.read("tests/unit/test_utils_parallel.py") == (
        PIP_TESTS / "tests/unit/test_utils_parallel.py"
    ).read_text(encoding="utf-8")


# -- the series itself ---------------------------------------------------------------


def test_every_plugin_name_the_series_uses_exists() -> None:
    """The offline half of ``nox -s upstream``: a renamed plugin function or
    module is caught by the unit tests, not only by the end-to-end run."""
    context = Context(REPOSITORY / "src", REPOSITORY / "no-pip")

    for patch in SERIES:
        for step in patch.steps:
            if isinstance(step, (NewModule, MergeModule)):
                context.plugin_module(step.plugin_module)  # tests.*: PIP_TESTS


def test_references_to_plugin_modules_follow_them_into_pip() -> None:
    text = "see :mod:`fastdeps.cache`; pip-fastdeps stays; fastdeps-metadata too\n"

    assert _PLUGIN_REFERENCE.sub("pip._internal.", text) == (
        "see :mod:`pip._internal.cache`; pip-fastdeps stays; fastdeps-metadata too\n"
    )


def test_references_to_the_projects_documents_stay_out_of_pip() -> None:
    text = "how they answer (docs/servers.rst).\nfrom PyPI (docs/lazy-wheel.rst), so"

    assert _DOCUMENT_REFERENCE.sub("", text) == "how they answer.\nfrom PyPI, so"


def test_the_install_and_type_checks_cover_the_pip_files_the_series_changes(
    tmp_path: Path,
) -> None:
    patch = tmp_path / "0001-x.patch"
    patch.write_text(
        "+++ b/news/x.feature.rst\n"
        "+++ b/src/pip/_internal/cache.py\n"
        "+++ b/src/pip/_internal/cache.py\n"
        "+++ b/src/pip/_internal/utils/parallel.py\n",
        encoding="utf-8",
    )

    assert changed_files([patch]) == [
        "src/pip/_internal/cache.py",
        "src/pip/_internal/utils/parallel.py",
    ]


def test_the_series_targets_the_newest_supported_pip_and_nox_fetches_it() -> None:
    noxfile = (REPOSITORY / "noxfile.py").read_text(encoding="utf-8")

    assert ".".join(map(str, NEWEST_PIP)) == PIP_VERSION
    assert f'    pip_version = "{PIP_VERSION}"' in noxfile
    assert f'"{PIP_VERSION}"]' in noxfile  # the newest pip of `nox -s functional`


def test_the_suite_report_names_what_fails_only_with_fast_deps(
    tmp_path: Path,
) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase file="tests/a.py" name="test_one"/>'
        '<testcase file="tests/a.py" name="test_two"><failure/></testcase>'
        '<testcase file="tests/b.py" name="test_three"><skipped/></testcase>'
        "</testsuite></testsuites>",
        encoding="utf-8",
    )
    fast_deps = outcomes_of(junit)
    stock = {**fast_deps, "tests/a.py::test_two": "passed"}

    assert fast_deps == {
        "tests/a.py::test_one": "passed",
        "tests/a.py::test_two": "failed",
        "tests/b.py::test_three": "skipped",
    }
    assert report(stock, fast_deps).splitlines() == [
        "file | without fast-deps | with fast-deps",
        "---|---|---",
        "tests/a.py | 2 passed | 1 passed, 1 failed",
        "tests/b.py | 1 skipped | 1 skipped",
        "",
        "failing only with fast-deps: 1",
        "  tests/a.py::test_two",
    ]


def test_a_pytest_run_that_tests_nothing_is_an_error_not_an_empty_report(
    tmp_path: Path,
) -> None:
    tree = tmp_path / "pip"
    tree.mkdir()

    with pytest.raises(ExportError, match="no_such_tests.py exited with 5 in "):
        run_tests(Path(sys.executable), tree, ["no_such_tests.py"], fast_deps=False)

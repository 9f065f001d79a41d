"""The patch series, as data: which plugin module goes where in pip, and the
hand-written edits of pip's own code where the plugin binds in instead."""

from __future__ import annotations

from pathlib import Path

from tools.upstream.steps import (
    Edit,
    MergeModule,
    NewModule,
    NewsFragment,
    RemoveDefinition,
    ReplaceTest,
    Step,
)

#: The pip release the series is made against (the newest the plugin supports).
PIP_VERSION = "26.3"

#: Wording that only makes sense in the plugin, and pip's wording for it.
#: Applied to every file a patch touches; one that no longer matches is
#: reported, and any "fastdeps" left in an added line stops the export.
TEXT_SUBSTITUTIONS: dict[str, str] = {
    "With --use-feature=fast-deps (pip-fastdeps): ": "With --use-feature=fast-deps: ",
    # The line that says the feature is on names the feature, not the plugin.
    "    from fastdeps import __version__\n\n"
    '    return f"pip-fastdeps {__version__}"\n': '    return "fast-deps"\n',
    # The metadata cache: its directory and entries are pip's.
    'CACHE_SUBDIR = "fastdeps-metadata"': 'CACHE_SUBDIR = "metadata"',
    '_ENTRY_MAGIC = b"fastdeps-metadata 1"': '_ENTRY_MAGIC = b"pip-metadata 1"',
    "``<pip cache dir>/fastdeps-metadata``": "``<pip cache dir>/metadata``",
    # The prefetcher.
    '"pip-fastdeps prefetch: %s"': '"fast-deps prefetch: %s"',
    # Last: the plugin compares itself with "stock pip"; in pip, that is pip.
    "stock pip": "pip",
}

PREFETCH = "pip._internal.resolution.prefetch"
PREPARE_PATH = "src/pip/_internal/operations/prepare.py"
TEST_INSTALL = "tests/functional/test_install.py"


#: The commit messages, one text file per patch: subject, blank line, body.
MESSAGES = Path(__file__).with_name("messages")


class Patch:
    """One patch: its news entry, whose slug names its :data:`MESSAGES` file."""

    def __init__(
        self, issue: int, slug: str, kind: str, news: str, *steps: Step
    ) -> None:
        self.news = NewsFragment(issue, slug, kind, news)
        self.steps = steps
        self.commit_message = (MESSAGES / f"{slug}.txt").read_text(encoding="utf-8")
        self.subject = self.commit_message.partition("\n")[0]


SERIES: tuple[Patch, ...] = (
    Patch(
        11447,
        "fast-deps-lazy-wheel",
        "feature",
        "``--use-feature=fast-deps`` reads a wheel's metadata with one HTTP range "
        "request in the common case and at most three, with no HEAD request, and "
        "falls back to a normal download for servers that do not serve ranges "
        "correctly.",
        NewModule("fastdeps.seams"),
        NewModule("fastdeps.network.limits"),
        NewModule("fastdeps.network.speculative"),
        MergeModule("fastdeps.network.utils"),
        NewModule("fastdeps.network.ranges"),
        MergeModule("fastdeps.utils.wheel"),
        NewModule("fastdeps.network.lazy_wheel", replaces=True),
        MergeModule("tests.lib.server"),
        MergeModule("tests.unit.test_network_lazy_wheel"),
    ),
    Patch(
        825,
        "fast-deps-parallel-map",
        "trivial",
        "Add ``pip._internal.utils.parallel``, a lazy and bounded parallel map.",
        NewModule("fastdeps.utils.parallel"),
        NewModule("tests.unit.test_utils_parallel"),
    ),
    Patch(
        12921,
        "fast-deps-metadata-cache",
        "feature",
        "With ``--use-feature=fast-deps``, keep the metadata read from remote "
        "wheels in pip's cache directory, so that resolving the same "
        "requirements again sends no range requests. ``pip cache purge`` "
        "clears it.",
        MergeModule("fastdeps.utils.filesystem"),
        MergeModule("fastdeps.cache"),
        NewModule("fastdeps.operations.whole_files"),
        NewModule("fastdeps.operations.metadata"),
        Edit(
            "src/pip/_internal/commands/cache.py",
            """\
-        return filesystem.find_files(old_http_dir, "*") + filesystem.find_files(
-            new_http_dir, "*"
+        # Metadata of wheels read with fast-deps, kept because HTTP answers
+        # were: they go with the HTTP cache. Imported here, as it brings in
+        # network code, which the other subcommands and --help do not need.
+        from pip._internal.cache import CACHE_SUBDIR, MetadataCache
+
+        metadata_cache = MetadataCache(self._cache_dir(options, CACHE_SUBDIR))
+        return (
+            filesystem.find_files(old_http_dir, "*")
+            + filesystem.find_files(new_http_dir, "*")
+            + [str(path) for path in metadata_cache.entries()]
         )
""",
        ),
    ),
    Patch(
        825,
        "fast-deps-parallel-downloads",
        "feature",
        "With ``--use-feature=fast-deps``, download the files chosen by the "
        "resolver in parallel (``--fast-deps-jobs``, default 8), check the "
        "metadata used during resolution against each downloaded wheel, and keep "
        "metadata-only resolution in hash-checking mode when the files are "
        "downloaded and verified afterwards.",
        MergeModule("fastdeps.cli.progress_bars"),
        MergeModule("fastdeps.network.download"),
        NewModule("fastdeps.operations.metadata_check"),
        # After RequirementPreparer, which the class extends.
        MergeModule("fastdeps.operations.prepare"),
        # The fast-deps preparer replaces pip's own lazy-wheel path,
        # which only ran under fast-deps.
        Edit(
            PREPARE_PATH,
            """\
-        # Try PEP 658 metadata first, then fall back to lazy wheel if unavailable.
-        return self._fetch_metadata_using_link_data_attr(
-            req
-        ) or self._fetch_metadata_using_lazy_wheel(req.link)
+        return self._fetch_metadata_using_link_data_attr(req)
""",
        ),
        RemoveDefinition(
            PREPARE_PATH, "RequirementPreparer._fetch_metadata_using_lazy_wheel"
        ),
        MergeModule("fastdeps.cli.cmdoptions"),
        MergeModule("fastdeps.cli.req_command"),
        MergeModule("tests.unit.test_operations_prepare"),
        # pip's suite can be run with PIP_USE_FEATURE=fast-deps; the
        # legacy resolver then warns that the feature has no effect.
        ReplaceTest(
            TEST_INSTALL, "test_basic_install_from_local_directory", "a4c99c8b008f"
        ),
        Edit(
            "src/pip/_internal/cli/req_command.py",
            """\
         self.cmd_opts.add_option(cmdoptions.no_clean())
+        self.cmd_opts.add_option(cmdoptions.fast_deps_jobs())
@@
             lazy_wheel = "fast-deps" in options.features_enabled
-            if lazy_wheel:
-                logger.warning(
-                    "pip is using lazily downloaded wheels using HTTP "
-                    "range requests to obtain dependency information. "
-                    "This experimental feature is enabled through "
-                    "--use-feature=fast-deps and it is not ready for "
-                    "production."
-                )
@@
-        return RequirementPreparer(
+        preparer_class: Callable[..., RequirementPreparer] = RequirementPreparer
+        if lazy_wheel:
+            preparer_class = partial(
+                FastDepsRequirementPreparer,
+                fast_deps=fast_deps_settings(cls, options),
+            )
+        return preparer_class(
             build_dir=temp_build_dir_path,
""",
            imports=("pip._internal.operations.prepare", "FastDepsRequirementPreparer"),
        ),
    ),
    Patch(
        8670,
        "fast-deps-prefetch",
        "feature",
        "With ``--use-feature=fast-deps``, fetch project pages and wheel metadata "
        "ahead of the resolver, in parallel, without changing its results.",
        NewModule("fastdeps.resolution.prefetch"),
        MergeModule("tests.functional.test_fast_deps"),
        # The test's mock server answered in the order of the requests;
        # the prefetcher asks for both project pages before either file.
        ReplaceTest(TEST_INSTALL, "test_refresh_package_per_package", "0ffa249a78de"),
        Edit(
            "src/pip/_internal/resolution/resolvelib/resolver.py",
            """\
     def resolve(
         self, root_reqs: list[InstallRequirement], check_supported_wheels: bool
     ) -> RequirementSet:
+        with prefetching(self.factory):
+            return self._resolve(root_reqs, check_supported_wheels)
+
+    def _resolve(
+        self, root_reqs: list[InstallRequirement], check_supported_wheels: bool
+    ) -> RequirementSet:
         collected = self.factory.collect_root_requirements(root_reqs)
""",
            imports=(PREFETCH, "prefetching"),
        ),
        Edit(
            "src/pip/_internal/resolution/resolvelib/factory.py",
            """\
         collected.requirements.sort(key=lambda r: r.name != r.project_name)
+        prefetcher = prefetcher_of(self)
+        if prefetcher is not None:
+            prefetch_requirements(
+                prefetcher, collected.requirements, collected.constraints
+            )
         return collected
""",
            imports=(PREFETCH, "prefetch_requirements", "prefetcher_of"),
        ),
        Edit(
            "src/pip/_internal/resolution/resolvelib/provider.py",
            """\
+        prefetcher = prefetcher_of(self._factory)
+        if prefetcher is not None:
+            prefetch_dependencies(prefetcher, candidate)
         return (r for r in candidate.iter_dependencies(with_requires) if r is not None)
""",
            imports=(PREFETCH, "prefetch_dependencies", "prefetcher_of"),
        ),
    ),
)

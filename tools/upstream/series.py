"""The patch series: which plugin code goes where in pip, and why.

This is data. A change to the plugin's modules, or to the bodies of the
functions that plugin.py binds into pip, flows into the patches with no
change here; a new module is one :class:`~tools.upstream.steps.NewModule`
line, a new preparer method one entry in plugin.py's own method table. Only
the :class:`~tools.upstream.steps.Edit` entries (how pip's code chooses the
fast-deps path, where the plugin wraps pip instead) are hand-written, and
each one fails loudly, naming itself, when pip's text moves under it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.upstream.steps import (
    CopyDefinitions,
    Edit,
    MergeModule,
    MethodsIntoSubclass,
    NewModule,
    NewsFragment,
    OptionFromFactory,
    Step,
)

#: The pip release the series is made against (the newest the plugin supports).
PIP_VERSION = "26.3"

#: Plugin modules whose pip module is not the mirror path under pip._internal.
MODULE_RENAMES: dict[str, str] = {}

#: Identifiers renamed wherever exported code uses them.
IDENTIFIER_RENAMES = {"_fastdeps": "_fast_deps"}

#: Wording that only makes sense in the plugin, and pip's wording for it.
#: Applied to every file a patch touches; one that no longer matches is
#: reported, and any "fastdeps" left in an added line stops the export.
TEXT_SUBSTITUTIONS: tuple[tuple[str, str], ...] = (
    ('name="fastdeps-probe"', 'name="pip-parallel-probe"'),
    ('thread_name_prefix="fastdeps-parallel"', 'thread_name_prefix="pip-parallel"'),
    (
        "pip-fastdeps downloads the wheels that the resolver picked with\n"
        ":func:`map_multithread`, so the shape of these functions follows from "
        "that job:",
        "With ``--use-feature=fast-deps``, pip downloads the wheels that the resolver\n"
        "picked with :func:`map_multithread`, so the shape of these functions follows\n"
        "from that job:",
    ),
    (
        "and pip's error messages apply exactly as without this plugin.",
        "and pip's error messages apply exactly as without fast-deps.",
    ),
    (
        "Servers differ in how they answer range requests (see SERVERS.md in the\n"
        "project's design notes), and every answer is checked",
        "Servers differ in how they answer range requests, and every answer is\n"
        "checked",
    ),
    (
        '"""The options the bound methods need, read once from pip\'s options."""',
        '"""What the fast-deps preparer needs of pip\'s options, read once."""',
    ),
    (
        "    Stock pip turns it off there. We keep it on when the command goes on to\n"
        "    download every file it resolved (install, download, wheel), because then\n"
        "    nothing weaker than stock pip is guaranteed:",
        "    Without fast-deps, pip turns it off there. It stays on when the command\n"
        "    goes on to download every file it resolved (install, download, wheel),\n"
        "    because then nothing weaker than without fast-deps is guaranteed:",
    ),
    ("fails as it does in stock pip;", "fails as it does without fast-deps;"),
    (
        "metadata-only stays off, as in stock pip.",
        "metadata-only stays off, as without fast-deps.",
    ),
    (
        "path is a fallback and never an error, because stock pip would have",
        "path is a fallback and never an error, because pip would have",
    ),
    ("With --use-feature=fast-deps (pip-fastdeps): ", "With --use-feature=fast-deps: "),
)

PREPARE = "pip._internal.operations.prepare"
REQ_COMMAND = "src/pip/_internal/cli/req_command.py"

PREPARER_CLASS = '''
class FastDepsRequirementPreparer(RequirementPreparer):
    """The preparer of ``--use-feature=fast-deps``.

    During resolution a wheel is prepared from its metadata alone: the
    index's PEP 658 file, else a few HTTP range requests on the wheel (also
    in hash-checking mode, when the command downloads every file afterwards).
    After resolution the chosen files are downloaded in parallel, each one
    verified as usual before use, and the metadata the resolver was given is
    compared with the downloaded wheel's own METADATA.

    A class of its own, chosen only when the feature is enabled, so that pip
    without the feature runs exactly the code it ran before.
    """

    def __init__(self, *, fast_deps: FastDepsSettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fast_deps = fast_deps
        logger.info(
            "fast-deps is active: metadata from range requests, "
            "up to %d parallel downloads",
            fast_deps.jobs,
        )
'''


@dataclass
class Patch:
    """One patch of the series: a commit message, steps and a news entry."""

    subject: str
    body: str
    news: NewsFragment
    steps: tuple[Step, ...]


SERIES: tuple[Patch, ...] = (
    Patch(
        subject="fast-deps: read a wheel's METADATA in one to three range requests",
        body="""\
pip's lazy wheel sends a HEAD request, then reads the end of the file in
10 KiB steps until the ZIP parses, then more 10 KiB reads for METADATA
itself: about ten round trips per wheel, one wheel after another. At 50 ms
of latency that is slower than downloading most wheels whole, which is why
fast-deps has stayed experimental.

The new implementation asks for the last 128 KiB with one suffix-range GET
(RFC 9110 section 14). Its Content-Range gives the file size, so no HEAD
request is needed, and for nine wheels in ten (a survey of 183 wheels from
PyPI, 11 KB to 192 MB) the answer holds the end of central directory, the
whole central directory and METADATA. Otherwise one more GET fetches the
rest of the central directory and one more exactly METADATA's local header
and data. Interval bookkeeping guarantees that no byte is fetched twice.

Every answer is checked before it is used, and each known server behaviour
has a defined answer: a 200 instead of a 206, refused suffix ranges or HEAD
requests, a wrong Content-Range or Content-Length, compressed ranges, a
connection cut short (retried once), redirects. What a host has shown it
can or cannot do is remembered for the rest of the run, so that a server
that ignores ranges costs one wasted request, not one per wheel. Whenever
the ranges cannot be trusted, HTTPRangeRequestUnsupported is raised and the
preparer downloads the file the normal way, as before.

dist_from_wheel_url() keeps its signature and meaning, so the preparer is
unchanged by this commit. The news fragment is named after the change;
rename it to the pull request's number.
""",
        news=NewsFragment(
            "fast-deps-lazy-wheel",
            "feature",
            "``--use-feature=fast-deps`` reads a wheel's metadata with one HTTP range "
            "request in the common case and at most three, with no HEAD request, and "
            "falls back to a normal download for servers that do not serve ranges "
            "correctly.",
        ),
        steps=(NewModule("fastdeps.network.lazy_wheel", replaces=True),),
    ),
    Patch(
        subject="Add utils.parallel: a lazy, bounded map over a thread or process pool",
        body="""\
The next commit downloads the files the resolver picked in parallel. The
shape of this helper follows from that job: the input is pulled one chunk
at a time (memory stays flat and a generator runs only as fast as workers
free up), results come back in completion order (a 20 MB wheel must not
hold back the 20 kB ones), at most max_workers calls run at once, and when
the caller stops iterating or a call raises, nothing new starts and the
running calls are waited for, so that none outlives the iterator and
touches files the caller is about to clean up.

Where the platform cannot run the pools (WebAssembly builds without
threads, systems without a working sem_open), both functions fall back to
a plain lazy map() in the calling thread, with the same results.
""",
        news=NewsFragment(
            "fast-deps-parallel-map",
            "trivial",
            "Add ``pip._internal.utils.parallel``, a lazy and bounded parallel map.",
        ),
        steps=(NewModule("fastdeps.utils.parallel"),),
    ),
    Patch(
        subject="fast-deps: download the chosen files in parallel, verify metadata",
        body="""\
With --use-feature=fast-deps the resolver works from metadata alone, and
the files it picks are downloaded at the end, one after another. This
commit gives the feature a preparer of its own, FastDepsRequirementPreparer,
chosen in make_requirement_preparer() only when the feature is enabled, so
that pip without the feature runs exactly the code it ran before.

- The files are downloaded in parallel over pip's own session (so
  authentication, proxies, certificates, retries and the HTTP cache stay
  pip's), at most --fast-deps-jobs at a time (default 8: pip's session
  keeps 10 connections per host). Each file is written under a temporary
  name and renamed once complete; Ctrl-C stops every download at its next
  chunk and leaves no partial file. A file the parallel pass could not
  fetch is fetched again with pip's Downloader, so that its resume logic
  and error messages apply. One aggregate progress bar on a terminal, log
  lines otherwise.
- Every file then goes through _prepare_linked_requirement() as before,
  hashes included, and the metadata the resolver was given (from the PEP
  658 file or the lazy wheel) is compared with the wheel's own METADATA:
  Name, Version, Requires-Dist, Requires-Python and Provides-Extra. A
  server that serves different bytes for ranges than for the whole file
  must not steer the resolver.
- In hash-checking mode metadata-only resolution stays on when the command
  downloads every file afterwards (install, download, wheel): each file is
  still verified against its hashes before use, and hash-checking mode pins
  every requirement, so unverified metadata can make resolution fail but
  never pick another file. install --dry-run and lock never download the
  files, so there it stays off.
- Files copied into a download directory are copied atomically: pip trusts
  a file it finds there on the next run.
- The "not ready for production" warning becomes one INFO line that says
  the feature is active.
""",
        news=NewsFragment(
            "fast-deps-parallel-downloads",
            "feature",
            "With ``--use-feature=fast-deps``, download the files chosen by the "
            "resolver in parallel (``--fast-deps-jobs``, default 8), check the "
            "metadata used during resolution against each downloaded wheel, and keep "
            "metadata-only resolution in hash-checking mode when the files are "
            "downloaded and verified afterwards.",
        ),
        steps=(
            MergeModule("fastdeps.operations.prepare", before="RequirementPreparer"),
            MethodsIntoSubclass(
                "fastdeps.plugin",
                methods="_PREPARER_METHODS",
                pip_module=PREPARE,
                base="RequirementPreparer",
                header=PREPARER_CLASS,
                header_imports=(("typing", "Any"),),
            ),
            OptionFromFactory(
                "fastdeps.plugin",
                "_jobs_option",
                option_name="fast_deps_jobs",
                after="progress_bar",
            ),
            CopyDefinitions(
                "fastdeps.plugin",
                ("_settings_from",),
                "pip._internal.cli.req_command",
                before="RequirementCommand",
                renames={
                    "_settings_from": "_fast_deps_settings",
                    "_metadata_only_allowed": "_fast_deps_metadata_only_allowed",
                },
            ),
            Edit(
                REQ_COMMAND,
                old="""\
        self.cmd_opts.add_option(cmdoptions.no_clean())
""",
                new="""\
        self.cmd_opts.add_option(cmdoptions.no_clean())
        self.cmd_opts.add_option(cmdoptions.fast_deps_jobs())
""",
            ),
            Edit(
                REQ_COMMAND,
                old="""\
            lazy_wheel = "fast-deps" in options.features_enabled
            if lazy_wheel:
                logger.warning(
                    "pip is using lazily downloaded wheels using HTTP "
                    "range requests to obtain dependency information. "
                    "This experimental feature is enabled through "
                    "--use-feature=fast-deps and it is not ready for "
                    "production."
                )
""",
                new="""\
            lazy_wheel = "fast-deps" in options.features_enabled
""",
            ),
            Edit(
                REQ_COMMAND,
                old="""\
        return RequirementPreparer(
            build_dir=temp_build_dir_path,
""",
                new="""\
        preparer_class: Callable[..., RequirementPreparer] = RequirementPreparer
        if lazy_wheel:
            preparer_class = partial(
                FastDepsRequirementPreparer,
                fast_deps=_fast_deps_settings(cls, options),
            )
        return preparer_class(
            build_dir=temp_build_dir_path,
""",
                imports=((PREPARE, "FastDepsRequirementPreparer"),),
            ),
        ),
    ),
)

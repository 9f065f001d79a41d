"""The patch series: which plugin code goes where in pip, and why.

This is data. The plugin's modules are pip's code with plugin imports: a
change to them flows into the patches with no change here, and a new
module is one :class:`~tools.upstream.steps.NewModule` or
:class:`~tools.upstream.steps.MergeModule` line.

The :class:`~tools.upstream.steps.Edit` entries are hand-written: the calls
in pip's own code where the plugin binds in through fastdeps.plugin instead
(how pip chooses the fast-deps preparer, where the resolver hooks sit);
each fails loudly, naming itself, when pip's text moves under it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.upstream.steps import (
    Edit,
    MergeModule,
    NewModule,
    NewsFragment,
    Step,
)

#: The pip release the series is made against (the newest the plugin supports).
PIP_VERSION = "26.3"

#: Plugin modules whose pip module is not the mirror path under pip._internal.
MODULE_RENAMES: dict[str, str] = {"fastdeps.seams": "pip._internal.utils.seams"}


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
    # The project's documents, which pip does not have.
    (
        "METADATA; docs/lazy-wheel.rst has the survey that chose it.",
        "METADATA, in a survey of 183 wheels from PyPI.",
    ),
    (
        "METADATA alone is\ncheaper (docs/lazy-wheel.rst).",
        "METADATA alone is\ncheaper.",
    ),
    (
        "every answer; servers differ in how they answer them (see docs/servers.rst\n"
        "in the project's repository).",
        "every answer; servers differ in how they answer them.",
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
    ("With --use-feature=fast-deps (pip-fastdeps): ", "With --use-feature=fast-deps: "),
    # Why the plugin's option is declared as pip's: in pip, every option is.
    (
        "# A real pip option, so pip's configuration applies to it as to any\n"
        "# other: --fast-deps-jobs, PIP_FAST_DEPS_JOBS, fast-deps-jobs in pip.conf.\n",
        "",
    ),
    # The line that says the feature is on names the feature, not the plugin.
    (
        "    from fastdeps import __version__\n\n"
        '    return f"pip-fastdeps {__version__}"\n',
        '    return "fast-deps"\n',
    ),
    # The metadata cache: its directory and entries are pip's.
    ('CACHE_SUBDIR = "fastdeps-metadata"', 'CACHE_SUBDIR = "metadata"'),
    ('_ENTRY_MAGIC = b"fastdeps-metadata 1"', '_ENTRY_MAGIC = b"pip-metadata 1"'),
    ("``<pip cache dir>/fastdeps-metadata``", "``<pip cache dir>/metadata``"),
    (
        "# pip-fastdeps in another virtual environment",
        "# pip in another virtual environment",
    ),
    (
        '"""What the rest of pip-fastdeps needs of a metadata cache."""',
        '"""What fast-deps needs of a metadata cache."""',
    ),
    # The prefetcher.
    (
        '_THREAD_NAME_PREFIX = "pip-fastdeps-prefetch"',
        '_THREAD_NAME_PREFIX = "pip-prefetch"',
    ),
    ('"pip-fastdeps prefetch: %s"', '"fast-deps prefetch: %s"'),
    # Last: the plugin compares itself with "stock pip"; in pip, that is pip.
    ("stock pip's", "pip's"),
    ("stock pip", "pip"),
)

PREPARE = "pip._internal.operations.prepare"
PREFETCH = "pip._internal.resolution.prefetch"

REQ_COMMAND = "src/pip/_internal/cli/req_command.py"


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

A server also chooses sizes: the end of central directory record claims
the directory's size and number of entries, the directory claims METADATA's
compressed and inflated sizes. network/limits.py puts a limit on each (4 MiB
of directory, 70,000 entries, 4 MiB of METADATA; the largest real wheels
take a quarter of that), checked before the bytes are asked for; METADATA
is inflated in steps that stop at its limit, and no file is fetched for
more than the limits add up to. An archive past a limit is downloaded the
normal way, like one whose server cannot serve ranges.

No message shows more of a URL than pip does: network/utils.py gains
loggable_url() (scheme, host and path, the password redacted; never the
query, where presigned URLs carry their signature) and loggable_error() (an
error's type and HTTP status, not requests' text, which holds the path and
query). Ranges never follow a redirect from https to http: pip's stored
passwords are keyed by host, and would go out in clear.

One module per concern: network/ranges.py sends the range requests and
checks each answer, remembering per session what each host can do;
utils/wheel.py reads the ZIP records and checks what they claim;
network/lazy_wheel.py is the file object zipfile reads, and the order of
the requests. dist_from_wheel_url() keeps its signature and meaning, so the
preparer is unchanged by this commit. The news fragment is named after the change;
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
        steps=(
            NewModule("fastdeps.seams"),
            NewModule("fastdeps.network.limits"),
            NewModule("fastdeps.network.speculative"),
            MergeModule("fastdeps.network.utils"),
            NewModule("fastdeps.network.ranges"),
            MergeModule("fastdeps.utils.wheel"),
            NewModule("fastdeps.network.lazy_wheel", replaces=True),
        ),
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
        subject="fast-deps: keep wheel metadata in pip's cache directory",
        body="""\
Resolving the same requirements twice reads the same METADATA twice, and
with fast-deps that costs one to three range requests per candidate. A
given file's metadata never changes, so it is kept in
<cache dir>/metadata/, beside http-v2/ and wheels/, and the next
resolution asks the server for no wheel bytes at all. pip's HTTP cache
cannot do this: it keeps whole responses keyed by URL, and never 206
answers (CacheControl stores 200, 203, 300, 301 and 308 only).

- An entry is never worse than a fresh read. It is keyed by the file's
  strong hash from the index (sha256, else sha384 or sha512; never md5 or
  sha1), scoped to the file's URL without credentials, query or fragment,
  so that an index that lists a popular wheel's hash beside other metadata
  cannot steer resolutions on other indexes; files without such a hash are
  keyed by URL plus a strong ETag or Last-Modified, and without either are
  not cached. Only metadata with one Name and one Version is stored.
- A reader never sees a half-written or damaged entry: entries are written
  with adjacent_tmp_file() and moved into place with replace(), and carry
  the length and sha256 of their content, checked on every load; a damaged
  one is a miss. They get the permissions of the HTTP cache's files
  (copy_directory_permissions()). atomic_write() in utils/filesystem.py
  wraps that pattern, removing the temporary file on any error, for the
  next commit's downloads too, which get the mode open() would give them.
- The cache never fails an install: a directory that cannot be read or
  written costs a miss and a debug line, as for the HTTP cache.
  --no-cache-dir disables it, and pip cache purge / info count and remove
  its entries with the HTTP cache's.

MetadataFetcher (operations/metadata.py) is the one way fast-deps obtains
metadata: the cache, then the index's PEP 658 file, then the lazy wheel.
It never raises; None means "let pip's own code do it", so that every
failure of the fast path is a fallback, reported by pip's code as before.
The next commit makes the fast-deps preparer use it.
""",
        news=NewsFragment(
            "fast-deps-metadata-cache",
            "feature",
            "With ``--use-feature=fast-deps``, keep the metadata read from remote "
            "wheels in pip's cache directory, so that resolving the same "
            "requirements again sends no range requests. ``pip cache purge`` "
            "clears it.",
        ),
        steps=(
            MergeModule("fastdeps.utils.filesystem"),
            MergeModule("fastdeps.cache"),
            NewModule("fastdeps.operations.whole_files"),
            NewModule("fastdeps.operations.metadata"),
            Edit(
                "src/pip/_internal/commands/cache.py",
                old="""\
        return filesystem.find_files(old_http_dir, "*") + filesystem.find_files(
            new_http_dir, "*"
        )
""",
                new="""\
        # Metadata of wheels read with fast-deps, kept because HTTP answers
        # were: they go with the HTTP cache.
        metadata_cache = MetadataCache(self._cache_dir(options, CACHE_SUBDIR))
        return (
            filesystem.find_files(old_http_dir, "*")
            + filesystem.find_files(new_http_dir, "*")
            + [str(path) for path in metadata_cache.entries()]
        )
""",
                imports=(
                    ("pip._internal.cache", "CACHE_SUBDIR"),
                    ("pip._internal.cache", "MetadataCache"),
                ),
            ),
        ),
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
  lines otherwise. Only one download thread at a time handles a 401, so
  that the keyring is asked, or the user prompted, once: the others re-send
  with the credentials it obtained.
- Every file then goes through _prepare_linked_requirement() as before,
  hashes included, and the metadata the resolver was given (from the PEP
  658 file or the lazy wheel) is compared with the wheel's own METADATA:
  Name, Version, Requires-Dist, Requires-Python and Provides-Extra. A
  server that serves different bytes for ranges than for the whole file
  must not steer the resolver. Then the metadata cache is made to agree
  with the verified file: its METADATA replaces an entry read from ranges,
  and an entry the file contradicts is replaced (when keyed by the hash the
  file passed) or removed, so that one inconsistent answer does not fail
  every later run. A mismatch is a diagnostic error that says where the
  metadata came from, what was done to the cache and what to run next.
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
            MergeModule("fastdeps.cli.progress_bars"),
            MergeModule("fastdeps.network.download"),
            NewModule("fastdeps.operations.metadata_check"),
            # After RequirementPreparer, which the class extends.
            MergeModule("fastdeps.operations.prepare"),
            MergeModule("fastdeps.cli.cmdoptions"),
            MergeModule("fastdeps.cli.req_command", before="RequirementCommand"),
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
                fast_deps=fast_deps_settings(cls, options),
            )
        return preparer_class(
            build_dir=temp_build_dir_path,
""",
                imports=((PREPARE, "FastDepsRequirementPreparer"),),
            ),
        ),
    ),
    Patch(
        subject="fast-deps: fetch project pages and metadata ahead of the resolver",
        body="""\
The resolver asks for one thing at a time: a project's page, then one
candidate's metadata, then the next project's page. With 50 ms of latency
that is most of a resolution's wall time. With fast-deps, a Prefetcher
fetches in a small pool of threads what the resolver is about to ask for:
when requirements become known (the root ones, then each candidate's
dependencies), the page of every project they name and the metadata of
the candidate pip's own CandidateEvaluator would try first; when the
resolver backtracks, the metadata of the next few candidates.

The resolver is not changed and resolutions are identical: a page is
computed by PackageFinder.find_all_candidates in a worker, filling the
finder's cache, and the resolver's own call then returns from that cache;
metadata goes through the same MetadataFetcher as the preparer's. Root
requirements and constraints narrow every prediction, as the factory
combines them.

Speculation never costs what pip's own requests cost (network/speculative):
a worker's request has a short timeout, no retries and connections of its
own, never prompts, and is abandoned when it fails or is refused (401, 403,
5xx, a timeout), so that no failure is cached or learnt from; the
resolver's own request then runs pip's code, with its retries, prompts and
keyring, and reports exactly what pip reports. Workers are daemon threads:
when the resolution ends, or on Ctrl-C, nothing waits for them.

Hooks: Resolver.resolve() runs the resolution inside prefetching(), which
does nothing unless the preparer is fast-deps'; collect_root_requirements()
announces the root requirements, and PipProvider.get_dependencies() a
candidate's dependencies, read from its metadata (producing pip's
requirements ahead would prepare direct URLs early). pip without the
feature makes the same calls in the same order as before.
""",
        news=NewsFragment(
            "fast-deps-prefetch",
            "feature",
            "With ``--use-feature=fast-deps``, fetch project pages and wheel metadata "
            "ahead of the resolver, in parallel, without changing its results.",
        ),
        steps=(
            NewModule("fastdeps.resolution.prefetch"),
            Edit(
                "src/pip/_internal/resolution/resolvelib/resolver.py",
                old="""\
    def resolve(
        self, root_reqs: list[InstallRequirement], check_supported_wheels: bool
    ) -> RequirementSet:
        collected = self.factory.collect_root_requirements(root_reqs)
""",
                new="""\
    def resolve(
        self, root_reqs: list[InstallRequirement], check_supported_wheels: bool
    ) -> RequirementSet:
        with prefetching(self.factory):
            return self._resolve(root_reqs, check_supported_wheels)

    def _resolve(
        self, root_reqs: list[InstallRequirement], check_supported_wheels: bool
    ) -> RequirementSet:
        collected = self.factory.collect_root_requirements(root_reqs)
""",
                imports=((PREFETCH, "prefetching"),),
            ),
            Edit(
                "src/pip/_internal/resolution/resolvelib/factory.py",
                old="""\
        collected.requirements.sort(key=lambda r: r.name != r.project_name)
        return collected
""",
                new="""\
        collected.requirements.sort(key=lambda r: r.name != r.project_name)
        prefetcher = prefetcher_of(self)
        if prefetcher is not None:
            prefetch_requirements(
                prefetcher, collected.requirements, collected.constraints
            )
        return collected
""",
                imports=(
                    (PREFETCH, "prefetch_requirements"),
                    (PREFETCH, "prefetcher_of"),
                ),
            ),
            Edit(
                "src/pip/_internal/resolution/resolvelib/provider.py",
                old="""\
        return (r for r in candidate.iter_dependencies(with_requires) if r is not None)
""",
                new="""\
        prefetcher = prefetcher_of(self._factory)
        if prefetcher is not None:
            prefetch_dependencies(prefetcher, candidate)
        return (r for r in candidate.iter_dependencies(with_requires) if r is not None)
""",
                imports=(
                    (PREFETCH, "prefetch_dependencies"),
                    (PREFETCH, "prefetcher_of"),
                ),
            ),
        ),
    ),
)

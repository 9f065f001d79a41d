"""The fast-deps preparer: metadata first, the files afterwards, checked."""

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pip._internal.build_env import SubprocessBuildEnvironmentInstaller
from pip._internal.index.package_finder import PackageFinder
from pip._internal.models.link import Link
from pip._internal.network.session import PipSession
from pip._internal.operations.build.build_tracker import get_build_tracker
from pip._internal.operations.prepare import (
    FastDepsRequirementPreparer,
    FastDepsSettings,
)
from pip._internal.req.constructors import install_req_from_line
from pip._internal.utils.misc import hash_file

from tests.lib import TestData, make_test_finder
from tests.lib.server import MockServer, ranged_file_response


@contextmanager
def fast_deps_preparer(
    tmp_path: Path, finder: PackageFinder
) -> Iterator[FastDepsRequirementPreparer]:
    with get_build_tracker() as tracker:
        yield FastDepsRequirementPreparer(
            build_dir=str(tmp_path / "build"),
            src_dir=str(tmp_path / "src"),
            download_dir=None,
            build_isolation="virtual",
            build_isolation_installer=SubprocessBuildEnvironmentInstaller(finder),
            check_build_deps=False,
            build_tracker=tracker,
            session=PipSession(),
            progress_bar="off",
            finder=finder,
            require_hashes=False,
            use_user_site=False,
            lazy_wheel=True,
            verbosity=0,
            legacy_resolver=False,
            allow_editables=False,
            fast_deps=FastDepsSettings(
                jobs=2, progress_bar="off", metadata_only_with_hashes=True
            ),
        )


def test_fast_deps_reads_metadata_first_and_the_file_once_afterwards(
    tmp_path: Path, mock_server: MockServer, shared_data: TestData
) -> None:
    wheel = shared_data.packages / "simplewheel-2.0-py2.py3-none-any.whl"
    mock_server.set_responses(itertools.repeat(ranged_file_response(wheel)))
    mock_server.start()
    digest = hash_file(str(wheel))[0].hexdigest()
    url = f"http://{mock_server.host}:{mock_server.port}/{wheel.name}"
    req = install_req_from_line(f"simplewheel @ {url}")
    req.link = Link(f"{url}#sha256={digest}")

    with fast_deps_preparer(tmp_path, make_test_finder()) as preparer:
        dist = preparer.prepare_linked_requirement(req)
        assert str(dist.version) == "2.0"
        assert req.needs_more_preparation
        preparer.prepare_linked_requirements_more([req])
    mock_server.stop()

    assert req.local_file_path is not None
    assert Path(req.local_file_path).read_bytes() == wheel.read_bytes()
    assert [request.get("HTTP_RANGE") for request in mock_server.get_requests()] == [
        "bytes=-131072",
        None,
    ]

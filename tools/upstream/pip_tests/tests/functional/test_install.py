"""Replacements for test functions of pip's tests/functional/test_install.py.

Each goes in, by name, in place of pip's: see ReplaceTest in
tools/upstream/steps.py.
"""


@pytest.mark.parametrize("resolver", ["", "--use-deprecated=legacy-resolver"])
def test_basic_install_from_local_directory(
    script: PipTestEnvironment, data: TestData, resolver: str
) -> None:
    """
    Test installing from a local directory.
    """
    args = ["install", "--no-build-isolation"]
    if resolver:
        args.append(resolver)
    to_install = data.packages.joinpath("FSPkg")
    args.append(os.fspath(to_install))
    fast_deps = "fast-deps" in os.environ.get("PIP_USE_FEATURE", "")
    result = script.pip(*args, allow_stderr_warning=bool(resolver) and fast_deps)
    fspkg_folder = script.site_packages / "fspkg"
    dist_info_folder = script.site_packages / "fspkg-0.1.dev0.dist-info"
    result.did_create(fspkg_folder)
    result.did_create(dist_info_folder)


def test_refresh_package_per_package(
    script: PipTestEnvironment,
    data: TestData,
) -> None:
    """
    Check that --refresh-package=<name> only adds max-age=0
    for the specified package, not others.
    """
    wheel = "simplewheel-2.0-py2.py3-none-any.whl"
    responses = {
        "/simple/simple/": package_page(
            {"simple-3.0.tar.gz": "/files/simple-3.0.tar.gz"}
        ),
        "/files/simple-3.0.tar.gz": file_response(data.packages / "simple-3.0.tar.gz"),
        "/simple/simplewheel/": package_page({wheel: f"/files/{wheel}"}),
        f"/files/{wheel}": file_response(data.packages / wheel),
    }
    server = make_mock_server()
    # By path, not in order: with fast-deps, pages are fetched ahead.
    server.mock.side_effect = lambda environ, _: responses[environ["PATH_INFO"]]
    url = f"http://{server.host}:{server.port}/simple/"
    with server_running(server):
        script.pip(
            "install",
            "--refresh-package=simple",
            "--no-build-isolation",
            "--index-url",
            url,
            "simple",
            "simplewheel",
        )

    environs = {
        call.args[0]["PATH_INFO"]: call.args[0] for call in server.mock.call_args_list
    }
    assert environs["/simple/simple/"]["HTTP_CACHE_CONTROL"] == "max-age=0"
    assert "HTTP_CACHE_CONTROL" not in environs["/simple/simplewheel/"]

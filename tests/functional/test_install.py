"""``pip install`` with fast-deps: wheels installed ahead in processes (and
compiled in parallel where pip installs them itself), and the environment
it leaves identical to stock pip's, file by file.

Each test installs the same wheels into two fresh virtual environments, one
with stock pip and one with pip-fastdeps, and compares what they hold: the
set of paths, every file's bytes (a console script's with its environment's
own path taken out), the modes, RECORD, INSTALLER, REQUESTED and
``direct_url.json``. A ``.pyc`` is compared by its magic number, flags,
source size and code object: its source's modification time is the time
of each install, and marshal's bytes may differ between two processes
compiling the same source.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from tools.compare_install import differences

from tests.functional.conftest import (
    PATCHED_PIP,
    PIP_VERSION,
    Venv,
    _make_venv,
    run_pip,
)
from tests.lib.server import FileServer
from tests.lib.wheels import build_wheel, wheel_filename

pytestmark = pytest.mark.skipif(
    PATCHED_PIP is not None, reason="parallel bytecode is the plugin's alone"
)

FAST_DEPS = "--use-feature=fast-deps"

STAGED_LINE = re.compile(r"Installed (\S+): \d+ files unpacked ahead")


def many_modules(count: int, version: str) -> dict[str, bytes]:
    """Enough modules that the pool gets several batches of them."""
    return {
        f"many/m{index}.py": f"VALUE = {index}\nVERSION = {version!r}\n".encode()
        for index in range(count)
    }


def write_wheels(directory: Path) -> Path:
    """Two wheels sharing a namespace package and writing the same file, one
    with a script among its data, one that does not compile, one with
    sources in other encodings, a large one in two versions, and one whose
    second version fails to install halfway."""
    directory.mkdir()
    wheels = {
        ("nsa", "1.0"): {
            "ns/a/__init__.py": b"NAME = 'a'\n",
            "shared.py": b"OWNER = 'nsa'\n",
        },
        ("nsb", "1.0"): {
            "ns/b/__init__.py": b"NAME = 'b'\n",
            "shared.py": b"OWNER = 'nsb'\n",
            "nsb-1.0.data/scripts/tool.py": b"#!python\nprint('tool')\n",
        },
        ("broken", "1.0"): {
            "broken/__init__.py": b"",
            "broken/bad.py": b"def (:\n",
        },
        # pip 26.3 refuses to import a codec once it installs: cp1252's
        # source is not compiled there, latin-1's (a codec Python has
        # imported already) is.
        ("coded", "1.0"): {
            "coded/__init__.py": b"",
            "coded/latin.py": b"# -*- coding: latin-1 -*-\nX = '\xe9'\n",
            "coded/windows.py": b"# coding: cp1252\nX = '\x80'\n",
        },
        ("many", "1.0"): many_modules(300, "1.0"),
        ("many", "2.0"): many_modules(250, "2.0"),
        ("halfway", "1.0"): {"halfway/__init__.py": b"VERSION = '1.0'\n"},
        # pip writes its files and compiles them, then refuses the entry
        # point (no callable): the files stay, RECORD is never written.
        ("halfway", "2.0"): {
            "halfway/__init__.py": b"VERSION = '2.0'\n",
            "halfway/new.py": b"NEW = True\n",
            "halfway-2.0.dist-info/entry_points.txt": (
                b"[console_scripts]\nhalf = halfway\n"
            ),
        },
    }
    for (name, version), payload in wheels.items():
        data = build_wheel(name, version, payload=payload)
        (directory / wheel_filename(name, version)).write_bytes(data)
    return directory


def assert_same_environment(stock: Venv, plugin: Venv) -> None:
    """The same paths, bytes and modes; ``.pyc`` files by their code."""
    assert differences(stock.root, plugin.root) == []


def installed_line(output: str) -> str:
    (line,) = [line for line in output.splitlines() if "Successfully installed" in line]
    return line


@dataclass
class Installs:
    """The same installs run by stock pip and by pip with the plugin."""

    stock: Venv
    plugin: Venv
    stock_output: list[str]
    plugin_output: list[str]


def install_in_turn(
    tmp_path: Path,
    plugin_wheel: Path,
    steps: list[list[str]],
    env: dict[str, str] | None = None,
    last_status: int = 0,
) -> Installs:
    """Run ``pip install STEP`` for each step in a fresh environment, first
    with stock pip, then with the plugin, each time at the same path (a
    script's first line and a compiled file name it), then moved aside.

    Every step must succeed, except that the last one must end with
    ``last_status``.
    """
    venvs, outputs = [], []
    for plugin in (False, True):
        root = tmp_path / "env"
        venv = _make_venv(root, *([str(plugin_wheel)] if plugin else []))
        flags = [FAST_DEPS, "-v"] if plugin else []
        output = []
        for number, args in enumerate(steps, 1):
            result = run_pip(venv, ["install", *flags, *args], cwd=tmp_path, env=env)
            expected = last_status if number == len(steps) else 0
            assert result.returncode == expected, result.stderr
            output.append(result.stdout + result.stderr)
        moved = root.rename(tmp_path / ("env-plugin" if plugin else "env-stock"))
        venvs.append(Venv(moved))
        outputs.append(output)
    return Installs(venvs[0], venvs[1], outputs[0], outputs[1])


def test_a_fresh_install_is_unpacked_ahead_in_processes_and_matches_stock_pip(
    tmp_path: Path, plugin_wheel: Path
) -> None:
    wheels = write_wheels(tmp_path / "wheels")
    find = ["--no-index", "--find-links", str(wheels)]

    installs = install_in_turn(
        tmp_path,
        plugin_wheel,
        [[*find, "nsa", "nsb", "broken", "coded", "many==1.0"]],
    )

    (stock_output,), (plugin_output,) = installs.stock_output, installs.plugin_output
    assert installed_line(plugin_output) == installed_line(stock_output)
    staged = set(STAGED_LINE.findall(plugin_output))
    if min(os.cpu_count() or 1, 8) >= 2:
        assert staged == {"nsa", "nsb", "broken", "coded", "many"}
    else:
        assert staged == set()
    site = next(installs.plugin.root.glob("lib/python*/site-packages"))
    assert not list(site.glob("broken/__pycache__/bad.*.pyc"))
    assert list(installs.plugin.root.glob("bin/__pycache__/tool.*.pyc"))
    assert_same_environment(installs.stock, installs.plugin)


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param([["many==1.0", "nsa"], ["many==2.0"]], id="upgrade"),
        pytest.param(
            [["many==2.0", "nsb"], ["--force-reinstall", "many==1.0", "nsb"]],
            id="downgrade-force-reinstall",
        ),
    ],
)
def test_upgrades_and_reinstalls_match_stock_pip(
    tmp_path: Path, plugin_wheel: Path, steps: list[list[str]]
) -> None:
    wheels = write_wheels(tmp_path / "wheels")
    find = ["--no-index", "--find-links", str(wheels)]

    installs = install_in_turn(
        tmp_path, plugin_wheel, [[*find, *step] for step in steps]
    )

    last_stock, last_plugin = installs.stock_output[-1], installs.plugin_output[-1]
    assert installed_line(last_plugin) == installed_line(last_stock)
    assert_same_environment(installs.stock, installs.plugin)


@pytest.mark.parametrize(
    ("options", "env"),
    [
        pytest.param(["--no-compile"], None, id="no-compile"),
        pytest.param(["--compile"], {"PYTHONOPTIMIZE": "1"}, id="optimize"),
    ],
)
def test_compile_options_match_stock_pip(
    tmp_path: Path,
    plugin_wheel: Path,
    options: list[str],
    env: dict[str, str] | None,
) -> None:
    wheels = write_wheels(tmp_path / "wheels")
    args = [*options, "--no-index", "--find-links", str(wheels), "nsa", "many==1.0"]

    installs = install_in_turn(tmp_path, plugin_wheel, [args], env)

    cached = list(
        installs.plugin.root.glob("lib/python*/site-packages/many/__pycache__/*")
    )
    if env:
        assert cached and all(".opt-1.pyc" in path.name for path in cached)
    else:
        assert cached == []
    assert_same_environment(installs.stock, installs.plugin)


@pytest.mark.parametrize(
    ("steps", "new_module_left"),
    [
        pytest.param([["nsa", "many==1.0", "halfway==2.0"]], True, id="fresh"),
        # The rollback puts 1.0's directory back, in place of 2.0's.
        pytest.param(
            [["halfway==1.0", "many==1.0"], ["halfway==2.0", "many==2.0"]],
            False,
            id="upgrade",
        ),
    ],
)
def test_an_install_that_fails_halfway_leaves_what_stock_pip_leaves(
    tmp_path: Path, plugin_wheel: Path, steps: list[list[str]], new_module_left: bool
) -> None:
    wheels = write_wheels(tmp_path / "wheels")
    find = ["--no-index", "--find-links", str(wheels)]

    installs = install_in_turn(
        tmp_path, plugin_wheel, [[*find, *step] for step in steps], last_status=1
    )

    error = "Invalid script entry point: <ExportEntry half = halfway:None []>"
    assert error in installs.stock_output[-1]
    assert error in installs.plugin_output[-1]
    site = next(installs.plugin.root.glob("lib/python*/site-packages"))
    assert bool(list(site.glob("halfway/__pycache__/new.*.pyc"))) == new_module_left
    assert_same_environment(installs.stock, installs.plugin)


def test_wheels_downloaded_from_an_index_are_installed_ahead_and_match_stock_pip(
    tmp_path: Path, plugin_wheel: Path, file_server: FileServer
) -> None:
    """Staged as each download completes, from pip's temporary directory."""
    wheels = write_wheels(tmp_path / "wheels")
    for name in ("nsa", "nsb", "coded"):
        (path,) = wheels.glob(f"{name}-1.0-*.whl")
        file_server.add_project(name, {path.name: path.read_bytes()})
    index = ["--no-cache-dir", "--index-url", file_server.index_url]

    installs = install_in_turn(
        tmp_path, plugin_wheel, [[*index, "nsa", "nsb", "coded"]]
    )

    (stock_output,), (plugin_output,) = installs.stock_output, installs.plugin_output
    assert installed_line(plugin_output) == installed_line(stock_output)
    if min(os.cpu_count() or 1, 8) >= 2:
        assert set(STAGED_LINE.findall(plugin_output)) == {"nsa", "nsb", "coded"}
    assert_same_environment(installs.stock, installs.plugin)


def test_a_file_that_fails_its_hash_leaves_the_environment_untouched(
    tmp_path: Path, plugin_wheel: Path, file_server: FileServer
) -> None:
    """pip stops before it installs anything, and nothing was unpacked
    ahead from the file: the environment is as stock pip leaves it."""
    wheels = write_wheels(tmp_path / "wheels")
    for name in ("nsa", "nsb"):
        (path,) = wheels.glob(f"{name}-1.0-*.whl")
        file_server.add_project(name, {path.name: path.read_bytes()})
    (nsa,) = wheels.glob("nsa-1.0-*.whl")
    nsa_hash = hashlib.sha256(nsa.read_bytes()).hexdigest()
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        f"nsa==1.0 --hash=sha256:{nsa_hash}\nnsb==1.0 --hash=sha256:{'0' * 64}\n"
    )
    args = ["--no-cache-dir", "--index-url", file_server.index_url]

    installs = install_in_turn(
        tmp_path, plugin_wheel, [[*args, "-r", str(requirements)]], last_status=1
    )

    error = "THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE"
    assert error in installs.stock_output[-1]
    assert error in installs.plugin_output[-1]
    assert STAGED_LINE.findall(installs.plugin_output[-1]) == []
    assert list(installs.plugin.root.glob(".fastdeps-*")) == []
    assert_same_environment(installs.stock, installs.plugin)


#: What pip takes for a CI run (``looks_like_ci``; ``PIP_IS_CI`` goes with
#: every ``PIP_`` variable): there, its console draws no live display.
_CI_VARIABLES = frozenset(("BUILD_BUILDID", "BUILD_ID", "CI"))


def run_on_a_terminal(
    venv: Venv, args: list[str], cwd: Path, in_ci: bool = False
) -> str:
    """pip's output on a user's terminal (or, ``in_ci``, a CI job's) 100
    columns wide, without colours, other escape sequences and carriage
    returns turned into line ends."""
    import pty
    import subprocess

    from tests.functional.conftest import isolated_environment

    leader, follower = pty.openpty()
    env = {
        name: value
        for name, value in isolated_environment().items()
        if name not in _CI_VARIABLES
    }
    env.update(COLUMNS="100", TERM="xterm", **({"CI": "true"} if in_ci else {}))
    with subprocess.Popen(
        [str(venv.python), "-m", "pip", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    ) as process:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: pip and its workers ended
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(leader)
        assert process.wait(timeout=300) == 0
    text = b"".join(chunks).decode("utf-8", "replace")
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # colours
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "\n", text)


@pytest.mark.skipif(PIP_VERSION < (25, 1), reason="pip 24.1 has no install bar")
def test_on_a_terminal_one_display_shows_the_downloads_and_the_installs(
    tmp_path: Path, plugin_wheel: Path, file_server: FileServer
) -> None:
    """Its second line counts the wheels installed ahead, then the wheels
    pip installs, where pip would draw its own install bar; it is gone when
    pip says what it installed. Not in CI where pip draws nothing live."""
    wheels = write_wheels(tmp_path / "wheels")
    for name in ("nsa", "nsb"):
        (path,) = wheels.glob(f"{name}-1.0-*.whl")
        file_server.add_project(name, {path.name: path.read_bytes()})
    venv = _make_venv(tmp_path / "env", str(plugin_wheel))
    args = ["install", FAST_DEPS, "--no-cache-dir", "--index-url"]

    output = run_on_a_terminal(
        venv, [*args, file_server.index_url, "nsa", "nsb"], tmp_path
    )

    lines = [line.strip() for line in output.splitlines() if line.strip()]
    drawn = [line for line in lines if re.search(r"\d/2\b", line)]
    assert any(re.match(r"Downloading 2/2 files ", line) for line in drawn)
    installs = [line for line in drawn if not line.startswith("Downloading")]
    assert installs, output
    assert all(re.match(r"Installing +\d/2 ", line) for line in installs), installs
    assert any(line.endswith("[nsb]") for line in installs), installs
    done = lines.index("Successfully installed nsa-1.0 nsb-1.0")
    assert not [line for line in lines[done:] if line.startswith("Installing")]

    # In CI, pip 26.2 and later draw nothing live on their console (their
    # install bar shows nothing): the downloads are drawn as pip draws its
    # own, before the installs, and no install line. Earlier pips animate
    # in CI as on any terminal, and so does the display.
    output = run_on_a_terminal(
        venv,
        [*args, file_server.index_url, "--force-reinstall", "nsa", "nsb"],
        tmp_path,
        in_ci=True,
    )

    lines = [line.strip() for line in output.splitlines() if line.strip()]
    assert "Successfully installed nsa-1.0 nsb-1.0" in lines
    drawn_live = PIP_VERSION < (26, 2)
    assert bool(re.search(r"Installing +\d/2", output)) == drawn_live, output
    installing = lines.index("Installing collected packages: nsb, nsa")
    downloads = [n for n, line in enumerate(lines) if line.startswith("Downloading")]
    assert downloads and (drawn_live or max(downloads) < installing), output

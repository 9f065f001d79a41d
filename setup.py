"""Build hook for pip-fastdeps; the metadata lives in setup.cfg.

The only thing setup.cfg cannot express is a file at the top of
site-packages: ``pip_fastdeps.pth``, whose single import line registers the
import hook in ``fastdeps._bootstrap`` at interpreter start. It is written
into the build tree here, so regular wheels (and ``pip install .``) carry
it. Editable installs do not: see README.rst.
"""

from __future__ import annotations

import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH_NAME = "pip_fastdeps.pth"
# A .pth line that starts with "import" is executed by site.py. Keep it to
# one import: everything else belongs in fastdeps._bootstrap, where it can
# be tested and type-checked.
PTH_CONTENT = "import fastdeps._bootstrap\n"


class BuildPyWithPth(build_py):
    """build_py that also writes the start-up .pth next to the packages."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = os.path.join(self.build_lib, PTH_NAME)
        with open(target, "w", encoding="utf-8") as pth_file:
            pth_file.write(PTH_CONTENT)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs: list[str] = list(super().get_outputs(include_bytecode))
        if not self.editable_mode:
            outputs.append(os.path.join(self.build_lib, PTH_NAME))
        return outputs


setup(cmdclass={"build_py": BuildPyWithPth})

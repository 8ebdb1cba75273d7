"""Optional native extension: the C field kernels (``native/``) compiled by cffi into
``ppbfl.field._native``. ``optional=True``: without a working C compiler the build prints a
warning and the package installs anyway, running on the Numba backend."""

import sys
from pathlib import Path

from setuptools import setup

sys.path.insert(0, str(Path(__file__).resolve().parent / "native"))
from build_native import ffibuilder  # noqa: E402

extension = ffibuilder.distutils_extension(tmpdir="build/cffi")
extension.optional = True
setup(ext_modules=[extension])

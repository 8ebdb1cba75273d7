"""cffi (API mode) build of the native field kernels into ``ppbfl.field._native``.

Used by ``setup.py`` at ``pip install`` time (an optional extension: without a C compiler the
package installs and runs on the Numba backend), or directly for a development build::

    python native/build_native.py      # writes ppbfl/field/_native*.so next to the sources
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
HEADER = HERE / "ppbfl_field.h"


def _declarations() -> str:
    """The function prototypes of the header, as cffi's cdef wants them (no preprocessor lines)."""
    lines = []
    for line in HEADER.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or stripped.startswith("/*") or stripped.startswith("*"):
            continue
        lines.append(line)
    return "\n".join(lines)


ffibuilder = FFI()
ffibuilder.cdef(_declarations())
ffibuilder.set_source(
    "ppbfl.field._native",
    '#include "ppbfl_field.h"',
    sources=[str((HERE / "ppbfl_field.c").relative_to(HERE.parent))],
    include_dirs=[str(HERE.relative_to(HERE.parent))],
    extra_compile_args=["-O3", "-std=c99"],
)

if __name__ == "__main__":
    import os

    os.chdir(HERE.parent)
    ffibuilder.compile(verbose=True)

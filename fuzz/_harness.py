"""The command line every fuzz script here shares (run as ``python fuzz/NAME.py``).

``NAME.py --make-corpus DIR`` writes the script's seed inputs to ``DIR`` (``seed-NNN``
files); ``NAME.py [CORPUS] [-atheris_* options]`` fuzzes its ``test_one_input`` with
atheris.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import atheris


def write_corpus(directory: Path, seeds: list[bytes]) -> None:
    """Write ``seeds`` to ``directory`` (made if missing), one file each."""
    directory.mkdir(parents=True, exist_ok=True)
    for number, seed in enumerate(seeds):
        (directory / f"seed-{number:03d}").write_bytes(seed)
    print(f"wrote {len(seeds)} seeds to {directory}")


def main(test_one_input: Callable[[bytes], None], seeds: Callable[[], list[bytes]]) -> None:
    """``--make-corpus DIR``: write ``seeds()`` there; otherwise fuzz ``test_one_input``."""
    if len(sys.argv) == 3 and sys.argv[1] == "--make-corpus":
        write_corpus(Path(sys.argv[2]), seeds())
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()

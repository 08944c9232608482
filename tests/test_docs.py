"""Every Python code block in README.md and docs/ runs as-is, so the docs cannot rot.

Each block runs in a fresh interpreter (real sockets only on loopback, as the blocks use),
with a timeout. A block that is not meant to run must not be marked ``python``.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks() -> list[tuple[str, str]]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for index, match in enumerate(_BLOCK.finditer(path.read_text())):
            found.append((f"{path.relative_to(ROOT)}#{index}", match.group(1)))
    return found


BLOCKS = _blocks()


def test_the_docs_have_python_blocks() -> None:
    assert any(name.startswith("README.md") for name, _ in BLOCKS)


@pytest.mark.parametrize(("name", "code"), BLOCKS, ids=[name for name, _ in BLOCKS])
def test_doc_block_runs(name: str, code: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stderr[-3000:]}"

"""The sans-IO core must not load I/O, clocks-with-sockets or cryptography."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_core_loads_no_trio_socket_or_cryptography() -> None:
    code = (
        "import sys\n"
        "import swimgossip.core, swimgossip.core.engine\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'trio', 'socket', 'asyncio', 'cryptography', 'selectors', 'ssl'})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "", f"core imported: {result.stdout.strip()}"


def test_the_core_never_reads_a_clock_or_global_random() -> None:
    import pathlib

    import swimgossip.core

    root = pathlib.Path(swimgossip.core.__file__).parent
    forbidden = ("import time", "from time", "import random\n", "random.random(", "datetime")
    for path in root.glob("*.py"):
        text = path.read_text()
        for needle in forbidden:
            if needle == "import random\n":
                # `import random` is allowed only for the type of the injected RNG
                continue
            assert needle not in text, f"{path.name} contains {needle!r}"
        assert "random.choice(" not in text and "random.shuffle(" not in text, path.name

"""Typed embedding (issue 17, point 4): ``mypy --strict`` on a user's code.

``typed_usage/user_service.py`` is a service written against the public API (the README's
loop with narrowing on ``EventsLost``, a typed callback per event kind, ``serve_node`` with
keyword arguments): it must check clean. ``typed_usage/misuse.py`` holds mistakes that
mypy must catch, one per line marked ``# error``. The runtime behaviour of the same calls
is tested in test_embedding.py.
"""

from __future__ import annotations

import inspect
import pathlib
import re
import subprocess
import sys

import swimgossip

HERE = pathlib.Path(__file__).resolve().parent
USAGE = HERE / "typed_usage"
_ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: ")


def test_user_code_type_checks_and_misuse_does_not() -> None:
    good, bad = USAGE / "user_service.py", USAGE / "misuse.py"
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(good), str(bad)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=HERE.parent,
        check=False,
    )
    errors: dict[str, set[int]] = {}
    for line in result.stdout.splitlines():
        match = _ERROR.match(line)
        if match:
            name = pathlib.Path(match["file"]).name
            errors.setdefault(name, set()).add(int(match["line"]))
    assert "user_service.py" not in errors, result.stdout
    expected = {
        number
        for number, text in enumerate(bad.read_text().splitlines(), start=1)
        if text.rstrip().endswith("# error")
    }
    assert len(expected) == 10
    assert errors.get("misuse.py") == expected, result.stdout + result.stderr
    assert set(errors) <= {"misuse.py"}, result.stdout


def test_serve_node_takes_exactly_open_nodes_arguments() -> None:
    opened = inspect.signature(swimgossip.open_node).parameters
    served = inspect.signature(swimgossip.serve_node).parameters
    assert [p for p in served if p != "task_status"] == list(opened)
    for name, parameter in opened.items():
        assert served[name].default == parameter.default, name
        assert served[name].annotation == parameter.annotation, name
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in served.values())

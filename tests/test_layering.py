"""The folder tree is the architecture: each layer imports only the layers below it.

The layers, lowest first: core (sans-IO) <- security <- net <- node <- cli. ``testing``
(the public fault-injection toolkit) may import every layer, and only the cli imports it
(``swimgossip simulate`` drives the simulator). The doors for asyncio and threaded code,
``aio`` and ``blocking``, sit on the node layer beside the cli: each imports the node layer
and those below it, never the cli, ``testing`` or the other door, and no layer imports them.
The facade (``swimgossip/__init__.py``, ``__main__.py``, ``_moved.py``, and ``ring.py``, a
re-export of ``core/ring.py``) sits above them all. Two independent checks: the import
statements of every module (parsed, so an import inside a function or under
``TYPE_CHECKING`` counts too), and what a fresh interpreter has loaded after importing each
layer.
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import subprocess
import sys
import warnings

import pytest

import swimgossip
from swimgossip import _moved

#: The layers, lowest first; a module may import its own layer and those before it.
LAYERS = ("core", "security", "net", "node", "cli")
#: Beside the stack: may import any layer; only the layers named here may import it.
TESTING_IMPORTED_BY = frozenset({"cli"})

#: Doors onto the node layer for code outside Trio: may import the node layer and below.
DOORS = ("aio", "blocking")

PACKAGE = pathlib.Path(swimgossip.__file__).parent


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


# --- the import direction -----------------------------------------------------------------


def _imported_packages(path: pathlib.Path, root: pathlib.Path = PACKAGE) -> set[str]:
    """The top-level ``swimgossip`` subpackages / modules that ``path`` (under ``root``,
    the ``swimgossip`` folder) imports."""
    package = ".".join(path.relative_to(root.parent).parent.parts)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                if node.module:
                    targets = [f"{prefix}.{node.module}"]
                else:  # from .. import x: x may be a module
                    targets = [f"{prefix}.{alias.name}" for alias in node.names]
            elif node.module:
                targets = [node.module]
                targets += [f"{node.module}.{alias.name}" for alias in node.names]
        for target in targets:
            parts = target.split(".")
            if parts[0] == "swimgossip" and len(parts) > 1:
                found.add(parts[1])
    return found


def _layer_modules(layer: str) -> list[pathlib.Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


def test_every_module_belongs_to_a_layer_or_the_facade() -> None:
    layered = {*LAYERS, *DOORS, "testing"}
    facade = {"__init__.py", "__main__.py", "_moved.py", "py.typed", "ring.py"}
    for path in PACKAGE.iterdir():
        if path.name == "__pycache__":
            continue
        assert path.name in layered or path.name in facade, (
            f"swimgossip/{path.name} is in no layer: put it in one of {sorted(layered)}"
        )


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_the_layers_below_it(layer: str) -> None:
    allowed = set(LAYERS[: LAYERS.index(layer) + 1])
    if layer in TESTING_IMPORTED_BY:
        allowed.add("testing")
    for path in _layer_modules(layer):
        imported = {
            name for name in _imported_packages(path) if name in {*LAYERS, *DOORS, "testing"}
        }
        upward = imported - allowed
        assert not upward, f"{path.relative_to(PACKAGE)} imports a higher layer: {upward}"
        # nothing imports the facade (or an old flat path) from inside a layer
        others = _imported_packages(path) - {*LAYERS, *DOORS, "testing"}
        assert not others, f"{path.relative_to(PACKAGE)} imports {others}"


@pytest.mark.parametrize("door", DOORS)
def test_a_door_imports_the_node_layer_and_below_only(door: str) -> None:
    allowed = {*LAYERS[: LAYERS.index("node") + 1], door}
    paths = _layer_modules(door)
    assert paths, door
    for path in paths:
        imported = _imported_packages(path)
        assert imported <= allowed, f"{path.relative_to(PACKAGE)} imports {imported - allowed}"


@pytest.mark.parametrize("door", DOORS)
def test_importing_a_door_loads_no_cli_testing_or_other_door(door: str) -> None:
    loaded = _loaded_after_importing(f"swimgossip.{door}")
    assert door in loaded and "node" in loaded
    forbidden = {"cli", "testing", *DOORS} - {door}
    assert not loaded & forbidden, f"importing swimgossip.{door} loaded {loaded & forbidden}"


def test_the_import_check_catches_an_upward_import(tmp_path: pathlib.Path) -> None:
    """The parser sees relative, absolute and function-local upward imports."""
    path = tmp_path / "swimgossip" / "security" / "_upward.py"
    path.parent.mkdir(parents=True)
    path.write_text(
        "from ..node import Node\n"
        "import swimgossip.cli\n"
        "def f():\n"
        "    from .. import net\n"
        "    from swimgossip.testing import network\n"
        "from ._signer import PacketSigner\n"
    )
    found = _imported_packages(path, tmp_path / "swimgossip")
    assert found == {"node", "cli", "net", "testing", "security"}


def _loaded_after_importing(module: str) -> set[str]:
    code = (
        "import sys\n"
        f"import {module}\n"
        "print(' '.join(sorted({m.split('.')[1] for m in sys.modules "
        "if m.startswith('swimgossip.')})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(result.stdout.split())


@pytest.mark.parametrize("layer", LAYERS)
def test_importing_a_layer_loads_no_higher_layer(layer: str) -> None:
    loaded = _loaded_after_importing(f"swimgossip.{layer}")
    higher = set(LAYERS[LAYERS.index(layer) + 1 :]) | set(DOORS)
    if layer not in TESTING_IMPORTED_BY:
        higher.add("testing")
    assert layer in loaded
    assert not loaded & higher, f"importing swimgossip.{layer} loaded {loaded & higher}"


def test_importing_the_facade_loads_only_the_core() -> None:
    loaded = _loaded_after_importing("swimgossip")
    assert loaded <= {"core", "_moved"}, loaded


# --- the public facade --------------------------------------------------------------------


def test_the_public_names_are_listed_once_and_sorted() -> None:
    names = list(swimgossip.__all__)
    assert len(names) == len(set(names)), [n for n in names if names.count(n) > 1]
    assert names == sorted(names)


def test_every_public_name_imports_in_a_fresh_interpreter() -> None:
    code = (
        "import swimgossip\n"
        "missing = [n for n in swimgossip.__all__ if getattr(swimgossip, n, None) is None]\n"
        "print(' '.join(missing))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_every_lazy_entry_resolves_to_its_layer() -> None:
    lazy: dict[str, str] = swimgossip._LAZY  # type: ignore[attr-defined]
    for name, module in lazy.items():
        assert name in swimgossip.__all__, name
        assert getattr(swimgossip, name) is getattr(importlib.import_module(module), name)
    eager = set(swimgossip.__all__) - set(lazy) - {"__version__"}
    for name in eager:
        assert getattr(swimgossip.core, name) is getattr(swimgossip, name)


# --- the old flat paths -------------------------------------------------------------------


@pytest.mark.parametrize("old", sorted(_moved.MOVED))
def test_an_old_module_path_warns_and_forwards(old: str) -> None:
    home, sources = _moved.MOVED[old]
    name = f"swimgossip.{old}"
    saved = sys.modules.pop(name, None)
    try:
        with pytest.warns(DeprecationWarning, match=f"swimgossip.{home}"):
            module = importlib.import_module(name)
        for source in sources:
            new = importlib.import_module(f"swimgossip.{source}")
            for public in new.__all__:
                assert public in module.__all__
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    assert getattr(module, public) is getattr(new, public)
    finally:
        sys.modules.pop(name, None)
        if saved is not None:
            sys.modules[name] = saved


# --- inside the core: parts that own their state, imported one way ------------------------


def _core_imports(path: pathlib.Path) -> set[str]:
    """The core modules (by file stem) that the core module ``path`` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:  # `from . import codec`
                found.update(alias.name for alias in node.names)
    return found


def test_the_core_import_graph_has_no_cycle_and_no_type_checking_imports() -> None:
    root = PACKAGE / "core"
    graph = {path.stem: _core_imports(path) for path in root.glob("*.py")}
    for name in graph:
        text = (root / f"{name}.py").read_text()
        assert "TYPE_CHECKING" not in text, f"core/{name}.py imports under TYPE_CHECKING"
        assert "disable-error-code" not in text, f"core/{name}.py switches off a mypy check"
    # Depth-first search for a cycle; the path found is printed if there is one.
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for other in sorted(graph.get(name, ())):
            if other not in graph:
                continue
            assert state.get(other) != 1, f"import cycle: {' -> '.join([*trail, name, other])}"
            if other not in state:
                visit(other, [*trail, name])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_the_engine_parts_import_one_way() -> None:
    # effects <- membership <- detector, sync; broadcasts <- effects; the engine above all.
    root = PACKAGE / "core"
    parts = {"_effects", "_membership", "_detector", "_sync", "_broadcasts", "_state", "engine"}
    allowed = {
        "_state": {"_effects", "_membership"},
        "_effects": set(),
        "_membership": {"_effects"},
        "_detector": {"_effects", "_membership"},
        "_sync": {"_effects", "_membership"},
        "_broadcasts": {"_effects"},
        "engine": parts - {"engine"},
    }
    for name, may in allowed.items():
        imported = _core_imports(root / f"{name}.py") & parts
        assert imported <= may, f"core/{name}.py imports {sorted(imported - may)}"


def test_only_entry_points_that_return_outputs_are_public_on_the_engine() -> None:
    import inspect
    import typing

    from swimgossip.core.engine import Engine
    from swimgossip.core.outputs import Output

    # Public methods either return outputs (entry points) or only read (queries).
    queries = {"members", "iter_members", "member", "local_state", "is_stale"}
    queries |= {"state", "state_version", "state_digest", "state_snapshot"}
    setup = {"install_view", "note_local_lag"}
    for name, function in inspect.getmembers(Engine, inspect.isfunction):
        if name.startswith("_") or name in queries | setup:
            continue
        returns = typing.get_type_hints(function)["return"]
        assert returns == list[Output], f"Engine.{name} is public but returns {returns}"


# --- what an agent loads at start (cold start, issue 16) ----------------------------------


def test_an_agent_start_loads_neither_the_simulator_nor_importlib_abc() -> None:
    code = (
        "import sys\n"
        "from swimgossip.cli._main import _parser\n"
        "_parser().parse_args(['agent', '--name', 'a', '--bind', '127.0.0.1:0'])\n"
        "import swimgossip.cli._agent\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('swimgossip.testing')"
        " or m == 'importlib.abc')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == []

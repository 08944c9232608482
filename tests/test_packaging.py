"""The package as a user gets it: ``python -m build`` makes an sdist and a wheel (the wheel
built from the sdist, so the sdist is complete), and the wheel installed into a fresh
virtualenv (no editable install, no source tree on the path) runs the README quickstart,
the asyncio snippet and ``swimgossip --help``.

The fresh virtualenv reaches the dependencies (trio, attrs, cryptography, msgpack) through
a ``.pth`` line naming this environment's site-packages, so the test needs no download;
swimgossip itself comes only from the wheel (``--no-deps --no-index``), and the test checks
that it was imported from the new environment.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

import swimgossip

ROOT = pathlib.Path(__file__).resolve().parent.parent
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _run(*args: str | pathlib.Path, cwd: pathlib.Path, timeout: float = 300) -> str:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )
    assert result.returncode == 0, (
        f"{args} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """sdist and wheel built from a copy of the project (the work tree stays clean)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "CHANGELOG.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    dist = source / "dist"
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, ".", cwd=source)
    return dist


def test_build_makes_an_sdist_and_a_wheel_with_every_package(built: pathlib.Path) -> None:
    version = swimgossip.__version__
    sdists = list(built.glob(f"swimgossip-{version}.tar.gz"))
    wheels = list(built.glob(f"swimgossip-{version}-py3-none-any.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in built.iterdir())
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    for package in ("core", "security", "net", "node", "cli", "testing", "aio", "blocking"):
        assert f"swimgossip/{package}/__init__.py" in names, package
    assert "swimgossip/py.typed" in names
    metadata = zipfile.ZipFile(wheels[0]).read(f"swimgossip-{version}.dist-info/METADATA")
    assert f"Version: {version}" in metadata.decode()


def test_the_wheel_installs_in_a_fresh_venv_and_runs_the_readme(
    built: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    purelib = _run(
        python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path
    )
    # the dependencies, from this environment; swimgossip is not importable from there
    # (its editable install works through a .pth file that a path line does not run)
    (pathlib.Path(purelib.strip()) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(built.glob("*.whl"))
    _run(
        sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
        "--no-deps", "--no-index", wheel, cwd=tmp_path,
    )  # fmt: skip

    where = _run(python, "-c", "import swimgossip; print(swimgossip.__file__)", cwd=tmp_path)
    assert where.strip().startswith(str(venv)), where
    version = _run(
        python, "-c", "import importlib.metadata as m; print(m.version('swimgossip'))", cwd=tmp_path
    )
    assert version.strip() == swimgossip.__version__

    readme = (ROOT / "README.md").read_text()
    blocks = _BLOCK.findall(readme)
    quickstart = next(b for b in blocks if "trio.run(main)" in b)
    asyncio_snippet = next(b for b in blocks if "swimgossip.aio" in b)
    for code, expected in ((quickstart, "MemberJoined b"), (asyncio_snippet, "MemberJoined b")):
        output = _run(python, "-c", code, cwd=tmp_path, timeout=120)
        assert expected in output, output

    help_text = _run(venv / "bin" / "swimgossip", "--help", cwd=tmp_path, timeout=60)
    assert "agent" in help_text and "members" in help_text

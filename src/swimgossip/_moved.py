"""Deprecated import paths: the flat modules of earlier versions, forwarded with a warning.

How this works. Until the layers became subpackages (core, security, net, node, cli),
every module sat directly in ``swimgossip/``. ``install()`` (called once by
``swimgossip/__init__.py``) appends a finder to ``sys.meta_path`` that answers only for
the old names in ``MOVED``, after every real finder has said no: importing one warns with
a ``DeprecationWarning`` naming the new home, then returns a module holding the names of
the modules listed for it (the first one that defines a name wins). Nothing is imported
until an old name is. CHANGELOG.md lists the same moves; remove both after a release.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import importlib.abc

    class _Base(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        pass

else:
    # importlib.abc costs about 25 ms at start (it loads importlib.resources, tempfile,
    # pathlib): the import system only calls the methods, so the bases are left out.
    _Base = object

__all__ = ["MOVED", "install"]

#: Old module (under ``swimgossip.``) -> (its new public home, the modules whose names it
#: now forwards, in order).
MOVED: dict[str, tuple[str, tuple[str, ...]]] = {
    "envelope": ("security", ("security._envelope",)),
    "keyring": ("security", ("security._keyring", "security.errors")),
    "nonces": ("security", ("security._nonces",)),
    "rejections": ("security", ("security._refusals", "security.errors")),
    "replay": ("security", ("security._replay",)),
    "framing": ("net", ("net._framing", "net.errors")),
    "transport": ("net", ("net._transport", "net.errors")),
    "udp": ("net", ("net._udp",)),
    "events": ("node", ("node._events",)),
    "joining": ("node", ("node._joining", "node.errors")),
    "metrics": ("node", ("node._metrics",)),
    "runtime": ("node", ("node._runtime", "security._refusals", "security.errors")),
    "cli_agent": ("cli", ("cli._agent", "cli.errors")),
    "cli_demo": ("cli", ("cli._demo",)),
    "cli_format": ("cli", ("cli._format",)),
    "cli_simulate": ("cli", ("cli._simulate",)),
    "status": ("cli", ("cli._status", "cli.errors")),
}

_PREFIX = "swimgossip."


class _MovedFinder(_Base):
    """Finds and loads the old names in ``MOVED``; every other name is left to the others."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(_PREFIX) or fullname[len(_PREFIX) :] not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # the default: an empty module

    def exec_module(self, module: ModuleType) -> None:
        home, sources = MOVED[module.__name__[len(_PREFIX) :]]
        # stacklevel 2: the importer (the import system's own frames are not counted)
        warnings.warn(
            f"{module.__name__} is deprecated: import from {_PREFIX}{home} instead",
            DeprecationWarning,
            stacklevel=2,
        )
        exported: list[str] = []
        for source in sources:
            forwarded = importlib.import_module(_PREFIX + source)
            for name, value in vars(forwarded).items():
                if not name.startswith("__"):
                    module.__dict__.setdefault(name, value)
            exported += getattr(forwarded, "__all__", ())
        module.__dict__["__all__"] = exported


_FINDER = _MovedFinder()


def install() -> None:
    """Add the finder of the old names to ``sys.meta_path`` (once; last, after the real ones)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)

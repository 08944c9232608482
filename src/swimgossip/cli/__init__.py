"""The command line, the top layer: ``swimgossip`` and ``python -m swimgossip``.

``main`` (in ``_main``) parses arguments and dispatches to ``_agent`` (one node, events
as JSON lines, with the ``_status`` endpoint), ``_demo``, ``_simulate`` (which drives
``swimgossip.testing``'s simulator) and ``keygen``; ``_format`` renders tables and JSON.
Its errors are in ``errors``. It may import every layer below it.
"""

from ._main import main

__all__ = ["main"]

"""Public testing tools for swimgossip users and its own test suite.

Submodules are imported explicitly (``from swimgossip.testing import strategies``) so that
importing this package pulls in no optional dependency such as hypothesis.

``open_cluster`` (from ``cluster.py``) runs real nodes on the in-memory network of
``network.py`` in virtual time; see docs/testing.md.
"""

from .cluster import Cluster, ConvergenceError, open_cluster
from .network import MemoryNetwork, MemoryTransport

__all__ = ["Cluster", "ConvergenceError", "MemoryNetwork", "MemoryTransport", "open_cluster"]

"""Serf's layer on memberlist's wire (hashicorp/serf), sans I/O.

``messages`` is Serf's wire: its message types, push-pull state and tags in meta, bytes
<-> typed values; ``layer`` is ``SerfLayer``, Serf's state (Lamport clocks, join and leave
intents, user events, queries) behind memberlist's delegate hooks. docs/interop.md says
what maps to what and what is not supported.
"""

from . import layer, messages
from .layer import *  # noqa: F403
from .messages import *  # noqa: F403

# The names of each module's own __all__, listed there only.
__all__: list[str] = []
__all__ += layer.__all__
__all__ += messages.__all__

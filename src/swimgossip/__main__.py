"""``python -m swimgossip``: the command line (see ``swimgossip.cli``)."""

import sys

from .cli import main

sys.exit(main())

"""``python -m agents <verb>``: the ``plastic`` command (agents/cli/plastic.py)."""

import sys

from agents.cli.plastic import main

sys.exit(main())

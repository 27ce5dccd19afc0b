"""`plastic train` from a checkout: the code is agents/cli/train.py.

Installed, the same tool is `plastic train` or `python -m agents.cli.train`.
"""

from agents.cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())

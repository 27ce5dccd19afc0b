"""`plastic plot` from a checkout: the code is agents/cli/plot.py.

Installed, the same tool is `plastic plot` or `python -m agents.cli.plot`.
"""

from agents.cli.plot import main

if __name__ == "__main__":
    raise SystemExit(main())

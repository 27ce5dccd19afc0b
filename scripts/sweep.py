"""`plastic sweep` from a checkout: the code is agents/cli/sweep.py.

Installed, the same tool is `plastic sweep` or `python -m agents.cli.sweep`.
"""

from agents.cli.sweep import main

if __name__ == "__main__":
    raise SystemExit(main())

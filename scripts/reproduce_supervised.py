"""`plastic reproduce supervised` from a checkout: the code is agents/cli/reproduce_supervised.py.

Installed, the same tool is `plastic reproduce supervised` or `python -m agents.cli.reproduce_supervised`.
"""

from agents.cli.reproduce_supervised import main

if __name__ == "__main__":
    raise SystemExit(main())

"""`plastic reproduce rl` from a checkout: the code is agents/cli/reproduce_rl.py.

Installed, the same tool is `plastic reproduce rl` or `python -m agents.cli.reproduce_rl`.
"""

from agents.cli.reproduce_rl import main

if __name__ == "__main__":
    raise SystemExit(main())

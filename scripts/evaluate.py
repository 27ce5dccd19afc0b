"""`plastic evaluate` from a checkout: the code is agents/cli/evaluate.py.

Installed, the same tool is `plastic evaluate` or `python -m agents.cli.evaluate`.
"""

from agents.cli.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())

"""`plastic bench trainer` from a checkout: the code is agents/cli/benchmark.py.

Installed, the same tool is `plastic bench trainer` or `python -m agents.cli.benchmark`.
"""

from agents.cli.benchmark import main

if __name__ == "__main__":
    raise SystemExit(main())

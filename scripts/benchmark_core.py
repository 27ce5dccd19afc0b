"""`plastic bench core` from a checkout: the code is agents/cli/benchmark_core.py.

Installed, the same tool is `plastic bench core` or `python -m agents.cli.benchmark_core`.
"""

from agents.cli.benchmark_core import main

if __name__ == "__main__":
    raise SystemExit(main())

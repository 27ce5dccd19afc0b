"""`plastic bench threads` from a checkout: the code is agents/cli/benchmark_threads.py.

Installed, the same tool is `plastic bench threads` or `python -m agents.cli.benchmark_threads`.
"""

from agents.cli.benchmark_threads import main

if __name__ == "__main__":
    raise SystemExit(main())

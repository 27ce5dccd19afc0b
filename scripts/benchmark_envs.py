"""`plastic bench envs` from a checkout: the code is agents/cli/benchmark_envs.py.

Installed, the same tool is `plastic bench envs` or `python -m agents.cli.benchmark_envs`.
"""

from agents.cli.benchmark_envs import main

if __name__ == "__main__":
    raise SystemExit(main())

"""`plastic bandit-baselines` from a checkout: the code is agents/cli/bandit_baselines.py.

Installed, the same tool is `plastic bandit-baselines` or `python -m agents.cli.bandit_baselines`.
"""

from agents.cli.bandit_baselines import main

if __name__ == "__main__":
    raise SystemExit(main())

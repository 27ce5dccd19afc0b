"""`plastic inspect` from a checkout: the code is agents/cli/inspect_run.py.

Installed, the same tool is `plastic inspect` or `python -m agents.cli.inspect_run`.
"""

from agents.cli.inspect_run import main

if __name__ == "__main__":
    raise SystemExit(main())

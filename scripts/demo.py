"""`plastic demo` from a checkout: the code is agents/cli/core_demo.py.

Installed, the same tool is `plastic demo` or `python -m agents.cli.core_demo`.
"""

from agents.cli.core_demo import main

if __name__ == "__main__":
    raise SystemExit(main())

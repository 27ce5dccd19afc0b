"""`plastic compare-sb3` from a checkout: the code is agents/cli/compare_sb3.py.

Installed, the same tool is `plastic compare-sb3` or `python -m agents.cli.compare_sb3`.
"""

from agents.cli.compare_sb3 import main

if __name__ == "__main__":
    raise SystemExit(main())

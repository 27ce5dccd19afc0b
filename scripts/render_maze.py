"""`plastic render` from a checkout: the code is agents/cli/render.py.

Installed, the same tool is `plastic render` or `python -m agents.cli.render`.
"""

from agents.cli.render import main

if __name__ == "__main__":
    raise SystemExit(main())

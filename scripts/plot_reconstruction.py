"""`plastic plot-reconstruction` from a checkout: the code is agents/cli/plot_reconstruction.py.

Installed, the same tool is `plastic plot-reconstruction` or `python -m agents.cli.plot_reconstruction`.
"""

from agents.cli.plot_reconstruction import main

if __name__ == "__main__":
    raise SystemExit(main())

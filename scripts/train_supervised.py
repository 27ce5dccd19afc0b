"""`plastic train-supervised` from a checkout: the code is agents/cli/train_supervised.py.

Installed, the same tool is `plastic train-supervised` or `python -m agents.cli.train_supervised`.
"""

from agents.cli.train_supervised import main

if __name__ == "__main__":
    raise SystemExit(main())

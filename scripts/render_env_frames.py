"""`plastic frames` from a checkout: the code is agents/cli/render_env_frames.py.

Installed, the same tool is `plastic frames` or `python -m agents.cli.render_env_frames`.
"""

from agents.cli.render_env_frames import main

if __name__ == "__main__":
    raise SystemExit(main())

"""The measurements behind ``plastic bench``: core, trainer, env, thread and SB3 speeds, importable from a notebook.

Each module measures one thing and returns plain dicts; ``isolated.run_isolated`` runs a measurement in a fresh
subprocess (its own peak memory, its own thread pools). The command-line tools in ``agents/cli/benchmark*.py``
parse their flags, call these and print the tables.
"""

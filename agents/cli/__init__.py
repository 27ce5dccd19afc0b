"""The package's command-line tools, one module each, run as ``plastic <verb>`` (``agents/cli/plastic.py``).

Every module has ``main(argv=None) -> int`` and runs as ``python -m agents.cli.<name>``; ``scripts/*.py`` are
one-line wrappers of the same functions for a checkout. The modules only parse their flags and call the
library (``agents``, ``agents.benchmarks``, ``envs``, ``plastic_core``); ``plastic --help`` lists the verbs.
"""

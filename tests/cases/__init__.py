"""Plain helper modules shared by several test modules (on sys.path through pytest's pythonpath = ["tests"])."""

"""Small versions of every supervised task, shared by the env tests and the supervised trainer's tests."""

# small versions of every task (the defaults are checked separately), keyed by registered id
SMALL = {
    "Plastic/PatternCompletion-v0": {},
    "Plastic/OneShotAssociation-v0": {},
    "Plastic/ReversalAssociation-v0": {},
    "Plastic/PatternMemory-v0": {"n_patterns": 3, "pattern_size": 16, "show_steps": 2, "blank_steps": 1,
                                 "probe_steps": 2},
    "Plastic/ImageReconstruction-v0": {"image_size": 8, "show_steps": 2, "blank_steps": 1, "n_repeats": 2,
                                       "probe_steps": 2},
    "Plastic/OmniglotOneShot-v0": {"n_way": 3},
    "Plastic/ContinualSine-v0": {"n_functions": 3, "samples_per_function": 4, "queries_per_function": 2},
    "Plastic/ContinualOmniglot-v0": {"n_classes": 3, "n_shots": 2, "n_queries": 1},
}

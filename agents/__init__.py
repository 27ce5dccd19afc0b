"""A2C agents whose recurrent core is any plastic_core network, the supervised meta-trainer, baselines."""

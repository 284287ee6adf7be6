"""Layers and losses shared by SD-MTMP and the baselines."""

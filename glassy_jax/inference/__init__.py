"""A trained network at work: predictions, scores and figures.

Propensities for new snapshots (`apply`), correlations on a dataset with
the baselines beside them (`evaluate`) and the figures (`plotting`). May
import every layer below, `training` for its checkpoints and configs.
"""

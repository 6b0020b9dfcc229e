"""The glass as physics: neighbour graphs and what the structure says.

Periodic neighbour graphs (`graphs`), the Kob-Andersen mixture
(`kob_andersen`), inherent structures by FIRE minimisation
(`inherent_structures`), coarse-grained structural descriptors
(`structure_features`) and bond targets from the runs (`bond_targets`).
May import `errors` and `formats`; knows nothing of networks or training.
"""

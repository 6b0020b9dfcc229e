"""How good a prediction is: correlations, baselines, tables.

Pearson correlations per type and time (`metrics`), ridge regression
(`ridge`), the field's structural baselines (`baselines`) and the tables
that report them (`tables`). May import the layers up to `network`.
"""

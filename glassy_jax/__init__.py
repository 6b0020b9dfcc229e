"""glassy_jax: DeepMind's glassy-dynamics graph network in JAX/Haiku/Jraph.

The package is layered bottom up; a module imports from its own layer and
the layers below it, never from one above (tests/test_layering.py holds the
code to this order). Data flows up the same way: files are read into
snapshots (formats), snapshots become graphs and descriptors (physics), the
network maps graphs to propensities (network), and the pipeline trains,
scores and applies it (scoring, training, inference) for the programs.
"""

__version__ = "0.2.0"

# Bottom to top. `errors` is a module; the rest are subpackages.
LAYERS = (
    "errors",      # UserError: what every program reports in one line
    "progress",    # progress of long work: a bar, or lines in a log
    "formats",     # files <-> arrays: DeepMind's pickles, LAMMPS, layouts
    "physics",     # the glass: graphs, inherent structures, descriptors
    "simulation",  # LAMMPS runs that make datasets
    "network",     # the Haiku models, their inputs and configs
    "scoring",     # correlations, baselines, result tables
    "training",    # configs checked, input pipeline, steps, checkpoints
    "inference",   # apply, evaluate, plots of a trained network
    "configs",     # the named configs (the repository's configs/ folder)
    "programs",    # command-line programs over the layers below
)

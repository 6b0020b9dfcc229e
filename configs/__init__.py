"""The named training and simulation configs, shipped as `glassy_jax.configs`.

A program takes one by name (`--config=bapst`, `--config=fast:demo`) or by
path (`--config=configs/bapst.py`, or a file of your own). `bapst` is
DeepMind's recipe; every other file departs from it in named options
(BUILD_NOTES.md says why and by how much). A config imports the layers up
to `inference`.
"""

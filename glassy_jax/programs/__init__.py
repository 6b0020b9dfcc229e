"""The command-line programs, one module per command, apart from the library.

Each defines its flags and a `main(flags)` over library functions, run by
`cli.run`; no library module defines flags or reads `sys.argv`. Each is
installed as a `glassy-*` console script (setup.py) and runs as
`python -m glassy_jax.programs.NAME`; `run_training.py` is the training
program.
"""

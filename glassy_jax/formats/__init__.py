"""Files to arrays and back: the data formats a user brings.

DeepMind's pickles (`data`), LAMMPS dumps and data files (`lammps_io`),
the field's other dataset layouts (`layouts`), atomic file writes
(`atomic`) and the paths they all go through: local, or gs:// and s3://
URLs (`storage`). May import only `glassy_jax.errors`: nothing here knows about
graphs or networks.
"""

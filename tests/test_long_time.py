"""configs/long_time.py: inherent structures, coarse descriptors, a readout
started at the ridge fit, a validation split; and that the recipe learns."""

import os

import jax
import numpy as np
import pytest

from glassy_jax.configs import long_time
from conftest import write_synthetic_dataset
from glassy_jax.inference import evaluate
from glassy_jax.network import model_inputs
from glassy_jax.network import models
from glassy_jax.scoring import ridge
from glassy_jax.training import input_pipeline
from glassy_jax.training import run_config
from glassy_jax.training import train

SCALES = (1.0, 2.0, 3.0)  # Below half the 6.6 sigma box of 343 particles.


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  """4 training and 1 test system of 343 particles (box 6.6)."""
  return write_synthetic_dataset(tmp_path_factory.mktemp("long_time"),
                                 num_train=4, num_test=1, n=343)


def _config(directory):
  config = long_time.get_config("test")
  config.data.update(directory=directory, coarse_scales=SCALES,
                     max_train_files=0)
  config.model.node_descriptors = model_inputs.InputSpec(
      descriptors=config.data.descriptors,
      coarse_scales=SCALES).num_descriptors
  return config


def test_network_starts_as_the_ridge_model(dataset):
  config = _config(dataset)
  data = input_pipeline.load_training_data(run_config.RunConfig.of(config),
                                          1)
  assert [os.path.basename(n) for n in data.test.names] == [
      "aggregated-003.pickle"]  # The validation file.
  assert len(data.train.graphs) == 3 and len(data.final_test.graphs) == 1
  network = models.make_network(config.model)
  params = network.init(jax.random.PRNGKey(0), data.train.graphs[0])
  params = train.start_from_ridge(params, data)
  # The ridge fit, computed on its own from the same standardised inputs.
  targets = [(t - data.scale.mean) / data.scale.std
             for t in data.train.targets]
  fit = ridge.fit_held_out_ridge(
      [g.nodes[:, 1:] for g in data.train.graphs], targets, data.train.types)
  graph = data.test.graphs[0]
  np.testing.assert_allclose(network.apply(params, None, graph),
                             fit.predict(graph.nodes[:, 1:]),
                             rtol=1e-4, atol=1e-4)


def test_recipe_learns_and_its_checkpoint_reads_plain_snapshots(dataset,
                                                                tmp_path):
  config = _config(dataset)
  config.train.update(num_steps=30, eval_every=10, checkpoint_every=10,
                      log_every=5)
  workdir = str(tmp_path / "run")
  final = train.train_and_evaluate(config, workdir)
  assert final["pearson_a"] > 0.5, final
  # Apply/evaluate rebuild the inputs (minimum, descriptors, statistics)
  # from the test file's thermal structure: the same score.
  rows = evaluate.evaluate_checkpoint(
      os.path.join(workdir, "checkpoints", "best.npz"), dataset,
      time_indices=[9])
  np.testing.assert_allclose(rows[0]["pearson_a"], final["pearson_a"],
                             rtol=1e-5)


def test_descriptor_count_must_match_the_network():
  config = long_time.get_config("test")
  config.model.node_descriptors = 5
  with pytest.raises(ValueError, match="model.node_descriptors must be"):
    run_config.RunConfig.of(config)

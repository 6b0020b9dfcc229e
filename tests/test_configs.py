"""Configs: presets load, README overrides exist, the seed's variant trains."""

import os
import re

import jax
import numpy as np
import pytest

from glassy_jax.configs import bapst
from glassy_jax.configs import fast
from glassy_jax.configs import fast_all_times
from glassy_jax.configs import gcn
from glassy_jax.configs import simulate_ka
from glassy_jax.configs import ter2023
from glassy_jax.training import checkpoints
from glassy_jax.training import train
from conftest import REPO


@pytest.mark.parametrize("module, preset, changes", [
    (bapst, "demo", {"data.time_index": 0, "train.num_epochs": 15}),
    (bapst, "finetune", {"init_from": "t044_s09", "data.time_index": 0,
                         "train.num_epochs": 10}),
    (bapst, "test", {"train.num_steps": 6, "data.max_train_files": 2,
                     "data.max_test_files": 1}),
    (fast, "demo", {"data.time_index": 0, "train.num_epochs": 15,
                    "train.eval_every": 40}),
    (fast, "test", {"train.num_steps": 6}),
    (ter2023, "demo", {"data.time_index": 0, "train.num_epochs": 15}),
    (ter2023, "test", {"train.num_steps": 6, "train.graphs_per_device": 1}),
    (simulate_ka, "tiny", {"num_particles": 256, "num_train": 2,
                           "store": "trajectories"}),
    (simulate_ka, "demo", {"temperature": 0.64, "num_train": 16,
                           "num_test": 4})])
def test_presets_change_what_they_say(module, preset, changes):
  flat = _flat(module.get_config(preset))
  default = _flat(module.get_config(None if module is simulate_ka else ""))
  for key, value in changes.items():
    assert flat[key] == value, key
    assert default[key] != value, f"{key} is already {value} by default"


@pytest.mark.parametrize("module",
                         [bapst, ter2023, fast, fast_all_times, gcn,
                          simulate_ka])
def test_unknown_presets_are_refused(module):
  with pytest.raises(ValueError, match="unknown preset"):
    module.get_config("bogus")


def test_bapst_defaults_are_deepminds():
  config = bapst.get_config()
  assert config.data.time_index == 9 and config.data.cutoff == 2.0
  assert config.data.time_indices == ()  # One model per time index.
  assert config.model.num_steps == 7 and config.model.shared_weights
  assert config.model.update_order == "sequential"
  assert config.model.node_features == "type"
  assert tuple(config.model.mlp_sizes) == (64, 64)
  assert tuple(config.model.decoder_sizes) == (64, 64, 1)
  assert config.optimizer.learning_rate == 1e-4
  assert config.optimizer.clip_global_norm == 1.0
  assert config.train.num_epochs == 1000 and config.train.augment_rotations
  assert config.train.graphs_per_device == 1 and config.train.eval_every == 1000
  assert not config.data.standardize_targets


@pytest.mark.parametrize("module", [fast, ter2023])
def test_variants_refuse_the_published_weights(module):
  with pytest.raises(ValueError, match="fit configs/bapst.py only"):
    module.get_config("finetune")


def test_finetune_preset_starts_from_the_published_network(tmp_path):
  config = bapst.get_config("finetune")
  config.train.update(num_steps=2, eval_every=2, checkpoint_every=2)
  config.data.update(max_train_files=2, max_test_files=1)
  final = train.train_and_evaluate(config, str(tmp_path))
  # From scratch this is ~0; DeepMind's network gives 0.81 on this file.
  assert final["pearson_a"] > 0.75, final


def _flat(config, prefix=""):
  out = {}
  for key, value in config.items():
    if hasattr(value, "items"):
      out.update(_flat(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


@pytest.mark.parametrize("preset", ["", "demo", "test"])
def test_fast_departs_from_bapst_only_where_its_docstring_says(preset):
  faithful, variant = _flat(bapst.get_config(preset)), _flat(
      fast.get_config(preset))
  assert faithful.keys() == variant.keys()
  changed = {k for k in faithful if faithful[k] != variant[k]}
  expected = {"model.edge_features", "model.angular_channels",
              "model.aggregation_scale", "data.standardize_targets",
              "optimizer.learning_rate", "optimizer.schedule",
              "optimizer.warmup_steps"}
  run_length = {"train.num_epochs", "train.eval_every",
                "train.checkpoint_every", "train.log_every"}
  assert expected <= changed <= expected | run_length
  assert variant["model.edge_features"] == "vector_rbf"
  assert variant["model.angular_channels"] > 0


@pytest.mark.parametrize("preset", ["", "demo", "test"])
def test_fast_all_times_departs_from_fast_only_in_its_head(preset):
  """One output per time index, all ten, and fast.py's run lengths (240
  steps for the demo)."""
  base, joint = _flat(fast.get_config(preset)), _flat(
      fast_all_times.get_config(preset))
  assert {k for k in base if base[k] != joint[k]} == {
      "data.time_indices", "model.decoder_sizes"}
  assert joint["data.time_indices"] == tuple(range(10))
  assert joint["model.decoder_sizes"] == (64, 64, 10)


def test_every_config_override_in_the_readme_exists():
  with open(os.path.join(REPO, "README.md")) as f:
    readme = f.read()
  overrides = re.findall(r"--config\.([a-z_.]+)=", readme)
  assert overrides
  configs = {"bapst": bapst.get_config(), "simulate": simulate_ka.get_config()}
  for key in overrides:
    found = []
    for config in configs.values():
      node = config
      try:
        for part in key.split("."):
          node = node[part]
        found.append(key)
      except KeyError:
        pass
    assert found, f"README mentions --config.{key}, which no config has"


def test_ter2023_variant_trains(synthetic_dataset, tmp_path):
  config = ter2023.get_config("test")
  config.data.directory = synthetic_dataset
  config.data.time_index = 3
  train.train_and_evaluate(config, str(tmp_path))
  params, metadata = checkpoints.load_params(
      os.path.join(tmp_path, "checkpoints", "best.npz"))
  assert sorted(k for k in params if "processor_edge" in k)[-1] == (
      "bapst/~/processor_edge_6/~/linear_1")
  assert params["bapst/~/encoder_node/~/linear_0"]["w"].shape == (2, 64)
  assert params["bapst/~/decoder/~/linear_1"]["w"].shape == (64, 1)
  assert metadata.target_std != 1.0 and metadata.target_mean > 0
  assert all(np.all(np.isfinite(v)) for p in params.values()
             for v in jax.tree.leaves(p))


def test_gcn_departs_from_fast_in_its_network_only():
  """configs/gcn.py: the fast recipe's optimiser and targets, the GCN's
  network, the Bapst-only options back at their defaults."""
  config, reference = gcn.get_config("demo"), fast.get_config("demo")
  assert config.model.architecture == "gcn" and config.model.num_steps == 3
  assert config.optimizer == reference.optimizer
  assert config.data == reference.data and config.train == reference.train
  assert config.model.angular_channels == 0
  assert config.model.edge_features == "vector"
  with pytest.raises(ValueError, match="unknown preset 'finetune'"):
    gcn.get_config("finetune")

"""Checkpoint files: typed metadata round trip, older files, bad metadata."""

import dataclasses
import json
import threading

import numpy as np
import pytest

from glassy_jax.network import model_config
from glassy_jax.training import checkpoints


def _write_raw(path, metadata):
  """A checkpoint file as any version wrote it: arrays plus JSON."""
  np.savez(path, **{"['params']['m']['w']": np.ones((2, 3), np.float32),
                    checkpoints.METADATA_KEY: json.dumps(metadata)})
  return str(path)


def test_metadata_round_trip(tmp_path):
  metadata = checkpoints.CheckpointMetadata(
      model=model_config.ModelConfig(num_steps=3, edge_features="vector_rbf"),
      time_index=4, cutoff=2.5, target_mean=0.3, target_std=0.7,
      best_metric=0.61, config={"seed": 1})
  path = str(tmp_path / "a.npz")
  checkpoints.save(path, {"params": {"m": {"w": np.zeros(2)}}}, metadata)
  arrays, loaded = checkpoints.load(path)
  assert loaded == metadata
  assert list(arrays) == ["['params']['m']['w']"]
  # The manager (orbax) stamps the step without touching the rest.
  with checkpoints.CheckpointManager(str(tmp_path / "run")) as manager:
    path = manager.save(7, {"x": np.zeros(1)}, metadata)
  _, saved = checkpoints.load(path)
  assert saved == dataclasses.replace(metadata, step=7)


def test_joint_metadata_round_trip(tmp_path):
  """A joint model's time indices and per-index target scale, from the
  arrays training computes, come back as the tuples they were saved as."""
  metadata = checkpoints.CheckpointMetadata(
      model=model_config.ModelConfig(decoder_sizes=(64, 64, 3)),
      time_indices=[0, 4, 9],
      target_mean=np.array([0.1, 0.2, 0.3]),
      target_std=np.array([0.5, 1.0, 2.0], np.float32))
  assert metadata.time_indices == (0, 4, 9)
  assert metadata.target_mean == (0.1, 0.2, 0.3)
  assert metadata.target_std == (0.5, 1.0, 2.0)
  path = str(tmp_path / "joint.npz")
  checkpoints.save(path, {"params": {"m": {"w": np.zeros(2)}}}, metadata)
  _, loaded = checkpoints.load(path)
  assert loaded == metadata


def test_older_files_load_with_defaults(tmp_path):
  """A file from before the fast-variant options and target statistics."""
  old_model = {"mlp_sizes": [64, 64], "decoder_sizes": [64, 64, 1],
               "num_steps": 7, "shared_weights": True,
               "update_order": "sequential", "node_features": "type",
               "implementation": "fused"}
  path = _write_raw(tmp_path / "old.npz",
                    {"model_config": old_model, "time_index": 9,
                     "a_key_this_version_ignores": 1})
  params, metadata = checkpoints.load_params(path)
  assert metadata.model == model_config.ModelConfig()
  assert (metadata.time_index, metadata.time_indices, metadata.target_mean,
          metadata.target_std) == (9, (), 0.0, 1.0)
  assert params["m"]["w"].shape == (2, 3)


@pytest.mark.parametrize("metadata, message", [
    ({"time_index": 0}, "metadata has no model_config"),
    ({"model_config": {"num_layers": 3}}, r"unknown model option\(s\) "
     "num_layers"),
    ({"model_config": {"update_order": "backwards"}},
     "model.update_order must be one of"),
    ({"model_config": {}, "target_std": 0.0}, "target_std must be a positive"),
    ({"model_config": {}, "time_indices": [0, 9]},
     r"decoder_sizes\[-1\] is 1, time_indices \(0, 9\) needs 2"),
    ({"model_config": {"decoder_sizes": [64, 2]}},
     r"decoder_sizes\[-1\] is 2, time_indices \(\) needs 1"),
    ({"model_config": {"decoder_sizes": [64, 2]}, "time_indices": [0, 9],
      "target_mean": [0.1, 0.2, 0.3]}, "target_mean has 3 values for 2"),
    ({"model_config": {"decoder_sizes": [64, 2]}, "time_indices": [0, 9],
      "target_std": [1.0, -1.0]}, "target_std must be a positive"),
])
def test_bad_metadata_is_named(tmp_path, metadata, message):
  path = _write_raw(tmp_path / "bad.npz", metadata)
  with pytest.raises(checkpoints.CheckpointError, match=message):
    checkpoints.load(path)


def test_not_a_checkpoint(tmp_path):
  path = tmp_path / "plain.npz"
  np.savez(path, x=np.zeros(2))
  with pytest.raises(checkpoints.CheckpointError,
                     match="not a glassy_jax checkpoint"):
    checkpoints.load(str(path))


def test_another_architecture_is_named_by_its_options():
  from glassy_jax.configs import fast  # pylint: disable=g-import-not-at-top
  from glassy_jax.network import models  # pylint: disable=g-import-not-at-top
  model = model_config.ModelConfig.of(fast.get_config().model)
  params = {module: {name: np.zeros(shape, np.float32)
                     for name, shape in leaves.items()}
            for module, leaves in models.param_shapes(model).items()}
  with pytest.raises(checkpoints.CheckpointError) as error:
    checkpoints.restore_params("t044_s09", params, model)
  message = str(error.value)
  assert message.startswith("t044_s09 is another network than this config's")
  assert "edge_features='vector' (this config: 'vector_rbf')" in message
  assert "angular_channels=0 (this config: 8)" in message
  assert "\n" not in message
  # The same architecture restores, whatever the computation options.
  bapst_model = checkpoints.load_params("t044_s09")[1].model
  same = dataclasses.replace(bapst_model, implementation="reference")
  template = {module: {name: np.zeros(shape, np.float32)
                       for name, shape in leaves.items()}
              for module, leaves in models.param_shapes(same).items()}
  restored = checkpoints.restore_params("t044_s09", template, same)
  np.testing.assert_array_equal(
      restored["bapst/~/decoder/~/linear_0"]["w"],
      checkpoints.load_params("t044_s09")[0]["bapst/~/decoder/~/linear_0"]["w"])


def test_a_workdir_of_npz_steps_is_refused_not_restarted(tmp_path):
  """glassy_jax 0.2 wrote `ckpt-<step>.npz`; orbax lists none of them, so
  without this check a rerun would silently start again from step 0."""
  directory = tmp_path / "checkpoints"
  directory.mkdir()
  _write_raw(directory / "ckpt-000000008.npz", {"step": 8})
  with checkpoints.CheckpointManager(str(directory)) as manager:
    with pytest.raises(checkpoints.CheckpointError,
                       match=r"holds checkpoints of glassy_jax 0\.2 "
                       r"\(ckpt-000000008\.npz, \.\.\.\)"):
      manager.refuse_npz_steps()
    manager.save(0, {"w": np.ones(2, np.float32)}, checkpoints.
                 CheckpointMetadata(model=model_config.ModelConfig()))
    manager.wait()
    manager.refuse_npz_steps()  # A run already on orbax steps goes on.


def test_listing_beside_a_running_trainer_never_fails(tmp_path):
  """`glassy-evaluate --checkpoint=RUN/checkpoints` while the run trains:
  the run's keep-N deletes steps as it saves. orbax's own listing failed
  on reads made like this (a deleted step's metrics missing; BUILD_NOTES,
  "Reading a run while it trains"); ours lists what is complete, and
  always finds a step."""
  directory = str(tmp_path / "checkpoints")
  metadata = checkpoints.CheckpointMetadata(model=model_config.ModelConfig())
  writer = checkpoints.CheckpointManager(directory, keep=1, async_save=False)
  writer.save(0, {"w": np.zeros(3, np.float32)}, metadata)
  done, failures = threading.Event(), []

  def train():
    try:
      for step in range(1, 40):
        writer.save(step, {"w": np.full(3, step, np.float32)}, metadata)
    finally:
      done.set()

  thread = threading.Thread(target=train)
  thread.start()
  listings = 0
  while not done.is_set():
    try:
      assert checkpoints.complete_steps(directory)
    except Exception as e:  # pylint: disable=broad-except
      failures.append(repr(e))
    listings += 1
  thread.join()
  writer.close()
  assert listings > 10 and not failures, failures[:3]
  assert checkpoints.complete_steps(directory) == [39]

"""The typed model options: defaults, conversions, validation."""

import ml_collections
import pytest

from glassy_jax.configs import bapst
from glassy_jax.configs import fast
from glassy_jax.network import model_config


def test_training_configs_convert_both_ways():
  assert (model_config.ModelConfig.of(bapst.get_config().model)
          == model_config.ModelConfig())
  fast_model = model_config.ModelConfig.of(fast.get_config().model)
  assert fast_model.edge_features == "vector_rbf"
  assert fast_model.angular_channels == 8
  assert model_config.ModelConfig.of(fast_model.as_config_dict()) == fast_model
  # JSON gives lists; the typed form holds tuples (hashable, comparable).
  from_json = model_config.ModelConfig.of({"mlp_sizes": [32, 32]})
  assert from_json.mlp_sizes == (32, 32)
  assert isinstance(model_config.ModelConfig().as_config_dict(),
                    ml_collections.ConfigDict)


@pytest.mark.parametrize("options, message", [
    ({"compute_dtype": "float16"}, "model.compute_dtype must be one of"),
    ({"num_steps": 0}, "model.num_steps must be >= 1"),
    ({"edge_chunk_size": 1.5}, "model.edge_chunk_size must be an integer"),
    ({"angular_channels": True}, "model.angular_channels must be an integer"),
    ({"edge_chunk_size": 64, "implementation": "reference"},
     "needs model.implementation 'fused'"),
    ({"hidden": 3}, r"unknown model option\(s\) hidden"),
])
def test_bad_options_are_named(options, message):
  with pytest.raises(ValueError, match=message):
    model_config.ModelConfig.of(options)

"""What runs on the devices: the training state, the optimiser and the
pmapped step.

One update takes `graphs_per_device` graphs on each local device (DeepMind:
one graph, one device). Each device scores its own graphs; squared errors and
A-particle counts are summed across devices (all devices of all hosts)
before dividing, so a pmapped step is the step one device would take on the
whole global batch (a joint multi-time model, `data.time_indices`, has one
such mean squared error per time index and their mean as its loss). The
augmentation key of step s and graph g is fold_in(fold_in(key, s), g), the
same on any number of devices or hosts.
"""

from typing import Dict, NamedTuple, Tuple

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax

from glassy_jax.scoring import metrics as metrics_lib
from glassy_jax.training import distributed
from glassy_jax.training import input_pipeline
from glassy_jax.training import run_config


class TrainState(NamedTuple):
  params: hk.Params
  opt_state: optax.OptState
  step: jax.Array  # [] int32: steps taken so far.
  rng: jax.Array  # Base key; step s augments with fold_in(rng, s).
  lr_scale: jax.Array  # [] float32: 1, halved by each divergence rollback.


def init_train_state(params: hk.Params, optimizer: optax.GradientTransformation,
                     rng: jax.Array) -> TrainState:
  return TrainState(params, optimizer.init(params), np.int32(0), rng,
                    np.float32(1.0))


# ------------------------------------------------------------ optimisation
def make_optimizer(opt: run_config.OptimizerConfig,
                   steps_per_epoch: int, total_steps: int
                   ) -> optax.GradientTransformation:
  """Adam (AdamW with weight decay) after global-norm clipping, at the
  learning rate of `opt.schedule`."""
  if opt.schedule == "constant":
    schedule = optax.constant_schedule(opt.learning_rate)
  elif opt.schedule == "step":
    schedule = optax.exponential_decay(
        opt.learning_rate, transition_steps=opt.step_epochs * steps_per_epoch,
        decay_rate=opt.step_gamma, staircase=True)
  elif opt.schedule == "cosine":
    warmup = opt.warmup_steps
    schedule = (optax.warmup_cosine_decay_schedule(
        0.0, opt.learning_rate, warmup, max(total_steps, warmup + 1))
                if warmup else
                optax.cosine_decay_schedule(opt.learning_rate, total_steps))
  else:
    raise ValueError(f"optimizer.schedule must be constant, step or cosine, "
                     f"got {opt.schedule!r}")
  clip = ([optax.clip_by_global_norm(opt.clip_global_norm)]
          if opt.clip_global_norm > 0 else [])
  # Decoupled weight decay (AdamW) when optimizer.weight_decay > 0.
  decay = ([optax.add_decayed_weights(opt.weight_decay)]
           if opt.weight_decay > 0 else [])
  # The descriptor readout kept at its ridge start: the rest learns the
  # residual.
  frozen = ([optax.masked(optax.set_to_zero(), _readout_mask)]
            if opt.freeze_readout else [])
  return optax.chain(*clip, optax.scale_by_adam(opt.b1, opt.b2, opt.eps),
                     *decay, optax.scale_by_learning_rate(schedule), *frozen)


def _readout_mask(params: hk.Params) -> hk.Params:
  return {module: {name: module.endswith("descriptor_readout")
                   for name in leaves} for module, leaves in params.items()}


def augment_edges(rng: jax.Array, edges: jax.Array) -> jax.Array:
  """A random permutation of the x, y, z axes and a random sign per axis."""
  perm_key, sign_key = jax.random.split(rng)
  permutation = jax.random.permutation(perm_key, 3)
  signs = jax.random.rademacher(sign_key, (3,), dtype=edges.dtype)
  return edges[:, permutation] * signs


def make_train_step(network: hk.Transformed,
                    optimizer: optax.GradientTransformation,
                    augment: bool, bond_weight: float = 0.0):
  """The pmapped update: state and batch carry a leading device axis.

  `bond_weight` > 0 adds that times the mean squared error of the bond
  outputs over the batch's real pairs (`batch.edge_mask`), summed across
  devices like the propensity's; the metrics then hold both terms.
  """

  def train_step(state: TrainState, batch: input_pipeline.Batch
                 ) -> Tuple[TrainState, Dict[str, jax.Array]]:
    graph = batch.graph
    if augment:
      # Keyed by step and graph, not by device: the same run on any number
      # of devices or hosts draws the same rotations.
      key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step),
                               batch.first_graph)
      graph = graph._replace(edges=augment_edges(key, graph.edges))
    count = jax.lax.psum(jnp.sum(batch.loss_mask), distributed.AXIS)
    if bond_weight:
      pairs = jax.lax.psum(jnp.sum(batch.edge_mask), distributed.AXIS)

    def loss_fn(params):
      if not bond_weight:
        predictions = network.apply(params, None, graph)
      else:
        predictions, bonds = network.apply(params, None, graph, bonds=True)
      sse, _ = metrics_lib.masked_squared_error_sum(
          predictions, batch.targets, batch.loss_mask)
      propensity_loss = jnp.mean(sse / count)  # Over time indices, if several.
      if not bond_weight:
        return propensity_loss, {}
      bond_sse, _ = metrics_lib.masked_squared_error_sum(
          bonds, batch.edge_targets, batch.edge_mask)
      bond_loss = bond_sse / pairs
      return (propensity_loss + bond_weight * bond_loss,
              {"propensity_loss": propensity_loss, "bond_loss": bond_loss})

    (local_loss, local_terms), local_grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.params)
    loss = jax.lax.psum(local_loss, distributed.AXIS)
    terms = jax.lax.psum(local_terms, distributed.AXIS)
    grads = jax.lax.psum(local_grads, distributed.AXIS)
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(
        state.params, jax.tree.map(lambda u: u * state.lr_scale, updates))
    # A non-finite loss or gradient leaves parameters and moments untouched.
    params, opt_state = jax.tree.map(
        lambda new, old: jnp.where(finite, new, old),
        (params, opt_state), (state.params, state.opt_state))
    new_state = state._replace(params=params, opt_state=opt_state,
                               step=state.step + 1)
    return new_state, {"loss": loss, "grad_norm": grad_norm,
                       "finite": finite, **terms}

  return jax.pmap(train_step, axis_name=distributed.AXIS,
                  donate_argnums=(0,))

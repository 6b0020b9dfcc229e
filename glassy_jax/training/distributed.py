"""Devices and hosts: process start-up, replication, small exchanges.

Training runs one process per host (multi-controller JAX). Each process
drives its local devices with `pmap`; once `jax.distributed.initialize` has
run, the collectives inside the pmapped step (`psum`) span every device of
every host, so gradients are summed over the whole global batch. Outside the
step, hosts exchange only a few small arrays through the helpers here (graph
sizes at start-up, evaluation results, a stop flag). `replicate` and
`unreplicate` move the training state between the host and the local devices.
"""

from typing import Any, Tuple

from absl import logging
import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np

from glassy_jax import errors

# The pmap axis of the training step: every device of every host.
AXIS = "devices"


def initialize(config: ml_collections.ConfigDict) -> None:
  """Joins the cluster when `config.distributed.enabled`; else does nothing.

  Must run before anything touches a JAX backend. Fields left unset
  (address "", processes 0, id -1, device ids "") are detected by JAX from
  the environment: SLURM (`srun`), Open MPI, Cloud TPU pods; a bare
  multi-process CPU run needs all of address, processes and id.
  """
  settings = config.distributed
  if not settings.enabled:
    return
  # The CPU backend needs a collectives implementation for cross-process
  # psum (older jaxlibs default to none); accelerators ignore this setting.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  try:
    device_ids = [int(i) for i in settings.local_device_ids.split(",") if i]
    jax.distributed.initialize(
        coordinator_address=settings.coordinator_address or None,
        num_processes=settings.num_processes or None,
        process_id=(settings.process_id if settings.process_id >= 0
                    else None),
        local_device_ids=device_ids or None)
  except ValueError as e:  # Settings JAX cannot use, or cannot detect.
    raise errors.ConfigError(str(e)) from None
  logging.info("process %d of %d, %d local / %d global devices",
               jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())


def allgather_rows(rows: np.ndarray) -> np.ndarray:
  """Concatenates every process's `rows` (along axis 0) in process order.

  Row counts may differ between processes; trailing shape and dtype may not.
  Rows travel as raw bytes so float64 and int64 survive without x64 mode.
  With one process, returns `rows` untouched.
  """
  if jax.process_count() == 1:
    return rows
  rows = np.ascontiguousarray(rows)
  counts = multihost_utils.process_allgather(np.int32(len(rows)))
  raw = rows.view(np.uint8).reshape(len(rows), -1)
  padded = np.zeros((int(counts.max()), raw.shape[1]), np.uint8)
  padded[:len(rows)] = raw
  gathered = np.asarray(multihost_utils.process_allgather(padded))
  joined = np.concatenate([g[:c] for g, c in zip(gathered, counts)])
  return joined.view(rows.dtype).reshape((-1,) + rows.shape[1:])


def any_process(*flags: bool) -> Tuple[bool, ...]:
  """Each flag, true when it is true on any process (e.g. one host got
  SIGTERM): one exchange for all of them."""
  if jax.process_count() == 1:
    return flags
  gathered = multihost_utils.process_allgather(np.array(flags, np.int32))
  return tuple(bool(flag) for flag in gathered.any(axis=0))


def replicate(tree: Any, num_devices: int = 0) -> Any:
  """One copy per local device (or the first `num_devices`), laid out as pmap
  lays out its outputs, so the first step compiles once, not twice."""
  devices = jax.local_devices()[:num_devices or None]
  sharding = jax.sharding.NamedSharding(
      jax.sharding.Mesh(np.array(devices), (AXIS,)),
      jax.sharding.PartitionSpec(AXIS))
  return jax.tree.map(
      lambda x: jax.device_put(
          np.broadcast_to(np.asarray(x), (len(devices),) + np.shape(x)),
          sharding), tree)


def unreplicate(tree: Any) -> Any:
  """The first device's copy, on the host."""
  return jax.tree.map(lambda x: np.asarray(jax.device_get(x[0])), tree)

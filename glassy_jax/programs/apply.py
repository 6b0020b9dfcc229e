r"""Predicts propensities with a trained (or DeepMind's published) network:
`glassy-apply`.

  python -m glassy_jax.programs.apply --checkpoint=runs/x/best.npz \
      --input='frames/*.dump' --output=propensity.npz
  python -m glassy_jax.programs.apply --checkpoint=t044_s09 \
      --input=start.data --output=start_propensity.dump --format=lammps

Checkpoints and inputs are those `glassy_jax.inference.apply` reads. `OUT.npz` holds
`predictions` and `types` ([n_frames, N], or [N] for one frame), `files`
(each frame's source) and, when every input carries targets, `targets` and
per-frame Pearson correlations `pearson_a` / `pearson_b`. `--format=lammps`
writes a dump with a per-atom `propensity` column instead.

A joint multi-time checkpoint predicts every one of its time indices at
once: `predictions` and `targets` are [n_frames, N, K] ([N, K] for one
frame), column k being time index `time_indices[k]` (also stored, [K]);
`pearson_a` / `pearson_b` are [n_frames, K] ([K]); dumps get one column
`propensity_t{index}` per index.
"""

from typing import Dict, Sequence

from absl import flags
import numpy as np

from glassy_jax.formats import data
from glassy_jax.formats import lammps_io
from glassy_jax.inference import apply
from glassy_jax.programs import cli
from glassy_jax.scoring import metrics
from glassy_jax.training import checkpoints


def _define_flags() -> None:
  cli.define_checkpoint_flag()
  flags.DEFINE_string("input", None, "Input file or glob: DeepMind "
                      "pickle/.npz, LAMMPS dump or data file.")
  flags.DEFINE_string("output", None, "Output file.")
  flags.DEFINE_integer("time_index", None, "Target time index of DeepMind "
                       "inputs (default: the checkpoint's; a joint "
                       "checkpoint's are its own).")
  flags.DEFINE_enum("format", "npz", ["npz", "lammps"], "npz arrays, or a "
                    "LAMMPS dump with a per-atom propensity column (one per "
                    "time index of a joint checkpoint).")
  flags.DEFINE_integer("batch_size", 4, "Frames per forward pass.",
                       lower_bound=1)
  flags.DEFINE_integer("edge_chunk_size", None, "Edges per chunk of the "
                       "forward pass (bounded memory for large systems; "
                       "0 = off; default: the checkpoint's).", lower_bound=0)
  flags.mark_flags_as_required(["checkpoint", "input", "output"])


def main(args: flags.FlagValues) -> None:
  predict_fn, metadata = apply.load_model(args.checkpoint,
                                          args.edge_chunk_size)
  if metadata.time_indices and args.time_index is not None:
    raise data.DataError(
        f"--time_index: {args.checkpoint} is a joint model of time indices "
        f"{metadata.time_indices}; leave it unset")
  time_index = (args.time_index if args.time_index is not None
                else metadata.time_index)
  indices = metadata.time_indices or (time_index,)
  frames = [frame for path in apply.input_files(args.input)
            for frame in apply.read_frames(
                path, metadata.time_indices or time_index)]
  sizes = sorted({len(f.snapshot.types) for f in frames})
  if len(sizes) > 1:
    raise data.DataError(f"{args.input}: frames have different particle "
                         f"counts ({sizes}); apply them separately")
  snapshots = [f.snapshot for f in frames]
  predictions = np.stack(apply.predict_snapshots(
      predict_fn, snapshots,
      inputs=metadata.input_spec(), batch_size=args.batch_size,
      progress=len(frames) > args.batch_size))
  types = np.stack([s.types for s in snapshots])
  arrays = {"predictions": predictions, "types": types,
            "files": np.array([s.name for s in snapshots])}
  if all(s.targets is not None for s in snapshots):
    targets = np.stack([s.targets for s in snapshots])
    arrays["targets"] = targets
    arrays.update(_pearson(predictions, targets, types, metadata, indices))
  if args.format == "lammps":
    if metadata.time_indices:
      columns = {f"propensity_t{index}": np.stack(
          apply.at_time_index(predictions, metadata, index))
                 for index in indices}
    else:
      columns = {"propensity": predictions}
    lammps_io.write_dump(args.output, [f.lammps for f in frames],
                         extra_columns=columns)
  else:
    if len(frames) == 1:
      arrays = {k: v[0] if v.ndim else v for k, v in arrays.items()}
    if metadata.time_indices:
      arrays["time_indices"] = np.array(metadata.time_indices)
    apply.save_npz(args.output, arrays)
  print(f"wrote {args.output} ({len(frames)} frame(s) of {sizes[0]} "
        "particles)")


def _pearson(predictions: np.ndarray, targets: np.ndarray, types: np.ndarray,
             metadata: checkpoints.CheckpointMetadata,
             indices: Sequence[int]) -> Dict[str, np.ndarray]:
  """Per-frame Pearson r on A and on B (per time index of a joint model),
  with their means over frames printed."""
  pearson = {}  # [K, n_frames] each.
  for label, kind in (("a", 0), ("b", 1)):
    pearson[label] = np.array([
        [metrics.pearson(p[t == kind], y[t == kind]) for p, y, t in zip(
            apply.at_time_index(predictions, metadata, index),
            apply.at_time_index(targets, metadata, index), types)]
        for index in indices])
  for index, pearson_a, pearson_b in zip(indices, pearson["a"],
                                         pearson["b"]):
    print(f"time index {index}: Pearson r over {len(types)} frame(s): "
          f"A {np.nanmean(pearson_a):.4f}, B {np.nanmean(pearson_b):.4f}")
  return {f"pearson_{label}": (values.T if metadata.time_indices
                               else values[0])
          for label, values in pearson.items()}


def run() -> None:
  cli.run(main, _define_flags)


if __name__ == "__main__":
  run()

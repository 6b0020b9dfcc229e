r"""A TensorFlow 1 checkpoint of DeepMind's network as this project's `.npz`
checkpoint: `glassy-convert-tf`.

  python -m glassy_jax.programs.convert_tf \
      --tf_checkpoint=tests/testdata/deepmind/t044_s09.ckpt \
      --output=glassy_jax/pretrained/t044_s09.npz --time_index=0

Read without TensorFlow (`glassy_jax.network.tf_checkpoint`); the output loads in
`apply`, `evaluate` and `run_training --config.init_from`.
"""

from absl import flags

from glassy_jax.formats import data
from glassy_jax.programs import cli
from glassy_jax.training import checkpoints


def _define_flags() -> None:
  flags.DEFINE_string("tf_checkpoint", None,
                      "TF checkpoint prefix (PREFIX.index must exist).")
  flags.DEFINE_string("output", None, "Checkpoint to write (.npz).")
  flags.DEFINE_integer("time_index", 0, "Time index the checkpoint was "
                       "trained on (0 for t044_s09: IS = 0.9).",
                       lower_bound=0, upper_bound=data.NUM_TIME_INDICES - 1)
  flags.mark_flags_as_required(["tf_checkpoint", "output"])


def main(args: flags.FlagValues) -> None:
  params, metadata = checkpoints.load_tf(args.tf_checkpoint, args.time_index)
  checkpoints.save(args.output, {"params": params}, metadata)
  size = sum(p.size for module in params.values() for p in module.values())
  print(f"wrote {args.output} ({size} parameters)")


def run() -> None:
  cli.run(main, _define_flags)


if __name__ == "__main__":
  run()

"""What every program of the package shares.

Each program is a thin `main(args)` over library functions, `args` being
the parsed absl flags. `run` defines its flags, parses them, and turns the
errors a user can fix (`errors.UserError`: bad data, a checkpoint that does
not fit, a config value that cannot be used; `OSError`: a file that cannot
be read or written; bad or missing flags) into `error: ...` lines and exit
status 1, never a traceback.
"""

import difflib
import importlib.util
import logging as python_logging
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence

from absl import app
from absl import flags
import ml_collections
from ml_collections import config_flags

import glassy_jax
from glassy_jax import errors
from glassy_jax.formats import storage
import glassy_jax.configs
from glassy_jax.formats import atomic
from glassy_jax.simulation import build_system
from glassy_jax.training import input_pipeline

CONFIG_DIR = os.path.dirname(glassy_jax.configs.__file__)


class UsageError(errors.UserError, ValueError):
  """Flags that do not go together, or a missing one."""


def require(args: flags.FlagValues, context: str, *names: str) -> None:
  """Raises `UsageError` naming every flag of `names` left unset."""
  missing = [f"--{name}" for name in names if getattr(args, name) is None]
  if missing:
    raise UsageError(f"{context} needs {' '.join(missing)}")


def dataset_directory(path: str, flag: str = "--data") -> str:
  """`path` when it is a directory (a dataset's, with train/ and test/
  inside; local or a bucket URL); `demo`, unless a directory of that name exists, is the bundled
  demo dataset. Else raises `UsageError`."""
  if path == "demo" and not os.path.exists(path):
    return input_pipeline.DEMO_DATA
  if storage.isfile(path):
    raise UsageError(f"{flag}={path} is a file; {flag} takes a dataset "
                     "directory (with train/ and test/ inside)")
  if not storage.isdir(path):
    raise UsageError(f"{path}: no such directory")
  return path


def define_checkpoint_flag() -> None:
  """`--checkpoint`, read by `checkpoints.load_params`: the forms it takes."""
  flags.DEFINE_string("checkpoint", None,
                      "A run's checkpoints directory (its newest step), one "
                      "step directory (ckpt_000000120), a .npz checkpoint "
                      "(best.npz), a TF checkpoint prefix or a bundled name "
                      "(t044_s09); local or a gs:// URL.")


# The flags `define_physics_flags` defines: keywords of
# `build_system.build_system_from_dumps` (and of `build_dataset`).
PHYSICS_FLAGS = ("temperature", "pressure", "dt", "start_timestep", "q",
                 "allow_partial")


def define_physics_flags() -> None:
  """The runs' physics, for the programs that build systems from LAMMPS
  dumps (build_system, build_dataset): defined once so that both take the
  same flags with the same meaning. `physics_kwargs` reads them."""
  flags.DEFINE_float("temperature", float("nan"), "Stored in metadata.")
  flags.DEFINE_float("pressure", float("nan"), "Stored in metadata.")
  flags.DEFINE_float("dt", build_system.LJ_TIMESTEP,
                     "MD timestep of the runs (time = steps * dt).")
  flags.DEFINE_integer("start_timestep", None,
                       "The runs' timestep of the initial structure "
                       "(default: the runs' first frame, which must equal "
                       "it).")
  flags.DEFINE_float("q", build_system.SCATTERING_Q,
                     "Wavenumber of Fs(q, t) (the first peak of S_AA(q)).")
  flags.DEFINE_bool("allow_partial", False,
                    "Keep only the Fs values the runs reach.")


def physics_kwargs(args: flags.FlagValues) -> Dict[str, Any]:
  """The flags of `define_physics_flags` as keyword arguments."""
  return {name: getattr(args, name) for name in PHYSICS_FLAGS}


def named_configs() -> List[str]:
  """The configs that ship with the package, by name."""
  return sorted(name[:-3] for name in os.listdir(CONFIG_DIR)
                if name.endswith(".py") and not name.startswith("_"))


def config_file(spec: str) -> str:
  """`NAME[:preset]` of a shipped config as its file (`bapst` ->
  .../configs/bapst.py); a path that exists, or anything else, unchanged."""
  name, colon, preset = spec.partition(":")
  if os.path.exists(name):
    return spec
  stem = name[:-3] if name.endswith(".py") else name
  if os.sep not in stem and stem in named_configs():
    return os.path.join(CONFIG_DIR, stem + ".py") + colon + preset
  return spec


def define_config_flag(default: str, help_text: str, **kwargs) -> None:
  """`--config`: a shipped config by name or a config file by path, with
  `:preset` and `--config.KEY=VALUE` overrides."""
  config_flags.DEFINE_config_file(
      "config", config_file(default),
      f"{help_text} A shipped config by name ({', '.join(named_configs())}"
      "), or a config file; `:preset` after either.", **kwargs)


def _with_config_files(argv: Sequence[str]) -> List[str]:
  """`--config=NAME[:preset]` (or `--config NAME`) as the shipped file."""
  argv = list(argv)
  for i, word in enumerate(argv):
    if word.startswith("--config="):
      argv[i] = "--config=" + _existing_config(word[len("--config="):])
    elif word == "--config" and i + 1 < len(argv):
      argv[i + 1] = _existing_config(argv[i + 1])
  return argv


def _existing_config(spec: str) -> str:
  """`config_file(spec)`, or exits with one line when there is none."""
  path = config_file(spec)
  if not os.path.exists(path.partition(":")[0]):
    sys.exit(f"error: --config={spec}: no such file and no shipped config "
             f"of that name ({', '.join(named_configs())})")
  return path


def _unknown_config_key(argv: Sequence[str]) -> Optional[str]:
  """For an override of a key the config lacks: one line naming the
  closest key. None when every override names a key (or no config loads)."""
  specs = [w[len("--config="):] for w in argv if w.startswith("--config=")]
  if specs:
    spec = specs[-1]
  elif "config" in flags.FLAGS:
    spec = flags.FLAGS["config"].default_as_str.strip("'\"")
  else:
    return None
  path, _, preset = spec.partition(":")
  try:
    module_spec = importlib.util.spec_from_file_location("_config", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(preset) if preset else module.get_config()
  except Exception:  # pylint: disable=broad-except
    return None  # The config's own error is the one to show.
  keys = list(_flat_keys(config))
  for word in argv:
    if word.startswith("--config."):
      key = word[len("--config."):].split("=")[0]
      if key not in keys:
        close = difflib.get_close_matches(key, keys, n=1, cutoff=0.5)
        hint = f"; did you mean config.{close[0]}?" if close else ""
        return f"--config.{key}: the config has no such key{hint}"
  return None


def _flat_keys(config, prefix: str = ""):
  """Every leaf key of a ConfigDict as a dotted path."""
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      yield from _flat_keys(value, f"{prefix}{key}.")
    else:
      yield f"{prefix}{key}"


def parse_indices(text: Optional[Sequence[str]]) -> Optional[List[int]]:
  """A `--time_indices` list flag as integers (None: all)."""
  if not text:
    return None
  try:
    return [int(k) for k in text]
  except ValueError:
    raise UsageError(
        f"--time_indices must be integers, got {','.join(text)}") from None


def _parse_flags(argv: Sequence[str]) -> Sequence[str]:
  """absl parsing, with bad flags, config files and overrides told in one
  line."""
  if "--version" in argv:  # Before required flags are asked for.
    print(f"glassy_jax {glassy_jax.__version__}")
    sys.exit(0)
  argv = _with_config_files(argv)
  try:
    argv = flags.FLAGS(argv)
    for value in flags.FLAGS.flag_values_dict().values():
      if isinstance(value, ml_collections.ConfigDict):
        value.keys()  # Config files load lazily: surface their errors here.
  except (flags.Error, AttributeError, KeyError, OSError, TypeError,
          ValueError) as e:
    unknown = _unknown_config_key(argv)
    if unknown:
      sys.exit(f"error: {unknown}")
    text = str(e).replace("\\n", "\n").replace("\\'", "")
    if "Traceback" in text:  # config_flags embeds get_config's traceback.
      text = text.strip().splitlines()[-1]
    sys.exit(f"error: bad flag or config: {' '.join(text.split())}")
  return argv


def _message(error: BaseException) -> str:
  """One line: an OSError as `PATH: reason`, not `[Errno 2] ...: 'PATH'`."""
  if (isinstance(error, OSError) and not isinstance(error, atomic.WriteError)
      and error.filename and error.strerror):
    return f"{error.filename}: {error.strerror}"
  return str(error)


def _define_program_flags(define_flags: Callable[[], None],
                          main: Callable[..., None]) -> None:
  """Defines the program's flags and `--version`, and makes them the ones
  `--help` lists with the program's docstring: absl lists the flags of the
  main module, which is not the program's for a console script, and not
  the module that defines a shared flag (`define_checkpoint_flag`)."""
  before = set(flags.FLAGS)
  define_flags()
  flags.DEFINE_bool("version", False, "Print the glassy_jax version and exit.")
  for name in sorted(set(flags.FLAGS) - before):
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[name])
  main_module = sys.modules["__main__"]
  if not main_module.__doc__:
    main_module.__doc__ = sys.modules[main.__module__].__doc__


def _without_orbax_info(record: python_logging.LogRecord) -> bool:
  """orbax-checkpoint logs some thirty INFO lines per save (its threads,
  barriers, renames), three times the training's own: its warnings and
  errors stay in the log, the rest goes."""
  return (record.levelno >= python_logging.WARNING
          or f"{os.sep}orbax{os.sep}" not in record.pathname)


def run(main: Callable[..., None], define_flags: Callable[[], None],
        commands: Sequence[str] = ()) -> None:
  """Defines the program's flags and runs `main(flags)`, with one-line
  errors.

  `commands`: when given, the program takes one of them as its positional
  argument and runs `main(flags, command)`; otherwise positional arguments
  are refused.
  """
  _define_program_flags(define_flags, main)
  # JAX reports at INFO each backend it could not start (TPU on every
  # machine without one): not a problem, and not the user's.
  python_logging.getLogger("jax._src.xla_bridge").setLevel(
      python_logging.WARNING)
  python_logging.getLogger("absl").addFilter(_without_orbax_info)

  def program(argv: Sequence[str]) -> None:
    words = list(argv[1:])
    if commands and (len(words) != 1 or words[0] not in commands):
      sys.exit(f"error: expected one command out of {', '.join(commands)}"
               f", got {' '.join(words) or 'none'}")
    if not commands and words:
      sys.exit(f"error: unexpected arguments {' '.join(words)}")
    try:
      main(flags.FLAGS, *words)
    except (errors.UserError, OSError) as e:
      # One line per problem (a config can have several bad values).
      sys.exit("\n".join(f"error: {line}"
                         for line in _message(e).splitlines() or [""]))

  app.run(program, flags_parser=_parse_flags)

"""What every program of the package shares.

Each program is a thin `main(args)` over library functions, `args` being
the parsed absl flags. `run` defines its flags, parses them, and turns the
errors a user can fix (`errors.UserError`: bad data, a checkpoint that does
not fit, a config value that cannot be used; `OSError`: a file that cannot
be read or written; bad or missing flags) into `error: ...` lines and exit
status 1, never a traceback.
"""

import sys
from typing import Callable, List, Optional, Sequence

from absl import app
from absl import flags
import ml_collections

from glassy_jax import errors
from glassy_jax.formats import atomic


class UsageError(errors.UserError, ValueError):
  """Flags that do not go together, or a missing one."""


def require(args: flags.FlagValues, context: str, *names: str) -> None:
  """Raises `UsageError` naming every flag of `names` left unset."""
  missing = [f"--{name}" for name in names if getattr(args, name) is None]
  if missing:
    raise UsageError(f"{context} needs {' '.join(missing)}")


def define_checkpoint_flag() -> None:
  """`--checkpoint`, read by `checkpoints.load_params`: the forms it takes."""
  flags.DEFINE_string("checkpoint", None,
                      "Project checkpoint (.npz), TF checkpoint prefix or "
                      "bundled name (t044_s09).")


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
  try:
    argv = flags.FLAGS(argv)
    for value in flags.FLAGS.flag_values_dict().values():
      if isinstance(value, ml_collections.ConfigDict):
        value.keys()  # Config files load lazily: surface their errors here.
  except (flags.Error, AttributeError, KeyError, OSError, TypeError,
          ValueError) as e:
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


def run(main: Callable[..., None], define_flags: Callable[[], None],
        commands: Sequence[str] = ()) -> None:
  """Defines the program's flags and runs `main(flags)`, with one-line
  errors.

  `commands`: when given, the program takes one of them as its positional
  argument and runs `main(flags, command)`; otherwise positional arguments
  are refused.
  """
  define_flags()

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

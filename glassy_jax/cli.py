"""What every command-line program of the package shares.

Each program is a thin `main(args)` over library functions. `run` defines
its flags, parses them, and turns the errors a user can fix (bad data, a
checkpoint that does not fit, a file that cannot be read or written, a
missing flag) into one `error: ...` line and exit status 1, never a
traceback. Programs are installed as `glassy-*` commands (setup.py) and keep
working as `python -m glassy_jax.<module>`.
"""

import sys
from typing import Callable, Optional, Sequence, Tuple, Type

from absl import app
from absl import flags

from glassy_jax import checkpoints
from glassy_jax import data

# Errors whose message is a whole sentence about the user's input.
USER_ERRORS: Tuple[Type[BaseException], ...] = (
    data.DataError, checkpoints.CheckpointError, OSError)


class UsageError(ValueError):
  """Flags that do not go together, or a missing one."""


def require(args: flags.FlagValues, context: str, *names: str) -> None:
  """Raises `UsageError` naming every flag of `names` left unset."""
  missing = [f"--{name}" for name in names if getattr(args, name) is None]
  if missing:
    raise UsageError(f"{context} needs {' '.join(missing)}")


def run(main: Callable[[Sequence[str]], None],
        define_flags: Optional[Callable[[], None]] = None,
        positional: Sequence[str] = ()) -> None:
  """Runs `main(positional args)` as a program, with one-line errors.

  `positional`: the words allowed as positional arguments (one command out
  of them is then required); empty, none is accepted.
  """
  if define_flags is not None:
    define_flags()

  def program(argv: Sequence[str]) -> None:
    words = list(argv[1:])
    if positional and (len(words) != 1 or words[0] not in positional):
      sys.exit(f"error: expected one command out of {', '.join(positional)}"
               f", got {' '.join(words) or 'none'}")
    if not positional and words:
      sys.exit(f"error: unexpected arguments {' '.join(words)}")
    try:
      main(words)
    except USER_ERRORS + (UsageError,) as e:
      sys.exit(f"error: {e}")

  app.run(program)

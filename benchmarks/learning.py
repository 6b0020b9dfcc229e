"""Time to accuracy: trains recipes from scratch, test correlation vs wall time.

  python benchmarks/learning.py                 # DeepMind's recipe, then the fast one
  python benchmarks/learning.py --budget_s=300 \
      --recipe=fast3=configs/fast.py:demo,model.num_steps=3

A recipe is NAME=CONFIG[:PRESET][,KEY=VALUE,...] (KEY=VALUE as
`--config.KEY=VALUE` of run_training.py). Recipes train one after another,
each with `run_training.py` in a new work folder OUTPUT/NAME, stopped
after `--budget_s` wall seconds (data loading and compilation included) and
evaluated on the test split every `--eval_every` steps. Writes
OUTPUT/NAME/metrics.jsonl, OUTPUT/summary.md (steps and seconds to r = 0.3
and 0.5, best r within the budget) and OUTPUT/learning.png (r vs wall time).
"""

import os
import subprocess
import sys
from typing import Dict, List, Sequence, Tuple

from absl import app
from absl import flags
from absl import logging

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
# pylint: disable=g-import-not-at-top,wrong-import-position
from glassy_jax.formats import atomic
from glassy_jax.inference import plotting
# pylint: enable=g-import-not-at-top,wrong-import-position

THRESHOLDS = (0.3, 0.5)

_RECIPES = flags.DEFINE_multi_string(
    "recipe", ["deepmind=configs/bapst.py:demo,train.num_epochs=1000",
               "fast=configs/fast.py:demo"],
    "NAME=CONFIG[:PRESET][,KEY=VALUE,...]; repeat for several.")
_BUDGET = flags.DEFINE_float("budget_s", 600.0, "Wall seconds per recipe.")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", 20, "Steps between tests.")
_OUTPUT = flags.DEFINE_string("output", "runs/learning", "Output folder.")


def parse_recipe(recipe: str) -> Tuple[str, str, List[str]]:
  """'NAME=CONFIG[:PRESET][,KEY=VALUE,...]' -> (NAME, CONFIG[:PRESET],
  ['--config.KEY=VALUE', ...])."""
  name, sep, spec = recipe.partition("=")
  if not sep or not name or not spec:
    raise app.UsageError(
        f"recipe {recipe!r} is not NAME=CONFIG[:PRESET][,KEY=VALUE,...]")
  config, *overrides = spec.split(",")
  return name, config, [f"--config.{override}" for override in overrides]


def first_reaching(records: Sequence[Dict], threshold: float) -> Dict:
  """The first test record with pearson_a >= threshold, or {}."""
  return next((r for r in records if r["pearson_a"] >= threshold), {})


def summary_table(results: Dict[str, List[Dict]], budget: float) -> str:
  """Markdown: per recipe, steps/seconds to each threshold and the best r."""
  header = ["recipe"] + [f"steps / s to r = {t}" for t in THRESHOLDS] + [
      f"best r in {budget:.0f} s (step, s)"]
  rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for name, records in results.items():
    cells = [name]
    for threshold in THRESHOLDS:
      hit = first_reaching(records, threshold)
      cells.append(f"{hit['step']} / {hit['elapsed_s']:.0f}" if hit
                   else "not reached")
    best = max(records, key=lambda r: r["pearson_a"])
    cells.append(f"{best['pearson_a']:.3f} ({best['step']}, "
                 f"{best['elapsed_s']:.0f})")
    rows.append("| " + " | ".join(cells) + " |")
  return "\n".join(rows) + "\n"


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  recipes = {name: (config, overrides) for name, config, overrides in
             map(parse_recipe, _RECIPES.value)}
  if len(recipes) < len(_RECIPES.value):
    raise app.UsageError("two recipes share a name")
  workdirs = {name: os.path.join(_OUTPUT.value, name) for name in recipes}
  for workdir in workdirs.values():
    if os.path.exists(workdir):  # Would resume: a benchmark starts afresh.
      raise app.UsageError(f"{workdir} exists; remove it or pick --output")
  for name, (config, overrides) in recipes.items():
    # Each recipe in its own process: a fresh JAX (no compilation cache
    # shared between recipes), and Ctrl-C stops the benchmark, not a recipe.
    command = ([sys.executable, os.path.join(REPO, "run_training.py"),
                f"--config={config}", f"--workdir={workdirs[name]}",
                f"--config.train.time_budget_s={_BUDGET.value}",
                f"--config.train.eval_every={_EVAL_EVERY.value}"] +
               overrides)  # Last, so that a recipe's overrides win.
    logging.info("recipe %s: %s", name, " ".join(command))
    if subprocess.run(command, cwd=REPO, check=False).returncode:
      sys.exit(f"error: recipe {name} failed (its output is above)")
  results = {name: plotting.read_metrics(workdir)["test"]
             for name, workdir in workdirs.items()}
  table = summary_table(results, _BUDGET.value)
  with atomic.atomic_write(os.path.join(_OUTPUT.value, "summary.md"),
                           "w") as f:
    f.write(table)
  plotting.save(plotting.time_to_accuracy(workdirs, THRESHOLDS),
                os.path.join(_OUTPUT.value, "learning.png"))
  print(table)


if __name__ == "__main__":
  app.run(main)

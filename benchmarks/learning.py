"""Time to accuracy: trains recipes from scratch, test correlation vs wall time.

  python benchmarks/learning.py                 # DeepMind's recipe, then the fast one
  python benchmarks/learning.py --budget_s=300 \
      --recipe=fast3=configs/fast.py:demo,model.num_steps=3

A recipe is NAME=CONFIG[:PRESET][,KEY=VALUE,...]. Recipes train one after
another in this process with the real training loop
(`train.train_and_evaluate`), each in a new work folder OUTPUT/NAME, stopped
after `--budget_s` wall seconds (data loading and compilation included) and
evaluated on the test split every `--eval_every` steps. Writes
OUTPUT/NAME/metrics.jsonl, OUTPUT/summary.md (steps and seconds to r = 0.3
and 0.5, best r within the budget) and OUTPUT/learning.png (r vs wall time).
"""

import ast
import importlib.util
import os
import sys
from typing import Dict, List, Sequence, Tuple

from absl import app
from absl import flags
from absl import logging
import ml_collections

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
# pylint: disable=g-import-not-at-top,wrong-import-position
from glassy_jax import atomic
from glassy_jax import plotting
from glassy_jax import train
# pylint: enable=g-import-not-at-top,wrong-import-position

THRESHOLDS = (0.3, 0.5)

_RECIPES = flags.DEFINE_multi_string(
    "recipe", ["deepmind=configs/bapst.py:demo", "fast=configs/fast.py:demo"],
    "NAME=CONFIG[:PRESET][,KEY=VALUE,...]; repeat for several.")
_BUDGET = flags.DEFINE_float("budget_s", 600.0, "Wall seconds per recipe.")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", 20, "Steps between tests.")
_OUTPUT = flags.DEFINE_string("output", "runs/learning", "Output folder.")


def load_config(spec: str) -> ml_collections.ConfigDict:
  """'configs/fast.py:demo' -> that file's get_config('demo')."""
  path, _, preset = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location(
      "recipe_config", os.path.join(REPO, path) if not os.path.isabs(path)
      else path)
  if module_spec is None or not os.path.isfile(module_spec.origin):
    raise ValueError(f"no config file {path!r}")
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(preset)


def parse_recipe(text: str) -> Tuple[str, ml_collections.ConfigDict]:
  """'NAME=CONFIG[:PRESET][,KEY=VALUE,...]' -> (name, config)."""
  name, sep, spec = text.partition("=")
  if not sep or not name or not spec:
    raise ValueError(f"recipe {text!r} is not NAME=CONFIG[:PRESET][,K=V...]")
  path, *overrides = spec.split(",")
  config = load_config(path)
  for override in overrides:
    key, sep, value = override.partition("=")
    if not sep:
      raise ValueError(f"override {override!r} in recipe {name!r} is not "
                       "KEY=VALUE")
    try:
      value = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      pass  # A bare string.
    parent, _, leaf = key.rpartition(".")
    node = config
    for part in filter(None, parent.split(".")):
      node = node[part]
    if leaf not in node:
      raise ValueError(f"recipe {name!r}: the config has no key {key!r}")
    node[leaf] = value  # ConfigDict refuses a value of another type.
  return name, config


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
  recipes = [parse_recipe(text) for text in _RECIPES.value]
  results, workdirs = {}, {}
  for name, config in recipes:
    config.train.time_budget_s = _BUDGET.value
    config.train.eval_every = _EVAL_EVERY.value
    workdir = workdirs[name] = os.path.join(_OUTPUT.value, name)
    if os.path.exists(workdir):  # Would resume: a benchmark starts afresh.
      raise app.UsageError(f"{workdir} exists; remove it or pick --output")
    logging.info("recipe %s: %s", name, workdir)
    train.train_and_evaluate(config, workdir)
    results[name] = plotting.read_metrics(workdir)["test"]
  table = summary_table(results, _BUDGET.value)
  with atomic.atomic_write(os.path.join(_OUTPUT.value, "summary.md"),
                           "w") as f:
    f.write(table)
  plotting.time_to_accuracy(workdirs,
                            os.path.join(_OUTPUT.value, "learning.png"),
                            THRESHOLDS)
  print(table)


if __name__ == "__main__":
  app.run(main)

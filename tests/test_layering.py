"""The package's layers (glassy_jax.LAYERS): no module imports upwards."""

import ast
import os

import glassy_jax
import glassy_jax.configs

PACKAGE = os.path.dirname(glassy_jax.__file__)
# Package data, not code.
DATA_FOLDERS = {"demo_data", "pretrained", "__pycache__"}


def _layer_of(module: str) -> str:
  """'glassy_jax.network.models' -> 'network'; 'glassy_jax.errors' -> 'errors'."""
  parts = module.split(".")
  return parts[1] if len(parts) > 1 else ""


def _imported_layers(source: str):
  """Layers named by every glassy_jax import, function-level ones included."""
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.ImportFrom) and node.module and (
        node.module.split(".")[0] == "glassy_jax"):
      if node.module == "glassy_jax":
        yield from (alias.name for alias in node.names)
      else:
        yield _layer_of(node.module)
    elif isinstance(node, ast.Import):
      for alias in node.names:
        if alias.name.startswith("glassy_jax."):
          yield _layer_of(alias.name)


def upward_imports(layer: str, source: str):
  """(importer layer, imported layer) for each import from a higher layer."""
  rank = {name: i for i, name in enumerate(glassy_jax.LAYERS)}
  return [(layer, imported) for imported in _imported_layers(source)
          if rank[imported] > rank[layer]]


def _modules():
  """(layer, path) of every module in the package."""
  for entry in sorted(os.listdir(PACKAGE)):
    path = os.path.join(PACKAGE, entry)
    if entry == "__init__.py" or entry in DATA_FOLDERS:
      continue
    if os.path.isdir(path):
      for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d not in DATA_FOLDERS]
        for name in sorted(files):
          if name.endswith(".py"):
            yield entry, os.path.join(root, name)
    elif entry.endswith(".py"):
      yield entry[:-3], path
  # The named configs ship in the package from the repository's configs/.
  configs = os.path.dirname(glassy_jax.configs.__file__)
  for name in sorted(os.listdir(configs)):
    if name.endswith(".py"):
      yield "configs", os.path.join(configs, name)


def test_every_module_is_in_a_layer():
  stray = sorted({layer for layer, _ in _modules()} - set(glassy_jax.LAYERS))
  assert not stray, f"add {stray} to glassy_jax.LAYERS, at its place"


def test_no_layer_imports_a_higher_one():
  found = []
  for layer, path in _modules():
    with open(path) as f:
      found += [(os.path.relpath(path, PACKAGE), imported)
                for _, imported in upward_imports(layer, f.read())]
  assert not found, f"upward imports (module, layer it imports): {found}"


def test_the_check_sees_an_upward_import():
  # Function-level imports count as much as module-level ones.
  source = "def f():\n  from glassy_jax.training import train\n"
  assert upward_imports("network", source) == [("network", "training")]
  assert upward_imports("programs", source) == []
  assert upward_imports("formats", "from glassy_jax import errors\n") == []

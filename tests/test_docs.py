"""The documentation site: generated pages current, notebook runs."""

import importlib.util
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "docs")


def _generator():
  spec = importlib.util.spec_from_file_location(
      "gen_reference", os.path.join(DOCS, "gen_reference.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _run_generator(*args):
  """The generator in its own process: it defines every program's flags
  on absl's global FLAGS, which must not meet those of other tests."""
  return subprocess.run([sys.executable, *args], cwd=REPO, text=True,
                        capture_output=True, check=False,
                        env={**os.environ, "JAX_PLATFORMS": "cpu"})


def test_reference_pages_are_current():
  """docs/reference/{programs,configs}.md are what the code makes now."""
  result = _run_generator(os.path.join(DOCS, "gen_reference.py"), "--check")
  assert result.returncode == 0, result.stdout + result.stderr


def test_generator_is_deterministic():
  result = _run_generator("-c", (
      "import sys; sys.path.insert(0, 'docs'); import gen_reference as g; "
      "assert g.generate() == g.generate()"))
  assert result.returncode == 0, result.stderr


def test_every_config_key_has_a_meaning():
  """Keys without a comment in the code are exactly NOT_IN_CODE's."""
  generator = _generator()
  uncommented = set(generator.uncommented_keys())
  described = set(generator.NOT_IN_CODE)
  assert not uncommented - described, (
      "config keys with no comment in the code and no meaning in "
      f"docs/gen_reference.py NOT_IN_CODE: {sorted(uncommented - described)}")
  assert not described - uncommented, (
      "NOT_IN_CODE describes keys the code now comments (remove them): "
      f"{sorted(described - uncommented)}")


def test_every_program_is_documented():
  generator = _generator()
  with open(os.path.join(DOCS, "reference", "programs.md")) as f:
    page = f.read()
  for name in generator._program_modules():  # pylint: disable=protected-access
    assert f"\n## {name}\n" in page


def test_every_page_is_in_the_nav():
  with open(os.path.join(REPO, "mkdocs.yml")) as f:
    nav = f.read()
  for root, _, files in os.walk(DOCS):
    for name in files:
      if name.endswith(".md"):
        page = os.path.relpath(os.path.join(root, name), DOCS)
        assert page in nav, f"{page} is not in mkdocs.yml's nav"


@pytest.mark.slow
def test_tutorial_notebook_runs(tmp_path, monkeypatch):
  """docs/tutorial.ipynb executes on the demo data, every cell without
  error (about a minute on 2 cores)."""
  nbformat = pytest.importorskip("nbformat")
  nbclient = pytest.importorskip("nbclient")
  pytest.importorskip("ipykernel")
  with open(os.path.join(DOCS, "tutorial.ipynb")) as f:
    notebook = nbformat.read(f, as_version=4)
  assert all(not cell.get("outputs") for cell in notebook.cells
             if cell.cell_type == "code"), "store the notebook without outputs"
  # As a user runs it: one CPU device, not the suite's two (conftest).
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  client = nbclient.NotebookClient(
      notebook, timeout=600, kernel_name="python3",
      resources={"metadata": {"path": str(tmp_path)}})
  client.execute()
  for cell in notebook.cells:
    for output in cell.get("outputs", []):
      assert output.output_type != "error", output
  text = "".join(output.get("text", "") for cell in notebook.cells
                 for output in cell.get("outputs", []))
  assert "test r on A" in text

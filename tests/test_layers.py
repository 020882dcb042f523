"""The floor plan of dl_core/, enforced: every import goes down the layers of `LAYERS` (docs/architecture.md).

A core module imports neither wing, the sweep wing never imports the run wing, and inside the core each
layer imports only the layers below it. Read from the source (every import statement, those inside
functions and under TYPE_CHECKING included), and from a fresh interpreter (importing a module imports
its packages' __init__ too, which the statements do not show).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, entry_env

# Lowest first. A module belongs to the layer of the longest prefix that names it (`dl_core` only the package
# itself, `<package>.__init__` only that package's __init__) and may import modules of its own layer and of the
# layers before it, never one after it.
LAYERS = [
    ("errors", ("dl_core.errors", "dl_core.checks")),
    # What a model's outputs mean, which the task reads; importing them runs the models package's __init__, which
    # therefore stays as small (dl_core/models/build.py builds the models).
    ("output kinds", ("dl_core.models.outputs", "dl_core.models.__init__")),
    ("task", ("dl_core.task",)),
    ("data", ("dl_core.data",)),
    # Estimators are models the engine trains; a model module may use the engine's checkpoints and loop.
    ("models and engine", ("dl_core.models", "dl_core.engine")),
    ("tracking and serving", ("dl_core.tracking", "dl_core.serving")),
    ("sweep wing", ("dl_core.sweep",)),
    ("run wing", ("dl_core.runs",)),
    ("public API", ("dl_core",)),
]


def layer_of(module: str) -> int:
    """The index in `LAYERS` of a dl_core module; a module no layer names is an error of the plan."""
    matches = [(len(prefix), index) for index, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module in (prefix, prefix.removesuffix(".__init__"))
               or (prefix != "dl_core" and not prefix.endswith(".__init__") and module.startswith(f"{prefix}."))]
    if not matches:
        raise ValueError(f"{module}: in no layer of tests/test_layers.py's LAYERS; add it to one")
    return max(matches)[1]


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(node: ast.Import | ast.ImportFrom, modules: set[str]) -> list[str]:
    """The dl_core modules an import statement names: `from dl_core.data import build_bundle` the package,
    `from dl_core import data` the submodule."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level or not node.module:
        return []
    return list(dict.fromkeys(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules
                              else node.module for alias in node.names))


def violations(root: Path) -> list[str]:
    """`path:line imports module (layer may not import layer)` for every import in `root`/dl_core that goes up."""
    paths = sorted((root / "dl_core").rglob("*.py"))
    modules = {module_name(path, root) for path in paths}
    found = []
    for path in paths:
        source = module_name(path, root)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found += [f"{path.relative_to(root)}:{node.lineno} imports {target} ({LAYERS[layer_of(source)][0]} "
                          f"may not import {LAYERS[layer_of(target)][0]})" for target in imported(node, modules)
                          if target.split(".")[0] == "dl_core" and layer_of(target) > layer_of(source)]
    return found


def test_no_import_runs_up_the_layers():
    assert violations(ROOT) == []


def test_every_module_is_in_a_layer():
    for path in (ROOT / "dl_core").rglob("*.py"):
        layer_of(module_name(path, ROOT))  # raises for a module no layer names


@pytest.mark.parametrize(("module", "line", "says"), [
    ("engine/loop.py", "from dl_core.runs.pipeline import train",
     "dl_core/engine/loop.py:1 imports dl_core.runs.pipeline (models and engine may not import run wing)"),
    ("data/windows.py", "import dl_core.sweep.trials",
     "dl_core/data/windows.py:1 imports dl_core.sweep.trials (data may not import sweep wing)"),
    ("sweep/summary.py", "def f():\n    from dl_core.runs import cli",
     "dl_core/sweep/summary.py:2 imports dl_core.runs.cli (sweep wing may not import run wing)"),
    ("task/base.py", "if TYPE_CHECKING:\n    from dl_core.tracking.plots import plot_test",
     "dl_core/task/base.py:2 imports dl_core.tracking.plots (task may not import tracking and serving)"),
])
def test_a_module_importing_up_the_layers_is_named_with_its_line(tmp_path, module, line, says):
    """What the test above reports when a core module imports a wing (or a lower layer a higher one)."""
    for package in ("runs", "sweep", "tracking"):
        (tmp_path / "dl_core" / package).mkdir(parents=True)
        (tmp_path / "dl_core" / package / "__init__.py").write_text("")
    for name in ("runs/pipeline.py", "runs/cli.py", "sweep/trials.py", "tracking/plots.py"):
        (tmp_path / "dl_core" / name).write_text("")
    (tmp_path / "dl_core" / module).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "dl_core" / module).write_text(line + "\n")
    assert violations(tmp_path) == [says]


# Imports the modules named in argv's {module: layer}, lowest layer first, and after each lists the dl_core
# modules loaded so far.
LOAD_IN_ORDER = """
import importlib, json, sys
layers = json.loads(sys.argv[1])
loaded = {}
for name in sorted(layers, key=lambda name: (layers[name], name)):
    importlib.import_module(name)
    loaded[name] = sorted(m for m in sys.modules if m.split(".")[0] == "dl_core")
print(json.dumps(loaded))
"""


def test_importing_a_module_loads_nothing_above_its_layer():
    """A package's __init__ runs when any of its modules is imported: importing the output kinds ran the model
    builder, which imports the data step, which imports the task, which imports the output kinds."""
    paths = (ROOT / "dl_core").rglob("*.py")
    layers = {module_name(path, ROOT): layer_of(module_name(path, ROOT)) for path in paths}
    done = subprocess.run([sys.executable, "-c", LOAD_IN_ORDER, json.dumps(layers)], cwd=ROOT, env=entry_env(),
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    above = {name: [m for m in loaded if m != "dl_core" and layers[m] > layers[name]]  # the package imports nothing
             for name, loaded in json.loads(done.stdout).items()}
    assert {name: modules for name, modules in above.items() if modules} == {}

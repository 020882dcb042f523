"""dl_core/sweep/optuna_adapter.py is the one module that touches hydra-optuna-sweeper's and Optuna's private API.

Elsewhere in dl_core/, no import names a private module of theirs (`hydra_plugins.hydra_optuna_sweeper._impl`,
`optuna.samplers._lazy_random_state`), and no attribute access names a private attribute they define
(`study._storage`, `trial._trial_id`, a sampler's `_rng`), unless it is a class's own: one of dl_core whose
bases are not theirs, reaching an attribute it defines itself (the sweep heartbeat's `self._thread`).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import hydra_plugins.hydra_optuna_sweeper
import optuna
import pytest

from helpers import ROOT

ADAPTER = Path("dl_core/sweep/optuna_adapter.py")
PACKAGES = ("optuna", "hydra_plugins.hydra_optuna_sweeper")
# The parts of Optuna whose objects dl_core handles: studies, trials, storages, samplers, pruners, distributions.
OPTUNA_PARTS = ("study", "trial", "storages", "samplers", "pruners", "distributions.py")


def private(name: str) -> bool:
    """`_name`, not `__dunder__` nor `_config_key_` (Hydra's `_target_`, read from a config node)."""
    return name.startswith("_") and not name.endswith("_")


@functools.cache
def their_private_names() -> frozenset[str]:
    """Every private attribute or method name the two packages define or use, from their sources."""
    optuna_dir = Path(optuna.__file__).parent
    files = [*(p for part in OPTUNA_PARTS for p in ((optuna_dir / part).rglob("*.py") if (optuna_dir / part).is_dir()
                                                      else [optuna_dir / part])),
             *Path(hydra_plugins.hydra_optuna_sweeper.__file__).parent.rglob("*.py")]
    names = set()
    for file in files:
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Attribute) and private(node.attr):
                names.add(node.attr)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and private(node.name):
                names.add(node.name)
    return frozenset(names)


def theirs(module: str) -> bool:
    return any(module == package or module.startswith(f"{package}.") for package in PACKAGES)


class Touches(ast.NodeVisitor):
    """Private imports from the two packages, and accesses to their private attribute names, in one module."""

    def __init__(self, path: str, names: frozenset[str]):
        self.path, self.names, self.found = path, names, []
        self.their_classes: set[str] = set()  # names the module imports from the two packages
        self.classes: list[tuple[set[str], bool]] = []  # enclosing classes: (names they define, their bases are theirs)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if theirs(alias.name) and any(private(part) for part in alias.name.split(".")):
                self.found.append(f"{self.path}:{node.lineno} imports {alias.name}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if theirs(module):
            self.their_classes |= {alias.asname or alias.name for alias in node.names}
            if any(private(part) for part in [*module.split("."), *(alias.name for alias in node.names)]):
                self.found.append(f"{self.path}:{node.lineno} imports from {module}")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        own = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        assigned = [target for n in ast.walk(node) for target in getattr(n, "targets", [getattr(n, "target", None)])]
        own |= {target.attr for target in assigned
                if isinstance(target, ast.Attribute) and getattr(target.value, "id", None) == "self"}
        bases = {base.id if isinstance(base, ast.Name) else ast.unparse(base) for base in node.bases}
        self.classes.append((own, bool(bases & self.their_classes) or any(theirs(b) for b in bases)))
        self.generic_visit(node)
        self.classes.pop()

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in self.names and not self.own_attribute(node):
            self.found.append(f"{self.path}:{node.lineno} reaches {ast.unparse(node)}")
        self.generic_visit(node)

    def own_attribute(self, node: ast.Attribute) -> bool:
        """`self._x` in a class of dl_core that defines `_x` itself and derives from nothing of theirs."""
        if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls") and self.classes):
            return False
        own, derived_from_theirs = self.classes[-1]
        return node.attr in own and not derived_from_theirs


def touches(root: Path, names: frozenset[str]) -> list[str]:
    found = []
    for path in sorted((root / "dl_core").rglob("*.py")):
        relative = path.relative_to(root)
        if relative != ADAPTER:
            visitor = Touches(str(relative), names)
            visitor.visit(ast.parse(path.read_text(), str(path)))
            found += visitor.found
    return found


def test_only_the_adapter_touches_their_private_api():
    assert touches(ROOT, their_private_names()) == []


def test_the_adapter_still_finds_what_it_reaches():
    """The names the adapter reaches exist in the installed versions (an upgrade that renames one fails here)."""
    assert {"_trial_id", "_rng", "_random_sampler", "_get_directions", "_configure_trials",
            "_parse_sweeper_params_config"} <= their_private_names()


SUBCLASS = ("from optuna.samplers import RandomSampler\n\n"
            "class Seeded(RandomSampler):\n    def reseed(self):\n        self._rng = None\n")


@pytest.mark.parametrize(("source", "says"), [
    ("def record(study):\n    return study._storage\n", "reaches study._storage"),
    ("from optuna.samplers._lazy_random_state import LazyRandomState\n",
     "imports from optuna.samplers._lazy_random_state"),
    ("from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides\n",
     "imports from hydra_plugins.hydra_optuna_sweeper._impl"),
    (SUBCLASS, "reaches self._rng"),
    ("class Mixin:\n    def before_trial(self):\n        self._rng.rng.seed(0)\n", "reaches self._rng"),
])
def test_a_touch_outside_the_adapter_is_named_with_its_line(tmp_path, source, says):
    (tmp_path / "dl_core" / "sweep").mkdir(parents=True)
    (tmp_path / "dl_core" / "sweep" / "samplers.py").write_text(source)
    [found] = touches(tmp_path, their_private_names())
    assert found.startswith("dl_core/sweep/samplers.py:") and found.endswith(says)


def test_a_class_of_dl_core_keeps_its_own_private_attributes(tmp_path):
    """The heartbeat's thread is its own, though Optuna has a `_thread` of its own too."""
    (tmp_path / "dl_core").mkdir()
    (tmp_path / "dl_core" / "workers.py").write_text("class Heartbeat:\n    def __init__(self):\n"
                                                      "        self._thread = None\n\n    def stop(self):\n"
                                                      "        self._thread.join()\n")
    assert "_thread" in their_private_names() and touches(tmp_path, their_private_names()) == []

"""Shared fixtures: compose the real Hydra config the way train.py does, with a run dir under tmp_path; servers
that are down or never answer, for the trackers that must not wait on them. And the suite's environment, set
once here, and how tests share the cores under pytest-xdist."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from omegaconf import DictConfig

import dl_core

# The environment of every test and of every script a test starts (they inherit it), unless the shell that
# started the suite sets a name itself:
# - OMP_NUM_THREADS: `make test` runs one xdist worker per core. torch's default is a thread per core in each
#   worker and in each script a test starts, so two workers ran four busy threads on two cores: the notebook
#   test took 36 s beside another worker and 9 s alone. A test that needs more threads says so with
#   hardware.threads.
# - WANDB_MODE, WANDB_SILENT: no test reaches a W&B server, nor prints wandb's banner.
ENVIRONMENT = {"OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def pytest_configure(config: pytest.Config) -> None:
    """Set `ENVIRONMENT` before any test module is imported: torch reads OMP_NUM_THREADS when it is first imported,
    which a session fixture would come too late for.

    And a suite started in the background (`make test &` in a script, nohup) inherits SIGINT ignored, and
    Python leaves an ignored SIGINT ignored, in this process and in every script a test starts: the Ctrl-C
    test's interrupt would never arrive. A handler of this process's own is reset to the default in its
    children, so they get Ctrl-C as from a terminal."""
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def registered_schemas() -> None:
    """Some tests compose through Hydra itself, as the entry points do, not through `dl_core.compose`: the
    schemas the YAML options list must be registered first."""
    dl_core.register_configs()


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """`make_cfg("model.hidden_dim=8", run="a")` -> composed config writing to tmp_path/<run>."""

    def make(*overrides: str, run: str = "run") -> DictConfig:
        # hardware=auto's answers go to the test's own folder, not the repository's outputs/, and its timing
        # is short (a test's overrides come after these and win).
        probes = [f"hardware.probe_cache={tmp_path / 'hardware_probes'}", "hardware.probe_seconds=0.2"]
        return dl_core.compose(*probes, *overrides, run_dir=tmp_path / run)

    return make


@pytest.fixture
def refused_url() -> str:
    """A loopback port with nothing listening (a server that is down): connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def black_hole_url() -> Iterator[str]:
    """A loopback server that accepts connections and never answers (a firewall that drops, a dead proxy)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        server.close()


@pytest.hookimpl(trylast=True)  # after pytest-xdist's own hook, whose group suffix `keep_xdist_groups` checks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests first (the sort is stable): under xdist the long ones then overlap the many short ones,
    instead of one of them ending the run alone on one worker while the others wait. And in a worker of
    `--dist loadgroup`, the tests of an `xdist_group` kept together."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    if getattr(config.option, "loadgroup", False):
        keep_xdist_groups(items)


def keep_xdist_groups(items: list[pytest.Item]) -> None:
    """Give each test marked `xdist_group` the node id `<id>@<group>`, by which `--dist loadgroup` sends all the
    tests of a group to one worker. pytest-xdist 3.8 writes that id to `item._nodeid`, which pytest 9.2 no longer
    reads (pytest-xdist#1386): every group was spread over the workers, so a module's trained run and server were
    made on each worker (and again after a test of another module in between), and the "timing" tests ran beside
    each other. Where xdist's own suffix took (an older pytest, a fixed xdist), nothing changes."""
    for item in items:
        groups = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                         for mark in item.iter_markers("xdist_group")})
        suffix = f"@{'_'.join(groups)}"
        if groups and not item.nodeid.endswith(suffix):
            from _pytest.nodeid import NodeId  # pytest >= 9.2, where the id is this structured one

            item._id = NodeId.parse(item.nodeid + suffix)

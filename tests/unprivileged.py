"""Scripts run without the privilege to ignore file permissions, for tests of an unreadable or read-only path.

The suite often runs as root (containers, CI), and root reads and writes any file whatever its mode. Such a
test runs its script as root without the two capabilities that bypass permission checks (CAP_DAC_OVERRIDE,
CAP_DAC_READ_SEARCH): dropped from the bounding set before exec, they are gone from the script, which then
meets file modes as any user would. Running it as another user instead (the `postgres` user of
tests/postgres_server.py) fails where the interpreter lives under root's home, as with pyenv. Any other user
runs the script as itself. Where the capabilities cannot be dropped, the test is skipped with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, entry_command, entry_env

# prctl(PR_CAPBSET_DROP, cap) for CAP_DAC_OVERRIDE (1) and CAP_DAC_READ_SEARCH (2), then exec the script.
LAUNCHER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for cap in (1, 2):
    if libc.prctl(24, cap, 0, 0, 0) != 0:
        sys.exit(f"cannot drop capability {cap}: {os.strerror(ctypes.get_errno())}")
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""


def command(script: str | Path, args: tuple[str, ...]) -> list[str]:
    full = entry_command(script, args)
    return [sys.executable, "-c", LAUNCHER, *full[1:]] if os.geteuid() == 0 else full


def run_unprivileged(script: str | Path, *args: str, cwd: Path = ROOT,
                     timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`helpers.run_entry` without the power to ignore file permissions."""
    return subprocess.run(command(script, args), cwd=cwd, env=entry_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)


def require_unprivileged(folder: Path) -> None:
    """Skip the test unless a script run by `run_unprivileged` is refused a file of mode 000 (made in `folder`)."""
    probe = folder / "probe"
    probe.write_text("secret")
    probe.chmod(0)
    read = subprocess.run(command("-c", (f"open({str(probe)!r}).read()",)), capture_output=True, text=True,
                          timeout=60, check=False)
    probe.unlink()
    if read.returncode == 0:
        pytest.skip("cannot drop the privilege to ignore file permissions here")
    if "PermissionError" not in read.stderr:
        pytest.skip(f"cannot drop the privilege to ignore file permissions here: {read.stderr.strip()[-200:]}")

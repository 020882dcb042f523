"""A throwaway PostgreSQL server on 127.0.0.1 for the cluster-sweep tests and the sweep-workers study.

It runs the machine's own PostgreSQL binaries (Debian: /usr/lib/postgresql/<version>/bin) as the
`postgres` system user, since the server refuses to run as root: a fresh data dir and socket dir in a
temporary folder, trust authentication, fsync off, a free port. The server is stopped and its folder
removed when the block ends, also on error.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

USER = "postgres"


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder holding initdb and pg_ctl, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name)
                   if path.parent.name.isdigit() else 0)
    found = [path for path in found if (path / "initdb").exists() and (path / "pg_ctl").exists()]
    return found[-1] if found else None


def unavailable() -> str | None:
    """Why no throwaway server can be started here, or None when one can."""
    if server_binaries() is None:
        return "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin"
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return f"no `{USER}` system user to run the PostgreSQL server as"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != USER:
        return f"starting PostgreSQL as `{USER}` needs root or that user"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e .[cluster])"
    return None


def as_postgres(*command: str) -> list[str]:
    return list(command) if pwd.getpwuid(os.geteuid()).pw_name == USER else ["runuser", "-u", USER, "--", *command]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Yield the SQLAlchemy URL (`postgresql+psycopg://postgres@127.0.0.1:<port>/postgres`) of a fresh server."""
    binaries = server_binaries()
    assert binaries is not None, unavailable()
    folder = Path(tempfile.mkdtemp(prefix="dl_core_pg_"))
    entry = pwd.getpwnam(USER)
    os.chown(folder, entry.pw_uid, entry.pw_gid)
    data, port = folder / "data", free_port()
    try:
        subprocess.run(as_postgres(str(binaries / "initdb"), "-D", str(data), "-U", USER, "-A", "trust", "--no-sync"),
                       check=True, capture_output=True, timeout=120)
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run(as_postgres(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"),
                                   "-w", "-t", "60", "start"), check=True, capture_output=True, timeout=120)
        try:
            yield f"postgresql+psycopg://{USER}@127.0.0.1:{port}/postgres"
        finally:
            # best effort: the folder is removed below whether the server stopped cleanly or not
            subprocess.run(as_postgres(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"),
                           check=False, capture_output=True, timeout=120)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

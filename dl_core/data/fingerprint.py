"""What a data config's file holds, by content: a run records it in its checkpoints and a study in its record, so
that a resume or a sweep launch on a file changed since is refused rather than continued on other numbers. The
path alone says nothing: the same path may hold other rows tomorrow.

A SHA-256 of the file's bytes, read once at the start (a second or so per GB). Generated data (`source:
synthetic`) is its config, which is compared as such, and has no file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def data_file(cfg: Any) -> tuple[str, Path] | None:
    """The file a data config reads, and the config key that names it; None for generated data."""
    source = cfg.get("source")
    if source == "csv" and cfg.get("path"):
        return "data.path", Path(str(cfg.path)).expanduser()
    if source == "ett":
        if cfg.get("path"):
            return "data.path", Path(str(cfg.path)).expanduser()
        return "data.cache_dir", Path(str(cfg.cache_dir)).expanduser() / f"{cfg.name}.csv"
    return None


def data_fingerprint(cfg: Any) -> dict[str, Any] | None:
    """{key, file, size, sha256} of the file a data config reads; None for generated data, and for a file that
    cannot be read now (the loader refuses it, naming it and the fix)."""
    found = data_file(cfg)
    if found is None:
        return None
    key, file = found
    digest = hashlib.sha256()
    try:
        with open(file, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return {"key": key, "file": str(file.resolve()), "size": file.stat().st_size, "sha256": digest.hexdigest()}


def changed(recorded: dict[str, Any] | None, current: dict[str, Any] | None) -> bool:
    """Whether a file's content differs from what was recorded (nothing to compare is no change)."""
    return recorded is not None and current is not None and recorded["sha256"] != current["sha256"]


def described(recorded: dict[str, Any], current: dict[str, Any]) -> str:
    """The two fingerprints, for a refusal."""
    return (f"sha256 {recorded['sha256'][:12]}... of {recorded['size']} bytes then, {current['sha256'][:12]}... of "
            f"{current['size']} bytes now")

"""The results store: one JSON file per completed run, written atomically, keyed by config.

Layout under the store's root::

    runs/<key>.json      one record per completed training run (reported or tuning trial)
    tuning/<key>.json    one record per tuning outcome (the chosen lr, every trial, the path)
    halving/<key>.json   one record per completed multi-init run (successive halving)

A record is ``{"schema", "kind", "key", "config", "result", "environment"}``; ``key`` is the
SHA-256 of the canonical JSON of ``config``, so the same configuration always maps to the
same file. Files are strict JSON (readable by jq or a browser): the losses of a diverged
run, NaN or infinite, are stored as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``
and read back as floats. Guarantees (DESIGN.md, "Results are never lost"):

- a record is written to a temporary file in the same folder, flushed and fsynced, then
  hard-linked to its final name, which fails if the name exists: a completed record is never
  overwritten, two workers finishing the same run never clobber each other (the first wins),
  and a process killed at any moment leaves either the whole record or none (its temporary
  file, named with the writer's host and process id, is never read, and is removed by the
  next store opened on that host once that process is gone);
- ``has(kind, key)`` lets a re-run skip everything already done.

``runs_frame()`` and ``tuning_frame()`` read the store back into pandas DataFrames (one row
per record, config and scalar results flattened into columns).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from optlab.durable import fsync_directory, pid_alive
from optlab.errors import OptlabError

SCHEMA_VERSION = 1
RecordKind = Literal["runs", "tuning", "halving"]
KINDS: tuple[RecordKind, ...] = ("runs", "tuning", "halving")


class StoreError(OptlabError):
    """The store cannot be used (unreadable record, path is not a folder, ...)."""


def config_key(config: Mapping[str, Any]) -> str:
    """SHA-256 hex digest of the canonical JSON of ``config`` (sorted keys, no spaces)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def environment() -> dict[str, str]:
    """Where a record was produced (informational, not part of the key)."""
    import torch

    from optlab import __version__

    return {
        "optlab": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _encode(value: Any) -> Any:
    """Strict JSON: non-finite floats become the strings "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any) -> Any:
    """The inverse of :func:`_encode`, applied to results (so these three strings are
    reserved there; configs are strict JSON and never encoded)."""
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if isinstance(value, dict):
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def _host() -> str:
    return platform.node().replace(".", "-") or "host"


class ResultsStore:
    """A folder of run and tuning records (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"results store {self.root} exists and is not a folder")
        try:
            for kind in KINDS:
                (self.root / kind).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot use {self.root} as a results store: {error}") from error
        self.remove_stale_temporaries()

    def remove_stale_temporaries(self) -> int:
        """Delete temporary files left by dead writers on this host; return how many.

        A live writer's temporary file (another worker, another bench on the same store) is
        never touched: its name carries its host and process id.
        """
        host, removed = _host(), 0
        for kind in KINDS:
            for temporary in (self.root / kind).glob(".*.tmp"):
                parts = temporary.name.split(".")
                # ".<key16>.<host>.<pid>.<random>.tmp"
                if len(parts) < 6 or parts[2] != host or not parts[3].isdigit():
                    continue
                if pid_alive(int(parts[3])):
                    continue
                with contextlib.suppress(OSError):
                    temporary.unlink()
                    removed += 1
        return removed

    def path(self, kind: RecordKind, key: str) -> Path:
        """Where the record ``key`` of ``kind`` lives (whether or not it exists)."""
        return self.root / kind / f"{key}.json"

    def has(self, kind: RecordKind, key: str) -> bool:
        """Whether a completed record exists."""
        return self.path(kind, key).exists()

    def get(self, kind: RecordKind, key: str) -> dict[str, Any] | None:
        """The record, or None if there is none."""
        path = self.path(kind, key)
        if not path.exists():
            return None
        return self._read(path)

    def put(
        self, kind: RecordKind, config: Mapping[str, Any], result: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Write a record atomically and return it (the existing one if already there)."""
        key = config_key(config)
        record = {
            "schema": SCHEMA_VERSION,
            "kind": kind,
            "key": key,
            "config": dict(config),
            "result": dict(result),
            "environment": environment(),
        }
        text = json.dumps(_encode(record), allow_nan=False, separators=(",", ":"))
        folder = self.root / kind
        final = self.path(kind, key)
        prefix = f".{key[:16]}.{_host()}.{os.getpid()}."
        descriptor, temporary = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=folder)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, final)
            except FileExistsError:
                return self._read(final)
            fsync_directory(folder)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        return record

    def records(self, kind: RecordKind) -> Iterator[dict[str, Any]]:
        """Every completed record of ``kind`` (in file-name order)."""
        for path in sorted((self.root / kind).glob("*.json")):
            yield self._read(path)

    def __len__(self) -> int:
        return sum(1 for _ in (self.root / "runs").glob("*.json"))

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(record, dict) and "result" in record:
                record["result"] = _decode(record["result"])
        except (OSError, ValueError) as error:
            raise StoreError(f"cannot read record {path}: {error}") from error
        if not isinstance(record, dict) or record.get("schema") != SCHEMA_VERSION:
            raise StoreError(f"record {path} is not an optlab schema-{SCHEMA_VERSION} record")
        return record

    # ------------------------------------------------------------------ DataFrames
    def runs_frame(self) -> Any:
        """One row per run record: ``key``, the config fields (``problem``, ``optimizer``,
        ``lr``, ``instance_seed``, ``init_seed``, ``data_seed``, ``budget`` (the config's
        ``steps``), ``purpose``, ...),
        the scalar results (``status``, ``diverged``, ``final_val_loss``, ``best_val_loss``,
        ``steps_to_target``, ``seconds_to_target``, ``test_loss``, ``test_accuracy``, ...)
        and the ``curve`` (dict of lists) and ``trajectory`` (list or None) columns."""
        import pandas as pd

        rows = []
        for record in self.records("runs"):
            config, result = record["config"], record["result"]
            row: dict[str, Any] = {"key": record["key"]}
            for name, value in config.items():
                if name == "steps":  # the budget; the result's "steps" are the steps taken
                    row["budget"] = value
                elif name == "hyperparameters":
                    row["lr"] = value.get("lr")
                    row["hyperparameters"] = value
                else:
                    row[name] = value
            for name, value in result.items():
                row[name] = value
            row["diverged"] = result.get("status") == "diverged"
            rows.append(row)
        return pd.DataFrame(rows)

    def tuning_frame(self) -> Any:
        """One row per tuning record: ``problem``, ``optimizer``, ``best_lr``,
        ``best_value``, ``trials`` (list of {"lr", "value"}) and the tuning config."""
        import pandas as pd

        rows = []
        for record in self.records("tuning"):
            rows.append({"key": record["key"], **record["config"], **record["result"]})
        return pd.DataFrame(rows)

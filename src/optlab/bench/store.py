"""The results store: one JSON file per completed run, written atomically, keyed by config.

Layout under the store's root::

    runs/<key>.json      one record per completed training run (reported or tuning trial)
    tuning/<key>.json    one record per tuning outcome (the chosen lr, every trial, the path)
    halving/<key>.json   one record per completed multi-init run (successive halving)
    claims/<key>.json    one record per checked claim (``optlab claims``)

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
- ``has(kind, key)`` lets a re-run skip everything already done;
- a record is used only if it is well formed (its fields present with their types:
  otherwise :class:`StoreError`, one line naming the file and the field) and is the record
  its file name says: its ``kind`` is its folder's, and its stored ``key`` equals both its
  file name and ``config_key(config)``. A record copied, linked or renamed under another
  name (or any other ``*.json`` put there) is reported once, in one line (a warning of the
  ``optlab.bench`` logger), and ignored: never reused for a run it is not, never counted
  as another seed. A new record of that key replaces it, the old file kept aside as
  ``<key>.json.rejected.<pid>.<ns>``.

``runs_frame()`` and ``tuning_frame()`` read the store back into pandas DataFrames (one row
per record, config and scalar results flattened into columns).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import platform
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from optlab.durable import fsync_directory, pid_alive
from optlab.errors import OptlabError
from optlab.inputs import PathError, check_path

logger = logging.getLogger("optlab.bench")

SCHEMA_VERSION = 1
RecordKind = Literal["runs", "tuning", "halving", "claims"]
KINDS: tuple[RecordKind, ...] = ("runs", "tuning", "halving", "claims")


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


_FIELDS: dict[str, type | tuple[type, ...]] = {
    "kind": str,
    "key": str,
    "config": dict,
    "result": dict,
    "environment": dict,
}
#: Result fields the bench reads, checked where present (the store holds any result).
_RESULT_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "runs": {"status": str},
    "tuning": {"best_lr": (int, float), "trials": list},
    "halving": {},
    "claims": {"verdict": str},
}


class MismatchedRecord(StoreError):
    """A well-formed record that is not the record its file name says (another kind, or
    a stored key that is not its file name or its config's hash)."""


def check_record(record: Any, path: Path, kind: str) -> dict[str, Any]:
    """``record`` (read from ``path`` in the ``kind`` folder) if it is a well-formed record
    of that name; :class:`StoreError` naming the file and the first missing or mistyped
    field, or :class:`MismatchedRecord` if it is another record than its name says."""
    if not isinstance(record, dict) or record.get("schema") != SCHEMA_VERSION:
        raise StoreError(f"record {path} is not an optlab schema-{SCHEMA_VERSION} record")
    for name, types in _FIELDS.items():
        if not isinstance(record.get(name), types) or isinstance(record.get(name), bool):
            raise StoreError(_field_error(path, name, record.get(name), types, name in record))
    for name, types in _RESULT_FIELDS.get(kind, {}).items():
        value = record["result"].get(name)
        if name in record["result"] and (not isinstance(value, types) or isinstance(value, bool)):
            raise StoreError(
                _field_error(path, f"result.{name}", value, types, name in record["result"])
            )
    if record["kind"] != kind:
        raise MismatchedRecord(f"record {path} is a {record['kind']!r} record in {kind}/")
    if record["key"] != path.stem:
        raise MismatchedRecord(f"record {path} holds key {record['key'][:16]}...")
    try:
        key = config_key(record["config"])
    except (TypeError, ValueError) as error:
        raise StoreError(f"record {path}: config is not strict JSON ({error})") from None
    if key != path.stem:
        raise MismatchedRecord(f"record {path}: its config hashes to {key[:16]}...")
    return record


def _field_error(
    path: Path, name: str, value: Any, types: type | tuple[type, ...], present: bool
) -> str:
    allowed = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
    if not present:
        return f"record {path}: field {name!r} is missing (must be a {allowed})"
    return f"record {path}: field {name!r} must be a {allowed}, got {type(value).__name__}"


class ResultsStore:
    """A folder of run and tuning records (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str], *, read_only: bool = False) -> None:
        """Open (and make) the store at ``root``; unless ``read_only``, prove it can be
        written (:class:`StoreError`, one line: a read-only store fails before any run)."""
        try:
            self.root = check_path("results store", root)
        except PathError as error:
            raise StoreError(str(error)) from None
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"results store {self.root} exists and is not a folder")
        try:
            for kind in KINDS:
                (self.root / kind).mkdir(parents=True, exist_ok=True)
            if not read_only:
                with tempfile.NamedTemporaryFile(dir=self.root / "runs", prefix=".probe-"):
                    pass
        except OSError as error:
            raise StoreError(
                f"cannot use {self.root} as a results store: {error.strerror or error}"
            ) from None
        self._reported: set[Path] = set()
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
        """Whether a completed record of that key exists (a mismatched file does not
        count: see the module docstring)."""
        return self.get(kind, key) is not None

    def get(self, kind: RecordKind, key: str) -> dict[str, Any] | None:
        """The record, or None if there is none (or only a mismatched file by its name)."""
        path = self.path(kind, key)
        if not path.exists():
            return None
        return self._verified(path, kind)

    def _verified(self, path: Path, kind: str) -> dict[str, Any] | None:
        """The record at ``path`` if it is the record its name says, else None (reported
        once per file); :class:`StoreError` if it is not a well-formed record."""
        try:
            return check_record(self._read(path), path, kind)
        except MismatchedRecord as error:
            if path not in self._reported:
                self._reported.add(path)
                logger.warning("optlab: ignoring %s", error)
            return None

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
                existing = self._verified(final, kind)
                if existing is not None:
                    return existing
                # another file under this record's name: kept aside under a name of its
                # own (never over an earlier one), so nothing is lost even in a race
                aside = f"{final.name}.rejected.{os.getpid()}.{time.time_ns()}"
                os.replace(final, final.with_name(aside))
                try:
                    os.link(temporary, final)
                except FileExistsError:  # a concurrent writer of the same record won
                    return self._read(final)
            fsync_directory(folder)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        return record

    def records(self, kind: RecordKind) -> Iterator[dict[str, Any]]:
        """Every completed record of ``kind`` (in file-name order; mismatched files are
        reported and skipped)."""
        for path in sorted((self.root / kind).glob("*.json")):
            record = self._verified(path, kind)
            if record is not None:
                yield record

    def __len__(self) -> int:
        return sum(1 for _ in self.records("runs"))

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(record, dict) and "result" in record:
                record["result"] = _decode(record["result"])
        except (OSError, ValueError, RecursionError) as error:
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

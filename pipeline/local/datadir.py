"""The local AWS's data folder: what ``vidp local up`` keeps from one run to the next.

moto keeps everything in memory. This module copies the bucket, the jobs table, the callback
receiver's table and the pipeline's executions of a running local AWS to a folder, through the
public AWS APIs of that local AWS (boto3 clients), and puts the bucket and the tables back into a
fresh one at the next start. Executions cannot be put back: no Step Functions API creates an
execution with a given history. They stay in the folder, where ``vidp executions`` reads them as
earlier runs'.

Layout, format version 1 (every file is replaced whole: written to a temporary file, renamed)::

    <folder>/
      vidp-local.json            the manifest: format, version, bucket, table, state machine,
                                 ``run`` (the run that wrote last) and ``saved_at`` (its last snapshot)
      lock                       held (flock) by the local AWS using the folder
      s3/index.json              {"objects": {key: {file, etag, size, last_modified, headers, metadata}}}
      s3/objects/ab/<sha256>     one body per object version seen: sha256 of key NUL etag
      dynamodb/items.json        {"items": [...]}: the table's items in DynamoDB JSON, binary base64
      dynamodb/callbacks.json    the same for the callback receiver's table (absent in older folders)
      executions/<run>/<name>.json   {"run", "description", "history"}: DescribeExecution (less
                                     ResponseMetadata) and every GetExecutionHistory event; dates ISO 8601

A run is one start of the local AWS (``20260102T030405Z-1a2b``). A snapshot is written every few
seconds while it runs (only what changed: objects whose ETag or date moved, the table when its
items differ, executions not yet seen ended) and once more at a clean stop. A new body is written
before the index that names it and old bodies are removed after, so a process killed at any
point leaves a folder that restores to its last complete snapshot of each part.

At the next start, the executions that were RUNNING in the last snapshot were lost with the
process: they are rewritten ABORTED (``stopDate`` = that snapshot's time) and returned, with the
executions of jobs whose record is still ``processing``, for reconciliation.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, TypeVar
from urllib.parse import quote

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from pipeline.deployment import TABLE_KEY
from pipeline.local import resources
from pipeline.local.clients import Clients
from pipeline.local.resources import LocalNames

log = logging.getLogger(__name__)

FORMAT = "vidp-local-data"
VERSION = 1
DEFAULT_DATA_DIR = Path(".vidp-local")
SNAPSHOT_SECONDS = 2.0
MANIFEST = "vidp-local.json"
_LOCK = "lock"
_INDEX = Path("s3") / "index.json"
_OBJECTS = Path("s3") / "objects"
_ITEMS = Path("dynamodb") / "items.json"
_CALLBACKS = Path("dynamodb") / "callbacks.json"
_EXECUTIONS = Path("executions")
_TMP_SUFFIX = ".vidp-tmp"
_DATE_FIELDS = {"startDate", "stopDate", "redriveDate", "timestamp"}
_HEADERS = ("ContentType", "ContentEncoding", "ContentDisposition", "ContentLanguage", "CacheControl")
_SINGLE_PUT_LIMIT = 5 * 1024**3  # S3's largest PutObject; larger bodies go up in parts
_CHUNK = 1 << 20
_TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
M = TypeVar("M", bound=BaseModel)


class DataDirError(Exception):
    """The data folder cannot be used: foreign, corrupt, from a newer version, or in use."""


# --- the files ---------------------------------------------------------------------------------


class Manifest(BaseModel):
    """``vidp-local.json``: what the folder holds and who wrote it last."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["vidp-local-data"]
    version: int
    bucket: str
    table: str
    state_machine_arn: str
    run: str | None = None
    saved_at: datetime | None = None


class StoredObject(BaseModel):
    """One object of the bucket as the index records it; its body is ``s3/objects/<file>``."""

    file: str
    etag: str
    size: int
    last_modified: datetime | None = None
    headers: dict[str, str] = {}
    metadata: dict[str, str] = {}


class ObjectIndex(BaseModel):
    objects: dict[str, StoredObject] = {}


class StoredItems(BaseModel):
    items: list[dict[str, Any]] = []


class StoredExecution(BaseModel):
    """One execution of the pipeline in the folder: its description and history as the APIs gave them."""

    run: str
    description: dict[str, Any]
    history: list[dict[str, Any]]

    @field_validator("description")
    @classmethod
    def _described(cls, value: dict[str, Any]) -> dict[str, Any]:
        missing = sorted({"executionArn", "name", "status", "startDate"} - value.keys())
        if missing:
            raise ValueError(f"no {missing[0]}")
        if not isinstance(value["startDate"], datetime):
            raise ValueError("startDate is not a date")
        return value

    @property
    def arn(self) -> str:
        return str(self.description["executionArn"])

    @property
    def status(self) -> str:
        return str(self.description["status"])


@dataclass
class Restored:
    """What a start put back, and the executions lost when the previous run ended."""

    objects: int = 0
    items: int = 0
    earlier_executions: int = 0
    lost: list[dict[str, Any]] = field(default_factory=list)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(2)


# --- the folder --------------------------------------------------------------------------------


class DataDir:
    """An opened data folder: ``DataDir.open(path, names)``, then ``restore``, ``snapshot``, ``close``."""

    def __init__(self, path: Path, names: LocalNames, manifest: Manifest, lock: IO[str] | None) -> None:
        self.path = path
        self.names = names
        self.manifest = manifest
        self.run = new_run_id()
        self._lock_file = lock
        self._snapshot_lock = threading.Lock()
        self._index = _read_model(path, _INDEX, ObjectIndex) or ObjectIndex()
        self._digests: dict[Path, str] = {}  # table file -> digest of what it holds
        self._written: dict[str, str] = {}  # execution name -> digest of its file, this run
        self._ended: set[str] = set()  # execution names of this run stored in a final state

    @classmethod
    def open(cls, path: Path, names: LocalNames) -> DataDir:
        """Create the folder (or check it is ours, readable by this version) and lock it."""
        path = path.expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise DataDirError(f"data folder {path} is a file, not a folder")
        read_manifest(path)  # a foreign or unreadable folder is refused before anything is written
        path.mkdir(parents=True, exist_ok=True)
        lock = _lock(path)
        try:
            _remove_temporary_files(path)
            manifest = read_manifest(path)
            if manifest is None:
                manifest = Manifest(
                    format=FORMAT, version=VERSION, bucket=names.bucket, table=names.table,
                    state_machine_arn=names.state_machine_arn,
                )  # fmt: skip
                _write_json(path / MANIFEST, manifest.model_dump(mode="json"))
            elif (manifest.bucket, manifest.table) != (names.bucket, names.table):
                raise DataDirError(
                    f"data folder {path} holds bucket {manifest.bucket} and table {manifest.table}, "
                    f"not {names.bucket} and {names.table}: choose another folder"
                )
            opened = cls(path, names, manifest, lock)
            stored_executions(path)  # every file must read before anything is restored
            _read_model(path, _ITEMS, StoredItems)
            _read_model(path, _CALLBACKS, StoredItems)
        except BaseException:
            lock.close()
            raise
        return opened

    def close(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None

    # --- restore ---------------------------------------------------------------------------

    def restore(self, clients: Clients) -> Restored:
        """Put the stored objects and items into the (fresh) local AWS; start a new run."""
        restored = Restored()
        restored.objects = self._restore_objects(clients.client("s3"))
        stored = _read_model(self.path, _ITEMS, StoredItems) or StoredItems()
        restored.items = _restore_items(clients.client("dynamodb"), self.names.table, stored.items)
        callbacks = _read_model(self.path, _CALLBACKS, StoredItems) or StoredItems()
        _restore_items(clients.client("dynamodb"), self.names.callbacks_table, callbacks.items)
        earlier = stored_executions(self.path)
        restored.earlier_executions = len(earlier)
        restored.lost = self._lost(earlier, stored.items)
        self.manifest = self.manifest.model_copy(update={"run": self.run, "saved_at": datetime.now(UTC)})
        _write_json(self.path / MANIFEST, self.manifest.model_dump(mode="json"))
        return restored

    def _restore_objects(self, s3: Any) -> int:
        bucket = self.names.bucket
        for key, entry in self._index.objects.items():
            if not (self.path / _OBJECTS / entry.file).is_file():
                raise DataDirError(
                    f"data folder {self.path} is incomplete: the body of s3://{bucket}/{key} "
                    f"({_OBJECTS / entry.file}) is missing"
                )
        # Putting an object back is no upload: with S3's events off, nothing under incoming/ starts a job.
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
        try:
            for key, entry in list(self._index.objects.items()):
                etag = _put_body(s3, bucket, key, entry, self.path / _OBJECTS / entry.file)
                if etag != entry.etag:  # a multipart original: name the body after the new ETag too
                    renamed = _body_name(key, etag)
                    target = self.path / _OBJECTS / renamed
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.unlink(missing_ok=True)
                    target.hardlink_to(self.path / _OBJECTS / entry.file)  # the old name goes after the index
                    self._index.objects[key] = entry.model_copy(update={"file": renamed, "etag": etag})
        finally:
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration=resources.BUCKET_NOTIFICATIONS
            )
        # The restored copies have new dates: record them, or the first snapshot downloads all again.
        for listed in _list_objects(s3, bucket):
            known = self._index.objects.get(listed["Key"])
            if known is not None and known.etag == listed["ETag"]:
                self._index.objects[listed["Key"]] = known.model_copy(
                    update={"last_modified": listed["LastModified"]}
                )
        _write_json(self.path / _INDEX, self._index.model_dump(mode="json"))
        self._remove_unindexed_bodies()
        return len(self._index.objects)

    def _lost(self, earlier: list[StoredExecution], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Executions RUNNING in the last snapshot (now ABORTED), and those of ``processing`` records."""
        saved_at = self.manifest.saved_at or datetime.now(UTC)
        lost: dict[str, dict[str, Any]] = {}
        for execution in earlier:
            if execution.run == self.manifest.run and execution.status == "RUNNING":
                aborted = _aborted(execution, saved_at)
                _write_json(self._execution_path(aborted.run, aborted.description["name"]), _dump(aborted))
                lost[aborted.arn] = aborted.description
        newest = {e.arn: e for e in sorted(earlier, key=lambda e: e.description["startDate"])}
        for item in items:
            if item.get("status", {}).get("S") != "processing":
                continue
            arn = item.get("execution_arn", {}).get("S")
            if not arn:
                log.warning("record %s is processing with no execution ARN", item.get(TABLE_KEY))
            elif arn not in lost:
                known = newest.get(arn)
                lost[arn] = dict(known.description) if known else self._unknown_execution(arn, saved_at)
        return list(lost.values())

    def _unknown_execution(self, arn: str, stopped: datetime) -> dict[str, Any]:
        # The record was written after the last snapshot listed the executions.
        return {"executionArn": arn, "stateMachineArn": self.manifest.state_machine_arn,
                "name": arn.rsplit(":", 1)[-1], "status": "ABORTED", "stopDate": stopped}  # fmt: skip

    # --- snapshot --------------------------------------------------------------------------

    def snapshot(self, clients: Clients) -> None:
        """Copy what changed since the last snapshot: executions first, then the table, then the bucket.

        In that order, a record still ``processing`` in the snapshot belongs to an execution that
        was running at the listing, or had already ended without finishing its job.
        """
        with self._snapshot_lock:
            self._snapshot_executions(clients.client("stepfunctions"))
            self._snapshot_items(clients.client("dynamodb"), self.names.table, _ITEMS)
            self._snapshot_items(clients.client("dynamodb"), self.names.callbacks_table, _CALLBACKS)
            self._snapshot_objects(clients.client("s3"))
            self.manifest = self.manifest.model_copy(update={"saved_at": datetime.now(UTC)})
            _write_json(self.path / MANIFEST, self.manifest.model_dump(mode="json"))

    def _snapshot_executions(self, sfn: Any) -> None:
        kwargs: dict[str, Any] = {"stateMachineArn": self.names.state_machine_arn, "maxResults": 1000}
        while True:
            page = sfn.list_executions(**kwargs)
            for listed in page["executions"]:
                name = listed["name"]
                if name in self._ended:
                    continue
                description = sfn.describe_execution(executionArn=listed["executionArn"])
                description.pop("ResponseMetadata", None)
                stored = StoredExecution(run=self.run, description=description, history=_history(sfn, listed))
                text = json.dumps(_dump(stored), default=_json_default, sort_keys=True)
                digest = hashlib.sha256(text.encode()).hexdigest()
                if self._written.get(name) != digest:
                    _write_text(self._execution_path(self.run, name), text)
                    self._written[name] = digest
                if description["status"] in _TERMINAL:
                    self._ended.add(name)
            if not page.get("nextToken"):
                return
            kwargs["nextToken"] = page["nextToken"]

    def _snapshot_items(self, dynamodb: Any, table: str, file: Path) -> None:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        while True:
            page = dynamodb.scan(**kwargs)
            items.extend(_encode_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        items.sort(key=lambda item: json.dumps(item, sort_keys=True))
        text = json.dumps({"items": items}, sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest != self._digests.get(file):
            _write_text(self.path / file, text)
            self._digests[file] = digest

    def _snapshot_objects(self, s3: Any) -> None:
        bucket = self.names.bucket
        before = dict(self._index.objects)
        seen: set[str] = set()
        for listed in _list_objects(s3, bucket):
            key = listed["Key"]
            seen.add(key)
            entry = before.get(key)
            if entry and (entry.etag, entry.last_modified) == (listed["ETag"], listed["LastModified"]):
                continue
            fetched = _fetch_body(s3, bucket, key, self.path / _OBJECTS)
            if fetched is None:  # deleted since the listing
                seen.discard(key)
            else:
                dated = fetched.model_copy(update={"last_modified": listed["LastModified"]})
                self._index.objects[key] = dated
        for key in set(before) - seen:
            self._index.objects.pop(key, None)
        if self._index.objects != before:
            _write_json(self.path / _INDEX, self._index.model_dump(mode="json"))
            self._remove_unindexed_bodies()

    def _remove_unindexed_bodies(self) -> None:
        kept = {entry.file for entry in self._index.objects.values()}
        folder = self.path / _OBJECTS
        for body in folder.glob("*/*") if folder.is_dir() else ():
            if f"{body.parent.name}/{body.name}" not in kept:
                body.unlink(missing_ok=True)
                with contextlib.suppress(OSError):  # not empty yet
                    body.parent.rmdir()

    def _execution_path(self, run: str, name: str) -> Path:
        return self.path / _EXECUTIONS / run / f"{quote(name, safe='')}.json"


class PeriodicSnapshots:
    """A thread writing a snapshot every ``seconds`` (counted from the end of the previous one)."""

    def __init__(self, data: DataDir, clients: Clients, seconds: float = SNAPSHOT_SECONDS) -> None:
        self._data = data
        self._clients = clients
        self._seconds = seconds
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="local-data-snapshots", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stopping.wait(self._seconds):
            take_snapshot(self._data, self._clients)


def take_snapshot(data: DataDir, clients: Clients) -> bool:
    """One snapshot; a failure (the server going away, a full disk) is logged, not raised."""
    try:
        data.snapshot(clients)
    except (ClientError, BotoCoreError, OSError) as err:
        log.warning("could not write the data folder %s: %s", data.path, err)
        return False
    return True


# --- reading without opening (vidp executions) -------------------------------------------------


def read_manifest(path: Path) -> Manifest | None:
    """The folder's manifest; None for a missing or empty folder; DataDirError if it is not ours."""
    if not path.is_dir():
        return None
    manifest = path / MANIFEST
    if not manifest.is_file():
        leftovers = [p.name for p in path.iterdir() if p.name != _LOCK and not p.name.endswith(_TMP_SUFFIX)]
        if leftovers:
            raise DataDirError(
                f"{path} is not a vidp local data folder (no {MANIFEST}, but it holds {leftovers[0]}): "
                "choose an empty or new folder, or --ephemeral"
            )
        return None
    raw = _load_json(manifest)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise DataDirError(f"{manifest} is not a vidp local data manifest: choose another folder")
    version = raw.get("version")
    if isinstance(version, int) and version > VERSION:
        raise DataDirError(
            f"{path} was written by a newer vidp (data format {version}; this one reads {VERSION})"
        )
    if version != VERSION:
        raise DataDirError(f"{manifest}: unknown data format version {version!r} (this vidp reads {VERSION})")
    return _validated(Manifest, raw, manifest)


def stored_executions(path: Path) -> list[StoredExecution]:
    """Every execution in the folder (each run's), oldest first; [] for a missing folder."""
    folder = path / _EXECUTIONS
    found = [
        _validated(StoredExecution, _load_json(file), file)
        for file in (sorted(folder.glob("*/*.json")) if folder.is_dir() else [])
    ]
    return sorted(found, key=lambda e: e.description["startDate"])


def stored_items(path: Path) -> list[dict[str, Any]]:
    """The table's items of the last snapshot, in DynamoDB JSON as boto3's client gives them."""
    stored = _read_model(path, _ITEMS, StoredItems)
    return [_decode_item(item) for item in stored.items] if stored else []


# --- S3 ----------------------------------------------------------------------------------------


def _list_objects(s3: Any, bucket: str) -> Iterator[dict[str, Any]]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        yield from page.get("Contents", [])


def _body_name(key: str, etag: str) -> str:
    digest = hashlib.sha256(f"{key}\0{etag}".encode()).hexdigest()
    return f"{digest[:2]}/{digest}"


def _fetch_body(s3: Any, bucket: str, key: str, objects: Path) -> StoredObject | None:
    """Stream one object to its body file; None if it is gone."""
    try:
        got = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            return None
        raise
    name = _body_name(key, got["ETag"])
    with _atomic(objects / name, "wb") as handle:
        for chunk in got["Body"].iter_chunks(_CHUNK):
            handle.write(chunk)
        size = handle.tell()
        if size != got["ContentLength"]:  # raised inside: the body file keeps what it had
            raise OSError(f"s3://{bucket}/{key}: read {size} of {got['ContentLength']} bytes")
    headers = {name: got[name] for name in _HEADERS if got.get(name)}
    metadata = got.get("Metadata", {})
    return StoredObject(file=name, etag=got["ETag"], size=size, headers=headers, metadata=metadata)


def _put_body(s3: Any, bucket: str, key: str, entry: StoredObject, body: Path) -> str:
    """Upload one stored body (streamed from its file); return the new object's ETag."""
    extra: dict[str, Any] = {**entry.headers, "Metadata": entry.metadata}
    with body.open("rb") as handle:
        if entry.size <= _SINGLE_PUT_LIMIT:  # one part: the ETag is the original's unless it was multipart
            etag: str = s3.put_object(Bucket=bucket, Key=key, Body=handle, **extra)["ETag"]
            return etag
        s3.upload_fileobj(handle, bucket, key, ExtraArgs=extra, Config=TransferConfig())
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    return etag


# --- DynamoDB ----------------------------------------------------------------------------------


def _restore_items(dynamodb: Any, table: str, items: list[dict[str, Any]]) -> int:
    decoded = [_decode_item(item) for item in items]
    for start in range(0, len(decoded), 25):  # BatchWriteItem's limit
        batch = decoded[start : start + 25]
        requests: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in batch]}
        while requests:
            requests = dynamodb.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
    return len(decoded)


def _encode_item(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB JSON with binary values (``B``, ``BS``) as base64 text, as DynamoDB's exports write them."""
    return {name: _map_binary(value, _base64) for name, value in item.items()}


def _base64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _decode_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _map_binary(value, base64.b64decode) for name, value in item.items()}


def _map_binary(value: dict[str, Any], convert: Callable[[Any], Any]) -> dict[str, Any]:
    """One attribute value (``{"S": ...}``, ``{"M": {...}}``...) with ``convert`` applied to its binaries."""
    (kind, inner), *_ = value.items()
    if kind == "B":
        return {kind: convert(inner)}
    if kind == "BS":
        return {kind: [convert(one) for one in inner]}
    if kind == "M":
        return {kind: {name: _map_binary(attr, convert) for name, attr in inner.items()}}
    if kind == "L":
        return {kind: [_map_binary(one, convert) for one in inner]}
    return value


# --- executions --------------------------------------------------------------------------------


def _history(sfn: Any, listed: dict[str, Any]) -> list[dict[str, Any]]:
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=listed["executionArn"])
    return [event for page in pages for event in page["events"]]


def _aborted(execution: StoredExecution, stopped: datetime) -> StoredExecution:
    """A RUNNING execution of a run that ended without a clean stop, as it ended: ABORTED."""
    cause = "the local AWS stopped while the execution ran (last snapshot " + stopped.isoformat() + ")"
    description = {**execution.description, "status": "ABORTED", "stopDate": stopped, "cause": cause}
    last = max((int(event.get("id", 0)) for event in execution.history), default=0)
    ended = {"timestamp": stopped, "type": "ExecutionAborted", "id": last + 1, "previousEventId": last,
             "executionAbortedEventDetails": {"error": "", "cause": cause}}  # fmt: skip
    return execution.model_copy(update={"description": description, "history": [*execution.history, ended]})


# --- files -------------------------------------------------------------------------------------


def _lock(path: Path) -> IO[str]:
    handle = open(path / _LOCK, "a+")  # noqa: SIM115 - held open for as long as the folder is used
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DataDirError(f"data folder {path} is in use by another local AWS") from None
    return handle


def _remove_temporary_files(path: Path) -> None:
    for leftover in path.rglob(f"*{_TMP_SUFFIX}"):
        leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def _atomic(target: Path, mode: Literal["w", "wb"]) -> Iterator[Any]:
    """Write to a temporary file beside ``target``, then rename it over ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=_TMP_SUFFIX)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        Path(temporary).replace(target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _write_text(target: Path, text: str) -> None:
    with _atomic(target, "w") as handle:
        handle.write(text)


def _write_json(target: Path, value: Any) -> None:
    _write_text(target, json.dumps(value, default=_json_default, indent=1, sort_keys=True))


def _dump(execution: StoredExecution) -> dict[str, Any]:
    return {"run": execution.run, "description": execution.description, "history": execution.history}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _dates(obj: dict[str, Any]) -> dict[str, Any]:
    for name in _DATE_FIELDS & obj.keys():
        if isinstance(obj[name], str):
            with contextlib.suppress(ValueError):
                obj[name] = datetime.fromisoformat(obj[name])
    return obj


def _load_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"), object_hook=_dates)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataDirError(f"{file} is corrupt ({err}): move the folder away or use --ephemeral") from None


def _validated(model: type[M], raw: Any, file: Path) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise DataDirError(
            f"{file} is corrupt ({where}: {first['msg']}): move the folder away or use --ephemeral"
        ) from None


def _read_model(path: Path, relative: Path, model: type[M]) -> M | None:
    file = path / relative
    return _validated(model, _load_json(file), file) if file.is_file() else None

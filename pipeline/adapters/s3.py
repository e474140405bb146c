"""The S3 adapter, the only module that talks to S3: ``s3://`` URIs, heads, capped reads, small
writes, transfers, server-side copies, presigned GETs, clearing a prefix.

Every function takes an optional boto3 client; without one it uses a client built on first use
(no module-level side effects). boto3 reads ``AWS_ENDPOINT_URL`` by itself, which is how the
local AWS and the tests point it at a moto server.

Errors are translated once, here:
- a missing object or bucket when READING (an input) -> ``ObjectNotFound``, a kind of
  ``InvalidInput``: it can never appear by retrying;
- an object larger than the caller's cap -> ``ObjectTooLarge`` (the caller says what that means);
- throttling, 5xx, timeouts and connection failures -> ``StorageUnavailable`` (retryable);
- anything else (access denied, a missing bucket when WRITING, ...) -> ``StorageFailed``: not
  the caller's fault and not transient, an operator has to look.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from boto3.exceptions import RetriesExceededError, S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.adapters import aws_clients
from pipeline.failures import (
    InvalidInput,
    ObjectNotFound,
    ObjectTooLarge,
    StorageFailed,
    StorageUnavailable,
    VidpError,
)

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

# Error codes meaning "the thing you asked for does not exist" (HeadObject gives a bare "404").
_NOT_FOUND_CODES = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}
_TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "503",
    "500",
}
# S3 bucket names: 3-63 lowercase letters, digits, dots and hyphens, starting and ending alnum.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MAX_KEY_BYTES = 1024
# CopyObject copies at most 5 GB in one request; above that the managed copy does a multipart copy.
_SINGLE_COPY_LIMIT = 5 * 1000**3
_COPY_CONFIG = TransferConfig(multipart_threshold=_SINGLE_COPY_LIMIT, multipart_chunksize=512 * 1024**2)
_DELETE_BATCH = 1000  # DeleteObjects' limit
_TRANSIENT_DELETE_CODES = {"SlowDown", "InternalError", "ServiceUnavailable"}


@dataclass(frozen=True)
class S3Uri:
    """An object location ``s3://bucket/key``. The key is kept exactly as written: nothing is decoded."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, text: str) -> S3Uri:
        """Parse ``s3://bucket/key``; raise InvalidInput naming the URI if it is not one.

        No URL parsing: ``#``, ``?``, ``%2B``, ``+`` and spaces are ordinary key characters in S3.
        """
        scheme, sep, rest = text.partition("://")
        if not sep or scheme != "s3":
            raise InvalidInput(f"{text!r} is not an s3:// URI")
        bucket, _, key = rest.partition("/")
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise InvalidInput(f"{text!r}: {bucket!r} is not a valid S3 bucket name")
        if not key:
            raise InvalidInput(f"{text!r}: the URI names no object key")
        if len(key.encode("utf-8", errors="surrogatepass")) > _MAX_KEY_BYTES:
            raise InvalidInput(f"{text[:80]!r}...: the object key is longer than {_MAX_KEY_BYTES} bytes")
        return cls(bucket=bucket, key=key)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def name(self) -> str:
        """The last part of the key (after the last ``/``)."""
        return self.key.rpartition("/")[2]

    def sibling(self, name: str) -> S3Uri:
        """The object called ``name`` in the same folder as this one."""
        folder, slash, _ = self.key.rpartition("/")
        return S3Uri(self.bucket, f"{folder}{slash}{name}")


@dataclass(frozen=True)
class ObjectHead:
    """What HeadObject says about an object, with its user metadata (``x-amz-meta-*``)."""

    size: int
    etag: str
    content_type: str | None
    last_modified: datetime | None
    version_id: str | None
    metadata: dict[str, str] = field(default_factory=dict)


@lru_cache(maxsize=1)
def s3_client() -> S3Client:
    """The shared S3 client, built on first use (a Lambda reuses it across invocations)."""
    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=10,
        read_timeout=60,
    )
    s3: S3Client = aws_clients.client("s3", config)
    return s3


# --- reading ------------------------------------------------------------------------------------


def head(uri: S3Uri, *, client: S3Client | None = None) -> ObjectHead:
    """Size, ETag, type and metadata of an object; ObjectNotFound if it does not exist."""
    try:
        got = (client or s3_client()).head_object(Bucket=uri.bucket, Key=uri.key)
    except (ClientError, BotoCoreError) as err:
        raise storage_error(err, uri, reading=True) from None
    return ObjectHead(
        size=got["ContentLength"],
        etag=got["ETag"],
        content_type=got.get("ContentType"),
        last_modified=got.get("LastModified"),
        version_id=got.get("VersionId"),
        metadata=got.get("Metadata", {}),
    )


def head_or_none(uri: S3Uri, *, client: S3Client | None = None) -> ObjectHead | None:
    """HeadObject, or None if the object does not exist."""
    try:
        return head(uri, client=client)
    except ObjectNotFound:
        return None


def read_capped(uri: S3Uri, max_bytes: int, *, client: S3Client | None = None) -> bytes:
    """The object's bytes; ObjectTooLarge above ``max_bytes``, ObjectNotFound if it is missing."""
    try:
        got = (client or s3_client()).get_object(Bucket=uri.bucket, Key=uri.key)
        with got["Body"] as body:
            if got.get("ContentLength", 0) > max_bytes:
                # Don't download it only to say so.
                raise ObjectTooLarge(f"{uri} is {got['ContentLength']} bytes", size=got["ContentLength"])
            data = body.read(max_bytes + 1)
    except (ClientError, BotoCoreError) as err:
        raise storage_error(err, uri, reading=True) from None
    if len(data) > max_bytes:
        raise ObjectTooLarge(f"{uri} is larger than {max_bytes} bytes", size=None)
    return data


def keys_under(bucket: str, prefix: str, *, client: S3Client | None = None) -> Iterator[str]:
    """Every key under ``prefix``, in S3's order."""
    paginator = (client or s3_client()).get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


# --- writing ------------------------------------------------------------------------------------


def put_bytes(uri: S3Uri, body: bytes, *, content_type: str, client: S3Client | None = None) -> None:
    """Write a small object in one PUT (readers see all of it or nothing)."""
    try:
        (client or s3_client()).put_object(
            Bucket=uri.bucket, Key=uri.key, Body=body, ContentType=content_type
        )
    except (ClientError, BotoCoreError) as err:
        raise storage_error(err, uri, reading=False) from None


def put_json(uri: S3Uri, data: Any, *, client: S3Client | None = None) -> None:
    """Write a small JSON document (a single PUT: readers see all of it or nothing)."""
    body = json.dumps(data, ensure_ascii=False, sort_keys=True).encode("utf-8")
    put_bytes(uri, body, content_type="application/json", client=client)


# --- transfers ----------------------------------------------------------------------------------


def download(uri: S3Uri, path: Path, *, client: S3Client | None = None) -> int:
    """Download an input object to ``path``; return its size in bytes."""
    try:
        # s3transfer writes to a temporary name and renames it, so `path` is never partial.
        (client or s3_client()).download_file(uri.bucket, uri.key, str(path))
    except RetriesExceededError:
        raise StorageUnavailable(f"{uri}: download kept failing, try again later") from None
    except (ClientError, BotoCoreError) as err:
        raise storage_error(err, uri, reading=True) from None
    return path.stat().st_size


def upload(path: Path, uri: S3Uri, *, content_type: str, client: S3Client | None = None) -> None:
    """Upload a local file to ``uri`` (an output).

    upload_file switches to a multipart upload for large files. A multipart object becomes
    visible only when CompleteMultipartUpload succeeds, and s3transfer aborts the upload on
    failure; a single PUT is atomic too. So the key never holds a partial object.
    """
    try:
        (client or s3_client()).upload_file(
            str(path), uri.bucket, uri.key, ExtraArgs={"ContentType": content_type}
        )
    except S3UploadFailedError as err:
        # boto3 wraps the ClientError (raised inside its `except`) without a message we can use.
        cause = err.__context__
        if isinstance(cause, ClientError | BotoCoreError):
            raise storage_error(cause, uri, reading=False) from None
        raise StorageUnavailable(f"{uri}: upload failed ({err})") from None
    except (ClientError, BotoCoreError) as err:
        raise storage_error(err, uri, reading=False) from None


def delete(uri: S3Uri, *, client: S3Client | None = None) -> None:
    """Delete an object (deleting a missing object is not an error in S3)."""
    try:
        (client or s3_client()).delete_object(Bucket=uri.bucket, Key=uri.key)
    except (ClientError, BotoCoreError) as err:
        raise storage_error(err, uri, reading=False) from None


def copy(
    source: S3Uri,
    target: S3Uri,
    *,
    content_type: str,
    metadata: dict[str, str],
    client: S3Client | None = None,
) -> None:
    """Server-side copy, replacing the metadata; a multipart copy above 5 GB (CopyObject's limit).

    The target appears only when the copy completes (CopyObject and CompleteMultipartUpload are
    atomic), so a crash mid-copy leaves nothing at the target key. ObjectNotFound: no source.
    """
    try:
        (client or s3_client()).copy(
            {"Bucket": source.bucket, "Key": source.key},
            target.bucket,
            target.key,
            ExtraArgs={"MetadataDirective": "REPLACE", "ContentType": content_type, "Metadata": metadata},
            Config=_COPY_CONFIG,
        )
    except (ClientError, BotoCoreError) as err:
        raise storage_error(err, source, reading=True) from None


def delete_prefix(
    bucket: str, prefix: str, *, last: str | None = None, client: S3Client | None = None
) -> int:
    """Delete every object under ``prefix``, the key ``last`` only after all the others; return the count.

    Deleting ``last`` on its own at the end makes its presence mean "the clean-up did not finish".
    """
    if not prefix.endswith("/") or prefix == "/":
        raise ValueError(f"refusing to delete under {prefix!r}: not a folder prefix")
    where = S3Uri(bucket, prefix)
    s3 = client or s3_client()
    try:
        keys = list(keys_under(bucket, prefix, client=s3))
        others = [key for key in keys if key != last]
        batches = [others[i : i + _DELETE_BATCH] for i in range(0, len(others), _DELETE_BATCH)]
        if last in keys:
            batches.append([last])
        for batch in batches:
            answer = s3.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
            )
            if errors := answer.get("Errors"):
                code = str(errors[0].get("Code", ""))
                kind = StorageUnavailable if code in _TRANSIENT_DELETE_CODES else StorageFailed
                raise kind(f"{where}: {len(errors)} objects not deleted ({code})")
    except (ClientError, BotoCoreError) as err:
        raise storage_error(err, where, reading=False) from None
    return len(keys)


# --- presigning ---------------------------------------------------------------------------------


@lru_cache(maxsize=2)
def _presign_client(addressing_style: Literal["virtual", "path"]) -> S3Client:
    config = Config(signature_version="s3v4", s3={"addressing_style": addressing_style})
    s3: S3Client = aws_clients.client("s3", config)
    return s3


def _style(uri: S3Uri) -> Literal["virtual", "path"]:
    on_aws = (urlsplit(s3_client().meta.endpoint_url).hostname or "").endswith(".amazonaws.com")
    return "virtual" if on_aws and "." not in uri.bucket else "path"


def presign_get(uri: S3Uri, *, expires_in: int) -> str:
    """A GET URL for the object, valid ``expires_in`` seconds (or until the signing session ends).

    Signed with SigV4 (the shared client's default presigns SigV2 on the global endpoint, which
    bounds nothing and redirects outside us-east-1). Virtual-host style on AWS; path style for a
    custom endpoint (the local AWS) and for dotted bucket names (TLS names can't match them).
    """
    try:
        return _presign_client(_style(uri)).generate_presigned_url(
            "get_object", Params={"Bucket": uri.bucket, "Key": uri.key}, ExpiresIn=expires_in
        )
    except (ClientError, BotoCoreError) as err:
        raise storage_error(err, uri, reading=True) from None


def presign_post(
    uri: S3Uri, *, content_type: str, max_bytes: int, expires_in: int
) -> tuple[str, dict[str, str]]:
    """An HTML-form upload of one object: the URL and the fields to send before the file.

    The policy S3 checks allows only this key, this Content-Type and at most ``max_bytes``.
    """
    conditions: list[Any] = [{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]]
    try:
        post = _presign_client(_style(uri)).generate_presigned_post(
            Bucket=uri.bucket,
            Key=uri.key,
            Fields={"Content-Type": content_type},
            Conditions=conditions,
            ExpiresIn=expires_in,
        )
    except (ClientError, BotoCoreError) as err:
        raise storage_error(err, uri, reading=False) from None
    return str(post["url"]), {str(name): str(value) for name, value in post["fields"].items()}


def reachable(bucket: str, prefix: str, *, client: S3Client | None = None) -> bool:
    """Whether S3 answers a listing of ``prefix`` in ``bucket`` (the health check's question)."""
    try:
        (client or s3_client()).list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except (ClientError, BotoCoreError):
        return False
    return True


# --- errors -------------------------------------------------------------------------------------


def storage_error(err: ClientError | BotoCoreError, uri: S3Uri, *, reading: bool) -> VidpError:
    """Translate a boto error into ObjectNotFound, StorageUnavailable or StorageFailed (one line)."""
    if isinstance(err, BotoCoreError):
        # Connection refused/reset, timeouts, retries exhausted: the network or S3, not the data.
        return StorageUnavailable(f"{uri}: S3 unreachable ({type(err).__name__})")
    error = err.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in _NOT_FOUND_CODES or status == 404:
        what = "bucket" if code == "NoSuchBucket" else "object"
        if reading:
            return ObjectNotFound(f"{uri}: {what} not found")
        return StorageFailed(f"{uri}: cannot write, {what} not found")
    if code in _TRANSIENT_CODES or status >= 500 or status == 429:
        return StorageUnavailable(f"{uri}: S3 error {code or status}, try again later")
    message = str(error.get("Message", "")) or code
    return StorageFailed(f"{uri}: S3 refused the request ({code or status}: {message})")

"""S3 operations the steps need beyond ``pipeline.adapters.s3``: capped reads, copies, presigning,
clearing a prefix. Errors are translated by the same ``storage_error`` as the adapter's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.adapters.s3 import S3Uri, s3_client, storage_error
from pipeline.failures import InvalidInput, StorageFailed, StorageUnavailable

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

# CopyObject copies at most 5 GB in one request; above that the managed copy does a multipart copy.
_SINGLE_COPY_LIMIT = 5 * 1000**3
_COPY_CONFIG = TransferConfig(multipart_threshold=_SINGLE_COPY_LIMIT, multipart_chunksize=512 * 1024**2)
_DELETE_BATCH = 1000  # DeleteObjects' limit
_TRANSIENT_DELETE_CODES = {"SlowDown", "InternalError", "ServiceUnavailable"}


@dataclass(frozen=True)
class Head:
    """HeadObject's answer, with the user metadata (``x-amz-meta-*``)."""

    size: int
    content_type: str | None
    metadata: dict[str, str]


class OverCap(Exception):
    """The object is larger than the caller's cap."""

    def __init__(self, size: int) -> None:
        super().__init__(f"{size} bytes")
        self.size = size


def read_capped(uri: S3Uri, max_bytes: int) -> bytes:
    """The object's bytes; OverCap if it has more than ``max_bytes``, InvalidInput if it is missing."""
    try:
        got = s3_client().get_object(Bucket=uri.bucket, Key=uri.key)
        with got["Body"] as body:
            if got.get("ContentLength", 0) > max_bytes:
                raise OverCap(got["ContentLength"])  # don't download it only to say so
            data = body.read(max_bytes + 1)
    except (ClientError, BotoCoreError) as err:
        raise storage_error(err, uri, reading=True) from None
    if len(data) > max_bytes:
        raise OverCap(len(data))
    return data


def put_bytes(uri: S3Uri, body: bytes, *, content_type: str) -> None:
    """Write a small object in one PUT (readers see all of it or nothing)."""
    try:
        s3_client().put_object(Bucket=uri.bucket, Key=uri.key, Body=body, ContentType=content_type)
    except (ClientError, BotoCoreError) as err:
        raise storage_error(err, uri, reading=False) from None


def head_or_none(uri: S3Uri) -> Head | None:
    """HeadObject, or None if the object does not exist."""
    try:
        got = s3_client().head_object(Bucket=uri.bucket, Key=uri.key)
    except (ClientError, BotoCoreError) as err:
        translated = storage_error(err, uri, reading=True)
        if type(translated) is InvalidInput:  # exactly "not found"
            return None
        raise translated from None
    return Head(
        size=got["ContentLength"], content_type=got.get("ContentType"), metadata=got.get("Metadata", {})
    )


def copy(source: S3Uri, target: S3Uri, *, content_type: str, metadata: dict[str, str]) -> None:
    """Server-side copy, replacing the metadata; a multipart copy above 5 GB (CopyObject's limit).

    The target appears only when the copy completes (CopyObject and CompleteMultipartUpload are
    atomic), so a crash mid-copy leaves nothing at the target key.
    """
    try:
        s3_client().copy(
            {"Bucket": source.bucket, "Key": source.key},
            target.bucket,
            target.key,
            ExtraArgs={"MetadataDirective": "REPLACE", "ContentType": content_type, "Metadata": metadata},
            Config=_COPY_CONFIG,
        )
    except (ClientError, BotoCoreError) as err:
        raise storage_error(err, source, reading=True) from None


@lru_cache(maxsize=2)
def _presign_client(addressing_style: Literal["virtual", "path"]) -> S3Client:
    return boto3.client(
        "s3", config=Config(signature_version="s3v4", s3={"addressing_style": addressing_style})
    )


def presign_get(uri: S3Uri, *, expires_in: int) -> str:
    """A GET URL for the object, valid ``expires_in`` seconds (or until the signing session ends).

    Signed with SigV4 (the shared client's default presigns SigV2 on the global endpoint, which
    bounds nothing and redirects outside us-east-1). Virtual-host style on AWS; path style for a
    custom endpoint (the local AWS) and for dotted bucket names (TLS names can't match them).
    """
    on_aws = (urlsplit(s3_client().meta.endpoint_url).hostname or "").endswith(".amazonaws.com")
    style: Literal["virtual", "path"] = "virtual" if on_aws and "." not in uri.bucket else "path"
    try:
        return _presign_client(style).generate_presigned_url(
            "get_object", Params={"Bucket": uri.bucket, "Key": uri.key}, ExpiresIn=expires_in
        )
    except (ClientError, BotoCoreError) as err:
        raise storage_error(err, uri, reading=True) from None


def _keys_under(bucket: str, prefix: str) -> Iterator[str]:
    paginator = s3_client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


def delete_prefix(bucket: str, prefix: str, *, last: str | None = None) -> int:
    """Delete every object under ``prefix``, the key ``last`` only after all the others; return the count.

    Deleting ``last`` on its own at the end makes its presence mean "the clean-up did not finish".
    """
    if not prefix.endswith("/") or prefix == "/":
        raise ValueError(f"refusing to delete under {prefix!r}: not a folder prefix")
    where = S3Uri(bucket, prefix)
    try:
        keys = list(_keys_under(bucket, prefix))
        others = [key for key in keys if key != last]
        batches = [others[i : i + _DELETE_BATCH] for i in range(0, len(others), _DELETE_BATCH)]
        if last in keys:
            batches.append([last])
        for batch in batches:
            answer = s3_client().delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
            )
            if errors := answer.get("Errors"):
                code = str(errors[0].get("Code", ""))
                kind = StorageUnavailable if code in _TRANSIENT_DELETE_CODES else StorageFailed
                raise kind(f"{where}: {len(errors)} objects not deleted ({code})")
    except (ClientError, BotoCoreError) as err:
        raise storage_error(err, where, reading=False) from None
    return len(keys)

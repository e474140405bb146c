"""S3Uri parsing: keys are taken literally, bad URIs are InvalidInput naming the URI."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from pipeline.adapters.s3 import S3Uri, storage_error
from pipeline.failures import InvalidInput, ObjectNotFound, StorageFailed, StorageUnavailable


@pytest.mark.parametrize(
    "key",
    [
        "plain.mp4",
        "incoming/my video.mp4",
        "incoming/vidéo 字幕.mp4",
        "a+b=c.mp4",
        'it\'s "quoted".mp4',
        "literal%2Bplus%20.mp4",
        "hash#and?query.mp4",
        "a//double/slash/",
        "  leading and trailing spaces  ",
        "x" * 1024,
    ],
)
def test_key_is_kept_exactly(key: str) -> None:
    uri = S3Uri.parse(f"s3://my-bucket.example/{key}")

    assert (uri.bucket, uri.key) == ("my-bucket.example", key)
    assert str(uri) == f"s3://my-bucket.example/{key}"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "my-bucket/key",
        "s3:/my-bucket/key",
        "S3://my-bucket/key",
        "https://my-bucket.s3.amazonaws.com/key",
        "s3://",
        "s3://my-bucket",
        "s3://my-bucket/",
        "s3://My-Bucket/key",
        "s3://ab/key",
        "s3://bad..bucket/key",
        "s3://-bucket/key",
        "s3://bucket_name/key",
        "s3://my-bucket/" + "é" * 513,  # 1026 bytes of UTF-8
    ],
)
def test_not_an_object_uri_is_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        S3Uri.parse(text)

    assert "\n" not in str(caught.value)
    assert text[:20] in str(caught.value)


def test_sibling_is_in_the_same_folder() -> None:
    assert str(S3Uri.parse("s3://b-1/work/j 1/output.mp4").sibling("manifest.json")) == (
        "s3://b-1/work/j 1/manifest.json"
    )
    assert str(S3Uri.parse("s3://b-1/output.mp4").sibling("manifest.json")) == "s3://b-1/manifest.json"
    assert S3Uri.parse("s3://b-1/a/b c.mp4").name == "b c.mp4"


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


@pytest.mark.parametrize(
    ("err", "reading", "expected"),
    [
        (client_error("404", 404), True, ObjectNotFound),
        (client_error("NoSuchKey", 404), True, ObjectNotFound),
        (client_error("NoSuchBucket", 404), True, ObjectNotFound),
        (client_error("NoSuchBucket", 404), False, StorageFailed),
        (client_error("AccessDenied", 403), True, StorageFailed),
        (client_error("SlowDown", 503), True, StorageUnavailable),
        (client_error("InternalError", 500), False, StorageUnavailable),
        (client_error("TooManyRequests", 429), False, StorageUnavailable),
        (EndpointConnectionError(endpoint_url="http://x"), True, StorageUnavailable),
    ],
)
def test_s3_errors_become_pipeline_errors(err: Exception, reading: bool, expected: type[Exception]) -> None:
    uri = S3Uri.parse("s3://bucket/in put.mp4")

    translated = storage_error(err, uri, reading=reading)  # type: ignore[arg-type]

    assert type(translated) is expected
    assert str(uri) in str(translated)
    assert getattr(translated, "retryable", False) is (expected is StorageUnavailable)
    # A missing input is a kind of invalid input: never retried, recorded as INVALID_INPUT.
    assert isinstance(translated, InvalidInput) is (expected is ObjectNotFound)
    assert translated.code == {ObjectNotFound: "INVALID_INPUT"}.get(expected, translated.code)

"""Finalise: the output at its final key, a presigned URL, an empty work prefix; safe to run twice."""

from __future__ import annotations

import pytest

from pipeline.failures import TranscodeFailed
from pipeline.models import FinalOutput, Job
from pipeline.steps.finalise import handler
from tests.support.aws import BUCKET, Aws, claim, encoded, request


@pytest.fixture
def job(aws: Aws) -> Job:
    return claim(request(aws, key="incoming/My Holiday (1).mov", resolution="720p"))


def finalise(job: Job) -> FinalOutput:
    return FinalOutput.model_validate(handler({"job": job.model_dump(mode="json")}, None))


def test_given_an_encoded_job_when_finalised_then_the_output_is_at_its_final_key_and_work_is_empty(
    aws: Aws, job: Job
) -> None:
    encoded(aws, job, body=b"the encoded bytes")

    output = finalise(job)

    assert output.key == f"videos/{job.video_id}/My_Holiday__1_720p.mp4"
    assert output.s3_uri == f"s3://{BUCKET}/{output.key}"
    assert aws.read(output.key) == b"the encoded bytes"
    assert aws.s3.head_object(Bucket=BUCKET, Key=output.key)["ContentType"] == "video/mp4"
    assert (output.size, output.duration, output.width, output.height) == (17, 2.5, 1280, 720)
    assert (output.video_codec, output.audio_codec, output.codecs) == ("h264", "aac", "h264/aac")
    assert aws.keys("work/") == []
    assert aws.keys("incoming/") != []  # the source stays


def test_given_an_output_without_audio_when_finalised_then_codecs_is_h264(aws: Aws, job: Job) -> None:
    encoded(aws, job, audio=False)

    output = finalise(job)

    assert (output.audio_codec, output.codecs) == (None, "h264")


def test_given_a_finalised_job_when_finalised_again_then_the_same_output_and_nothing_changes(
    aws: Aws, job: Job
) -> None:
    encoded(aws, job, body=b"once")
    first = finalise(job)

    again = finalise(job)  # a retry after the answer was lost, or a redrive

    assert again == first
    assert aws.read(again.key) == b"once"
    assert aws.keys("work/") == []


def test_given_a_crash_after_the_copy_when_finalised_again_then_the_job_completes(aws: Aws, job: Job) -> None:
    encoded(aws, job)
    first = finalise(job)
    encoded(aws, job)  # as if the clean-up had not run: output, manifest and SRT are back
    aws.s3.delete_object(Bucket=BUCKET, Key=job.work.output)  # ...and it died after deleting the output

    again = finalise(job)

    assert again.key == first.key
    assert again.size == first.size
    assert aws.keys("work/") == []


def test_given_no_manifest_and_no_final_object_when_finalised_then_transcode_failed(
    aws: Aws, job: Job
) -> None:
    aws.put(job.work.output, b"half an encode")  # the task died before writing its manifest

    with pytest.raises(TranscodeFailed, match="the encode never completed"):
        finalise(job)

    assert aws.keys("videos/") == []


def test_given_a_manifest_of_another_job_when_finalised_then_transcode_failed(aws: Aws, job: Job) -> None:
    other = claim(request(aws, key="incoming/other.mp4"), execution="arn:other")
    encoded(aws, other)
    aws.s3.copy_object(
        Bucket=BUCKET, Key=job.work.manifest, CopySource={"Bucket": BUCKET, "Key": other.work.manifest}
    )
    aws.put(job.work.output)

    with pytest.raises(TranscodeFailed, match="another job"):
        finalise(job)

    assert aws.keys("videos/") == []


def test_given_a_manifest_that_is_not_one_when_finalised_then_transcode_failed(aws: Aws, job: Job) -> None:
    aws.put(job.work.output)
    aws.put(job.work.manifest, b"{not json")

    with pytest.raises(TranscodeFailed, match="not a valid task manifest"):
        finalise(job)


def test_given_many_work_objects_when_finalised_then_all_are_deleted(aws: Aws, job: Job) -> None:
    encoded(aws, job)
    for index in range(30):
        aws.put(f"{job.work.prefix}logs/{index}.txt", b"x")

    finalise(job)

    assert aws.keys("work/") == []

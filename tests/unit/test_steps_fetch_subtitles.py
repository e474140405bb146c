"""FetchSubtitles: the clean SRT lands under work/{job_id}/, or the error says what to do."""

from __future__ import annotations

import socket

import pytest

from pipeline.adapters import jobs_table
from pipeline.failures import InvalidSubtitles, SubtitleFetchFailed, UnsafeUrl
from pipeline.models import Job, SubtitlesFetched
from pipeline.steps.fetch_subtitles import handler
from pipeline.steps.settings import step_settings
from tests.support.aws import (
    BUCKET,
    SRT,
    TABLE,
    Aws,
    claim,
    request,
)
from tests.support.server import LocalServer, Reply


def fetch(job: Job) -> SubtitlesFetched:
    return SubtitlesFetched.model_validate(handler({"job": job.model_dump(mode="json")}, None))


def url_job(aws: Aws, url: str) -> Job:
    return claim(request(aws, subtitles={"url": url}))


def test_given_an_srt_in_s3_when_fetched_then_the_clean_srt_is_stored_in_the_work_prefix(aws: Aws) -> None:
    job = claim(request(aws))

    result = fetch(job)

    assert result == SubtitlesFetched(
        key=f"work/{job.job_id}/subtitles.srt", cues=2, encoding="utf-8", dropped=0
    )
    stored = aws.s3.get_object(Bucket=BUCKET, Key=result.key)
    assert stored["ContentType"] == "text/plain; charset=utf-8"
    text = stored["Body"].read().decode("utf-8")
    assert "HELLO WORLD" in text
    assert "SECOND CUE" in text


def test_given_a_missing_srt_object_when_fetched_then_invalid_subtitles(aws: Aws) -> None:
    job = claim(request(aws, subtitles={"s3_uri": f"s3://{BUCKET}/incoming/none.srt"}))

    with pytest.raises(InvalidSubtitles, match="subtitle object not found"):
        fetch(job)

    assert aws.keys("work/") == []


def test_given_an_srt_in_another_bucket_when_fetched_then_invalid_subtitles(aws: Aws) -> None:
    job = claim(request(aws, subtitles={"s3_uri": "s3://another-bucket/x.srt"}))

    with pytest.raises(InvalidSubtitles, match="another-bucket"):
        fetch(job)


def test_given_an_srt_object_over_the_cap_when_fetched_then_invalid_subtitles(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = claim(request(aws))
    monkeypatch.setenv("VIDP_MAX_SUBTITLE_BYTES", "20")
    step_settings.cache_clear()

    with pytest.raises(InvalidSubtitles, match="over the limit of 20 bytes"):
        fetch(job)


def test_given_an_srt_url_when_fetched_then_the_clean_srt_is_stored(aws: Aws, server: LocalServer) -> None:
    job = url_job(
        aws, server.route("/subs/clip.srt", Reply(200, SRT, {"Content-Type": "application/x-subrip"}))
    )

    result = fetch(job)

    assert result.cues == 2
    assert b"SECOND CUE" in aws.read(job.work.subtitles)


def test_given_a_url_answering_500_then_200_when_fetched_twice_then_retryable_then_stored(
    aws: Aws, server: LocalServer
) -> None:
    job = url_job(aws, server.route("/flaky.srt", Reply(500, b"oops"), Reply(200, SRT)))

    with pytest.raises(SubtitleFetchFailed, match="answered 500"):
        fetch(job)
    assert fetch(job).cues == 2  # what the state's Retry does next


@pytest.mark.parametrize("status", [404, 410, 403])
def test_given_a_url_answering_a_client_error_when_fetched_then_invalid_subtitles(
    aws: Aws, server: LocalServer, status: int
) -> None:
    job = url_job(aws, server.route("/gone.srt", Reply(status)))

    with pytest.raises(InvalidSubtitles, match=f"subtitle URL on 127.0.0.1 answered {status}"):
        fetch(job)


@pytest.mark.parametrize("status", [429, 503])
def test_given_a_busy_url_when_fetched_then_subtitle_fetch_failed(
    aws: Aws, server: LocalServer, status: int
) -> None:
    job = url_job(aws, server.route("/busy.srt", Reply(status)))

    with pytest.raises(SubtitleFetchFailed) as caught:
        fetch(job)
    assert type(caught.value).__name__ == "SubtitleFetchFailed"  # the name the Retry matches


def test_given_a_url_whose_query_holds_a_token_when_it_fails_then_the_error_omits_it(
    aws: Aws, server: LocalServer
) -> None:
    job = url_job(aws, server.route("/private.srt", Reply(404)) + "?token=s3cr3t")

    with pytest.raises(InvalidSubtitles) as caught:
        fetch(job)
    assert "s3cr3t" not in str(caught.value)
    assert "/private.srt" not in str(caught.value)


def test_given_an_hls_playlist_named_srt_when_fetched_then_invalid_subtitles(
    aws: Aws, server: LocalServer
) -> None:
    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://169.254.169.254/latest\n"
    job = url_job(aws, server.route("/evil.srt", Reply(200, playlist)))

    with pytest.raises(InvalidSubtitles, match="HLS playlist"):
        fetch(job)

    assert aws.keys("work/") == []


def test_given_a_body_over_the_cap_when_fetched_then_invalid_subtitles(
    aws: Aws, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = url_job(aws, server.route("/big.srt", Reply(200, SRT * 100)))
    monkeypatch.setenv("VIDP_MAX_SUBTITLE_BYTES", "1000")
    step_settings.cache_clear()

    with pytest.raises(InvalidSubtitles, match="over the limit of 1000 bytes"):
        fetch(job)


def test_given_the_metadata_address_when_fetched_then_unsafe_url_and_nothing_stored(aws: Aws) -> None:
    job = url_job(aws, "http://169.254.169.254/latest/meta-data/iam/security-credentials/")

    with pytest.raises(UnsafeUrl) as caught:
        fetch(job)

    assert type(caught.value).__name__ == "UnsafeUrl"  # an InvalidInput: never retried
    assert aws.keys("work/") == []


def test_given_a_refused_connection_when_fetched_then_subtitle_fetch_failed(aws: Aws) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    job = url_job(aws, f"http://127.0.0.1:{port}/subs.srt")

    with pytest.raises(SubtitleFetchFailed, match="could not be fetched"):
        fetch(job)


def test_given_an_srt_with_thousands_of_cues_at_one_instant_when_fetched_then_invalid_subtitles(
    aws: Aws,
) -> None:
    stacked = b"".join(b"%d\n00:00:01,000 --> 00:00:02,000\nc%d\n\n" % (i, i) for i in range(1, 5001))
    job = claim(request(aws, subtitles={"s3_uri": aws.put("incoming/stacked.srt", stacked)}))

    with pytest.raises(InvalidSubtitles) as caught:
        fetch(job)

    assert str(caught.value) == (
        "SRT file has 5000 cues on screen at once at 00:00:01,000; at most 15 can overlap"
    )
    assert aws.keys("work/") == []


def test_given_the_job_ended_while_fetching_when_stored_then_nothing_is_left_in_work(aws: Aws) -> None:
    job = claim(request(aws))
    # Stopped meanwhile: the reconciler marked it failed and cleaned work/ before this write.
    assert jobs_table.mark_failed(
        job.video_id, job.job_id, error_code="ABORTED", error_message="stopped",
        failed_state="FetchSubtitles", now=jobs_table.now_iso(), table=TABLE,
    )  # fmt: skip

    fetch(job)

    assert aws.keys(job.work.prefix) == []

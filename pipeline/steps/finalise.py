"""Finalise: place the encoded output at its final key and clear work/{job_id}/.

Idempotent, so a retry or a redrive after a crash at any point completes the job:

1. The manifest is the task's proof that the output is complete; it is deleted last, so while it
   exists the work prefix has not been cleared. With a manifest: copy ``output.mp4`` to the final
   key (copying again after a crash is harmless: same bytes); if ``output.mp4`` is already gone, the
   previous attempt copied it and was clearing the prefix, so the final object must be there.
2. The final object carries the manifest's facts as user metadata (``x-amz-meta-vidp-*``). So
   without a manifest, a final object of this job means a previous attempt finished the copy and
   the clean-up: the output is rebuilt from its HeadObject alone.
3. Neither a manifest nor a final object: the encode never completed (``TranscodeFailed``).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from pipeline import deployment
from pipeline.adapters import s3
from pipeline.adapters.s3 import ObjectHead, S3Uri
from pipeline.failures import ObjectNotFound, ObjectTooLarge, TranscodeFailed
from pipeline.logs import logger, step_log
from pipeline.models import FinalOutput, Job, JobEvent, OutputFacts, QualityScore, TaskManifest

_log = logger("finalise")
_MAX_MANIFEST_BYTES = 1024 * 1024
_META = deployment.OUTPUT_METADATA_PREFIX


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    job = JobEvent.model_validate(event).job
    with step_log(_log, "Finalise", job_id=job.job_id):
        return finalise(job).model_dump(mode="json")


def output_metadata(facts: OutputFacts, job_id: str) -> dict[str, str]:
    """The facts as the final object's S3 user metadata (ASCII strings); its size is its own length."""
    values: dict[str, Any] = {
        "job-id": job_id,
        "duration": facts.duration,
        "width": facts.width,
        "height": facts.height,
        "video-codec": facts.video_codec,
        "audio-codec": facts.audio_codec,
        "ssim": facts.quality.ssim if facts.quality else None,
        "psnr": facts.quality.psnr if facts.quality else None,
    }
    return {_META + key: str(value) for key, value in values.items() if value is not None}


def facts_of_object(head: ObjectHead, where: S3Uri) -> OutputFacts:
    """The facts a final object carries in its metadata (``output_metadata``'s reverse)."""
    meta = {key.removeprefix(_META): value for key, value in head.metadata.items()}
    try:
        quality = None
        if "ssim" in meta and "psnr" in meta:
            quality = QualityScore(ssim=float(meta["ssim"]), psnr=float(meta["psnr"]))
        return OutputFacts(
            size=head.size,
            duration=float(meta["duration"]),
            width=int(meta["width"]),
            height=int(meta["height"]),
            video_codec=meta["video-codec"],
            audio_codec=meta.get("audio-codec"),
            quality=quality,
        )
    except (KeyError, ValueError):
        raise TranscodeFailed(
            f"{where} has no readable vidp metadata: not an output of this pipeline"
        ) from None


def finalise(job: Job) -> FinalOutput:
    """Copy the output to ``job.final_key`` and clear the work prefix; see the module's rule."""
    final = S3Uri(job.bucket, job.final_key)
    manifest = _read_manifest(job)
    if manifest is not None:
        output = S3Uri(job.bucket, job.work.output)
        if (output_head := s3.head_or_none(output)) is not None:
            facts = _facts_from_manifest(manifest, size=output_head.size)
            try:
                metadata = output_metadata(facts, job.job_id)
                s3.copy(output, final, content_type="video/mp4", metadata=metadata)
            except ObjectNotFound:  # gone since the head: nothing else deletes it
                raise TranscodeFailed(f"the encoded output {output} disappeared during the copy") from None
        elif (final_head := _own_final_object(job, final)) is not None:
            facts = _facts_from_manifest(manifest, size=final_head.size)
        else:
            raise TranscodeFailed(f"the encoded output {output} is missing although its manifest exists")
    else:
        final_head = _own_final_object(job, final)
        if final_head is None:
            raise TranscodeFailed(
                f"no manifest at s3://{job.bucket}/{job.work.manifest}: the encode never completed"
            )
        facts = facts_of_object(final_head, final)
        _log.info("final object already in place: rebuilding the output", extra={"job_id": job.job_id})
    removed = s3.delete_prefix(job.bucket, job.work.prefix, last=job.work.manifest)
    _log.info("work prefix cleared", extra={"job_id": job.job_id, "objects": removed})

    codecs = "/".join(codec for codec in (facts.video_codec, facts.audio_codec) if codec)
    return FinalOutput(s3_uri=str(final), key=final.key, codecs=codecs, **facts.model_dump())


def _read_manifest(job: Job) -> TaskManifest | None:
    """The task's manifest, None if there is none; TranscodeFailed if it is unusable."""
    where = S3Uri(job.bucket, job.work.manifest)
    try:
        raw = s3.read_capped(where, _MAX_MANIFEST_BYTES)
    except ObjectNotFound:
        return None
    except ObjectTooLarge:
        raise TranscodeFailed(f"{where} is larger than {_MAX_MANIFEST_BYTES} bytes") from None
    try:
        manifest = TaskManifest.model_validate(json.loads(raw))
    except (ValueError, ValidationError):
        raise TranscodeFailed(f"{where} is not a valid task manifest") from None
    if manifest.job_id != job.job_id or (manifest.output_bucket, manifest.output_key) != (
        job.bucket,
        job.work.output,
    ):
        raise TranscodeFailed(f"{where} describes another job or output ({manifest.output_uri})")
    return manifest


def _facts_from_manifest(manifest: TaskManifest, *, size: int) -> OutputFacts:
    known = manifest.model_dump(include=set(OutputFacts.model_fields) - {"size"})
    return OutputFacts(size=size, **known)


def _own_final_object(job: Job, final: S3Uri) -> ObjectHead | None:
    """The final object's head if it exists and this job wrote it."""
    head = s3.head_or_none(final)
    if head is None:
        return None
    if head.metadata.get(deployment.OUTPUT_JOB_ID) != job.job_id:
        raise TranscodeFailed(f"{final} exists but was not written by job {job.job_id}")
    return head

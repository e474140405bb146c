"""The Fargate task of ``BurnAndCompress``: ``python -m pipeline.task`` (the image's ENTRYPOINT).

One job per task, described by ``VIDP_*`` environment variables (ECS container overrides).
``VIDP_TASK_KIND`` chooses the job variant (default ``whole-file``: download the video and the
clean SRT, burn and compress in one ffmpeg pass, upload the output, then write its manifest).
The manifest is written last, so its presence means the output is complete.

The task logs one JSON line per phase on stdout, one line on stderr when it fails, and exits:

- 0: the job's outputs and then its manifest are in S3;
- 3: the configuration or an input can never work (InvalidInput): never retry;
- 1: anything else (ffmpeg failure, S3 trouble, SIGTERM, a bug): may be retried.

Under Step Functions (``ecs:runTask.waitForTaskToken``) the state gives ``VIDP_TASK_TOKEN``; the
task then sends heartbeats while it works, records the encode progress on the job record, and
ends with SendTaskSuccess (the job's result, e.g. the manifest) or SendTaskFailure (the error
class name, e.g. ``InvalidMedia``, and a one-line cause). The token is never logged.

Where things are: ``__main__`` is the entry point (signals, configuration, exit codes),
``whole_file`` today's job, ``files`` the S3 <-> scratch folder moves every job shares,
``reporting`` the Step Functions side and the log lines, ``config`` the settings, and
``variant`` what a job variant gives the runtime and gets from it.
"""

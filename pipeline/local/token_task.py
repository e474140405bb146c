"""A trivial container task to check the local AWS's ECS path: ``python -m pipeline.local.token_task``.

It does what the ffmpeg task does with Step Functions, and nothing else: a heartbeat every
``VIDP_HEARTBEAT_SECONDS`` while it "works" for ``VIDP_WORK_SECONDS`` (default 0), then
SendTaskSuccess with what it was given: the job id, the names of its ``VIDP_*`` variables and a
short digest of its token (never the token). Exit 0, or 3 without a token. Only boto3 is
imported, so it starts in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time

import boto3


def token_digest(token: str) -> str:
    """A short digest that tells tokens apart without revealing them."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def main() -> int:
    token = os.environ.get("VIDP_TASK_TOKEN", "")
    if not token:
        print("token_task: error: VIDP_TASK_TOKEN is not set", file=sys.stderr)
        return 3
    every = float(os.environ.get("VIDP_HEARTBEAT_SECONDS", "30"))
    work = float(os.environ.get("VIDP_WORK_SECONDS", "0"))
    sfn = boto3.client("stepfunctions")
    done = threading.Event()

    def beat() -> None:
        while not done.is_set():
            sfn.send_task_heartbeat(taskToken=token)
            done.wait(every)

    beating = threading.Thread(target=beat, daemon=True)
    beating.start()
    time.sleep(work)
    done.set()
    beating.join()
    result = {
        "job_id": os.environ.get("VIDP_JOB_ID"),
        "token_sha256": token_digest(token),
        "variables": sorted(name for name in os.environ if name.startswith("VIDP_")),
    }
    sfn.send_task_success(taskToken=token, output=json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

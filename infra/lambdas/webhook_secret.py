"""Custom resource: put a Standard Webhooks secret (``whsec_`` + base64 of 32 random bytes).

Secrets Manager can generate only a random password, never a prefixed base64 key, and the Notify
step refuses anything but ``whsec_<base64>``. On Create this function writes such a value into
the secret named by ``SecretArn`` (so the value never appears in a template or a log); so does
an Update that names another secret. Otherwise Update and Delete leave the value alone (callers
hold it). Inline code (``Code.from_inline``): only the standard library and boto3.
"""

import base64
import json
import secrets
import urllib.request
from typing import Any

import boto3


def _respond(event: dict[str, Any], status: str, reason: str = "") -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason or status,
            "PhysicalResourceId": event.get("PhysicalResourceId") or event["LogicalResourceId"],
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": {},
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - CloudFormation's presigned https URL
        event["ResponseURL"], data=body, method="PUT", headers={"content-type": ""}
    )
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310
        pass


def handler(event: dict[str, Any], context: object) -> None:
    try:
        arn = event["ResourceProperties"]["SecretArn"]
        previous = event.get("OldResourceProperties", {}).get("SecretArn")
        if event["RequestType"] == "Create" or (event["RequestType"] == "Update" and previous != arn):
            value = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")
            boto3.client("secretsmanager").put_secret_value(SecretId=arn, SecretString=value)
        _respond(event, "SUCCESS")
    except Exception as err:  # CloudFormation must hear about any failure, or it waits an hour
        print(json.dumps({"event": "error", "error": type(err).__name__}))
        _respond(event, "FAILED", type(err).__name__)

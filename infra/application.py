"""Build the CDK app: config from context, the stack, tags, cdk-nag. Used by ``app.py`` and tests."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import PROJECT, DeployConfig
from infra.stack import VidpStack

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


def build_app(
    context: Mapping[str, object] | None = None,
    *,
    outdir: str | None = None,
    lambda_bundle: Callable[[], Path],
) -> tuple[cdk.App, VidpStack]:
    """The app with one stack ``vidp-<env>``, checked by cdk-nag AwsSolutions at synth.

    ``ConfigError`` for a bad context value; ``lambda_bundle`` (which may take a minute of pip)
    is called only after the config is known good.
    """
    # cdk.json's context when run as `python app.py` (the cdk CLI passes it itself, with precedence).
    defaults = json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {})
    app = cdk.App(context={**defaults, **(context or {})}, outdir=outdir)
    config = DeployConfig.from_context(app.node)
    env = None
    if config.vpc_id:  # a VPC lookup needs a concrete account and region
        env = cdk.Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
        )
    stack = VidpStack(
        app,
        f"{PROJECT}-{config.env}",
        config=config,
        lambda_bundle=lambda_bundle(),
        env=env,
        description=f"VidP subtitle burn-in and compression pipeline ({config.env})",
        termination_protection=config.is_prod,
    )
    for key, value in {
        "Environment": config.env,
        "Project": PROJECT,
        "Client": config.client,
        "ManagedBy": "cdk",
        "Owner": config.owner,
    }.items():
        cdk.Tags.of(app).add(key, value)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack

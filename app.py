#!/usr/bin/env python3
"""CDK entry point: ``npx cdk synth -c env=dev`` or ``python app.py`` (no AWS credentials needed).

Reads the config from the context (a bad value stops it with one line naming the key), packages
the Lambda code when ``build/lambda/`` is missing or stale (no Docker; needs the package index),
then synthesizes the ``vidp-<env>`` stack with cdk-nag AwsSolutions checks.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "scripts"))

from bundle_lambda import ensure_bundle  # noqa: E402

from infra.application import build_app  # noqa: E402
from infra.config import ConfigError  # noqa: E402


def main() -> None:
    try:
        app, _ = build_app(lambda_bundle=ensure_bundle)
    except ConfigError as error:  # a bad -c / cdk.json value: its one line, not a traceback
        sys.exit(f"vidp: {error}")
    app.synth()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""CDK entry point: ``npx cdk synth -c env=dev`` or ``python app.py`` (no AWS credentials needed).

Packages the Lambda code first when ``build/lambda/`` is missing or stale (no Docker; needs the
package index), then synthesizes the ``vidp-<env>`` stack with cdk-nag AwsSolutions checks.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "scripts"))

from bundle_lambda import ensure_bundle  # noqa: E402

from infra.application import build_app  # noqa: E402


def main() -> None:
    bundle = ensure_bundle()
    app, _ = build_app(lambda_bundle=bundle)
    app.synth()


if __name__ == "__main__":
    main()

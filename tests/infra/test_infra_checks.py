"""cdk-nag AwsSolutions and cfn-lint on the synthesized app; the config; the bundle; the secret generator."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from infra.config import ConfigError, DeployConfig
from tests.infra.conftest import REPROCESS_REQUEST, ROOT, Synth, run_app

# CDK writes DependsOn on a Lambda's role besides the GetAtt of its ARN: redundant, harmless.
ALLOWED_WARNINGS = {"W3005"}


def test_cdk_nag_aws_solutions_has_no_unacknowledged_finding(synth: Synth) -> None:
    report = json.loads((synth.outdir / "validation-report.json").read_text(encoding="utf-8"))
    nag = next(p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions")
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []


def test_every_acknowledgement_is_used_and_has_a_reason(synth: Synth) -> None:
    report = json.loads((synth.outdir / "validation-report.json").read_text(encoding="utf-8"))
    nag = next(p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions")
    assert nag["suppressedViolations"], "the acknowledgements were expected to be used"
    for suppressed in nag["suppressedViolations"]:
        assert suppressed["acknowledgedId"].startswith("AwsSolutions::")
        assert len(suppressed["reason"]) >= 20, suppressed["ruleName"]


def test_cfn_lint_reports_no_errors(synth: Synth) -> None:
    templates = sorted(str(p) for p in synth.outdir.glob("*.template.json"))
    assert templates
    run = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--format", "json", *templates],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    findings = json.loads(run.stdout or "[]")
    unexpected = [f for f in findings if f["Rule"]["Id"] not in ALLOWED_WARNINGS]
    assert unexpected == [], unexpected[:5]


def test_config_defaults_and_validation() -> None:
    config = DeployConfig()
    assert (config.prefix, config.vcpus, config.is_prod) == ("vidp-dev", 2, False)
    assert DeployConfig(env="prod").name("jobs") == "vidp-prod-jobs"
    with pytest.raises(ValueError, match="env"):
        DeployConfig(env="staging")
    with pytest.raises(ValueError, match="arch"):
        DeployConfig(arch="riscv")
    with pytest.raises(ValueError, match="reprocess_request"):
        DeployConfig(reprocess_schedule="rate(1 day)")


def test_config_prod_retains() -> None:
    from aws_cdk import RemovalPolicy

    prod, dev = DeployConfig(env="prod"), DeployConfig(env="dev")
    assert (prod.removal_policy, prod.auto_delete_objects) == (RemovalPolicy.RETAIN, False)
    assert (dev.removal_policy, dev.auto_delete_objects) == (RemovalPolicy.DESTROY, True)


def test_config_reads_context_values_as_cdk_gives_them() -> None:
    # `-c key=value` gives strings; an empty one means unset (the default).
    given = DeployConfig.from_values(
        {
            "env": "prod",
            "arch": "arm64",
            "task_cpu": "4096",
            "archive_after_days": "90",
            "vpc_id": "",
            "log_retention_days": "",
            "reprocess_schedule": "rate(1 day)",
            "reprocess_request": json.dumps(REPROCESS_REQUEST),
            "client": 42,
        }
    )
    assert (given.env, given.arch, given.task_cpu, given.vcpus) == ("prod", "arm64", 4096, 4)
    assert (given.archive_after_days, given.vpc_id, given.log_retention_days) == (90, None, 30)
    assert given.reprocess_request == REPROCESS_REQUEST and given.client == "42"


def test_config_from_the_context_of_an_app_ignores_cdk_feature_flags() -> None:
    import aws_cdk as cdk

    context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    assert any(key.startswith("@aws-cdk/") for key in context)
    app = cdk.App(context={**context, "reprocess_request": REPROCESS_REQUEST, "alarm_email": ""})
    config = DeployConfig.from_context(app.node)
    assert config == DeployConfig(reprocess_request=REPROCESS_REQUEST)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("env", "staging"),
        ("arch", "riscv"),
        ("task_cpu", "1500"),
        ("task_memory_mib", "4 GB"),
        ("log_retention_days", 60),
        ("reprocess_request", "{not json"),
    ],
)
def test_a_bad_context_value_is_one_line_naming_the_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as raised:
        DeployConfig.from_values({key: value})
    message = str(raised.value)
    assert message.startswith(f"context {key}=") and "\n" not in message
    assert "pydantic" not in message  # no link to pydantic's error pages


def test_a_bad_context_value_stops_synth_with_one_line(tmp_path: Path) -> None:
    run = run_app(tmp_path, {"task_cpu": "1500"})
    # jsii's own banner (the Node version) aside, stderr is our one line.
    ours = [line for line in run.stderr.splitlines() if "!!" not in line and line.strip()]
    assert run.returncode == 1
    assert ours == ["vidp: context task_cpu='1500': must be a whole number of vCPUs (1024, 2048, ...)"]
    assert not list(tmp_path.glob("*.template.json"))


# --- the webhook secret generator (infra/lambdas/webhook_secret.py, inline code) ---------------


def test_generated_webhook_secret_is_accepted_by_the_notify_adapter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from infra.lambdas import webhook_secret
    from infra.steps import SECRET_CODE
    from pipeline.adapters import webhooks

    assert len(SECRET_CODE.read_text(encoding="utf-8")) < 4096  # Lambda's inline code limit
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    responses: list[str] = []
    monkeypatch.setattr(webhook_secret, "_respond", lambda event, status, reason="": responses.append(status))
    with mock_aws():
        arn = boto3.client("secretsmanager").create_secret(Name="s", SecretString="placeholder")["ARN"]
        event = {"RequestType": "Create", "ResourceProperties": {"SecretArn": arn}}
        webhook_secret.handler(event, None)
        monkeypatch.setenv(webhooks.SECRET_ARN_ENV, arn)
        monkeypatch.delenv(webhooks.SECRET_ENV, raising=False)
        created = webhooks.webhook_secret()  # raises unless whsec_ + base64 of >= 24 bytes
        webhook_secret.handler(
            {
                "RequestType": "Update",
                "ResourceProperties": {"SecretArn": arn},
                "OldResourceProperties": {"SecretArn": arn},
            },
            None,
        )
        webhook_secret.handler({"RequestType": "Delete", "ResourceProperties": {"SecretArn": arn}}, None)
        kept = boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    assert created.startswith("whsec_") and kept == created  # callers keep their secret
    assert responses == ["SUCCESS", "SUCCESS", "SUCCESS"]


# --- the Lambda bundle imports on the Lambda runtime's Python --------------------------------

_IMPORT_CHECK = """
import importlib, sys
bundle, site = sys.argv[1], sys.argv[2]
sys.path[:0] = [bundle]
sys.path.append(site)  # boto3 only: the Lambda runtime provides it
for module in sys.argv[3:]:
    importlib.import_module(module)
for name in ("pydantic", "pydantic_core", "pydantic_settings", "srt", "httpx", "standardwebhooks",
             "charset_normalizer", "aws_lambda_powertools"):
    assert sys.modules[name].__file__.startswith(bundle), (name, sys.modules[name].__file__)
"""


def _python_312() -> str | None:
    candidates = [
        shutil.which("python3.12"),
        *map(str, Path.home().glob(".pyenv/versions/3.12*/bin/python3.12")),
    ]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if probe.stdout.strip() == "True":
            return candidate
    return None


def test_the_bundle_imports_every_handler_on_cpython_312(synth: Synth) -> None:
    python = _python_312()
    # The machine image carries CPython 3.12 (pyenv); the Lambda runtime is 3.12, so must the check be.
    assert python is not None, "no CPython 3.12 on this machine to load the cp312 wheels"
    from pipeline.steps.registry import STEP_MODULES

    site = sysconfig.get_paths()["purelib"]
    modules = [*STEP_MODULES.values(), "pipeline.starter", "pipeline.api.videos", "pipeline.api.receiver"]
    run = subprocess.run(
        [python, "-B", "-S", "-I", "-c", _IMPORT_CHECK, str(synth.bundle), site, *modules],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]


# --- what synth loads ---------------------------------------------------------------------------


def test_synth_loads_neither_moto_nor_the_local_aws(synth: Synth) -> None:
    # The run's own imports, as `python -X importtime app.py` listed them (a check that can fail:
    # the infra code and the facts it shares with the product are in the list).
    assert {"aws_cdk", "infra.stack", "pipeline.deployment", "state_machine"} <= synth.imported
    assert not {name for name in synth.imported if name == "moto" or name.startswith("moto.")}
    assert not {name for name in synth.imported if name.startswith("pipeline.local")}
    assert not {
        name
        for name in synth.imported
        if name.startswith("pipeline.steps.") and name != "pipeline.steps.registry"
    }

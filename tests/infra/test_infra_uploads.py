"""The upload trigger in the synthesized stack: a rejected upload reaches the bus and an alarm,
and a video waiting for its sidecar is looked at again through a delayed queue it can read."""

from __future__ import annotations

from typing import Any

from pipeline.deployment import METRIC_NAMESPACE, UPLOADS_REJECTED_METRIC
from pipeline.starter import MAX_SIDECAR_WAIT_SECONDS
from tests.infra.conftest import Synth


def _starter(synth: Synth) -> tuple[str, dict[str, Any]]:
    [(logical_id, function)] = [
        (k, v)
        for k, v in synth.resources("AWS::Lambda::Function").items()
        if v["Properties"].get("Handler") == "pipeline.starter.handler"
    ]
    return logical_id, function["Properties"]


def _statements_of(synth: Synth, function: dict[str, Any]) -> list[dict[str, Any]]:
    """The statements of the policies on a function's role."""
    role = {"Ref": function["Role"]["Fn::GetAtt"][0]}
    found = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if role in policy["Properties"].get("Roles", []):
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def _actions(statement: dict[str, Any]) -> set[str]:
    actions = statement["Action"]
    return {actions} if isinstance(actions, str) else set(actions)


def test_rejected_uploads_are_counted_where_the_alarm_looks(synth: Synth) -> None:
    _, starter = _starter(synth)
    env = starter["Environment"]["Variables"]
    [alarm] = [
        a["Properties"]
        for a in synth.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == UPLOADS_REJECTED_METRIC
    ]

    # Powertools writes EMF in the namespace the code names, with a `service` dimension from
    # POWERTOOLS_SERVICE_NAME: the alarm must watch exactly that series.
    assert alarm["Namespace"] == METRIC_NAMESPACE
    assert alarm["Dimensions"] == [{"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}]
    assert env["POWERTOOLS_SERVICE_NAME"] == starter["FunctionName"]
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Sum", 0, "GreaterThanThreshold")  # fmt: skip
    assert alarm["TreatMissingData"] == "notBreaching"
    [topic_id] = synth.resources("AWS::SNS::Topic")
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_the_starter_puts_rejections_on_the_pipelines_bus(synth: Synth) -> None:
    _, starter = _starter(synth)
    [bus_id] = synth.resources("AWS::Events::EventBus")
    statements = _statements_of(synth, starter)

    assert starter["Environment"]["Variables"]["VIDP_EVENT_BUS_NAME"] == {"Ref": bus_id}
    puts = [s for s in statements if "events:PutEvents" in _actions(s)]
    assert [s["Resource"] for s in puts] == [{"Fn::GetAtt": [bus_id, "Arn"]}]


def test_a_video_waiting_for_its_sidecar_is_checked_again_through_a_delayed_queue(synth: Synth) -> None:
    starter_id, starter = _starter(synth)
    env = starter["Environment"]["Variables"]
    queues = synth.resources("AWS::SQS::Queue")
    [(checks_id, checks)] = [(k, v) for k, v in queues.items() if "SidecarChecks" in k]
    [mapping] = synth.resources("AWS::Lambda::EventSourceMapping").values()
    statements = _statements_of(synth, starter)

    assert 0 < int(env["VIDP_SIDECAR_WAIT_SECONDS"]) <= MAX_SIDECAR_WAIT_SECONDS
    assert env["VIDP_SIDECAR_CHECKS_QUEUE_URL"] == {"Ref": checks_id}
    assert mapping["Properties"]["FunctionName"] == {"Ref": starter_id}
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [checks_id, "Arn"]}
    assert mapping["Properties"]["BatchSize"] == 1
    dlq = checks["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]
    assert dlq["Fn::GetAtt"][0] in queues and dlq["Fn::GetAtt"][0] != checks_id
    assert checks["Properties"]["VisibilityTimeout"] >= starter["Timeout"]
    sends = [s["Resource"] for s in statements if "sqs:SendMessage" in _actions(s)]
    assert {"Fn::GetAtt": [checks_id, "Arn"]} in sends  # (and its own async DLQ)
    receives = [s["Resource"] for s in statements if "sqs:ReceiveMessage" in _actions(s)]
    assert receives == [{"Fn::GetAtt": [checks_id, "Arn"]}]

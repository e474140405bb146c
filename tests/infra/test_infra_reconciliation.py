"""The reconciler in AWS: the rule on the pipeline's status changes, its Lambda and its grants."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synth


def _statements(synth: Synth, function_id_part: str) -> list[dict[str, Any]]:
    found = []
    for policy_id, policy in synth.resources("AWS::IAM::Policy").items():
        if function_id_part in policy_id:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def _actions(statement: dict[str, Any]) -> set[str]:
    actions = statement["Action"]
    return {actions} if isinstance(actions, str) else set(actions)


def test_the_rule_sends_the_pipelines_executions_that_ended_badly_to_the_reconciler(synth: Synth) -> None:
    rules = [
        r["Properties"]
        for r in synth.resources("AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.states"]
    ]
    assert len(rules) == 1
    pattern = rules[0]["EventPattern"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    machine_id, _ = synth.one("AWS::StepFunctions::StateMachine")
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": machine_id}]
    [target] = rules[0]["Targets"]
    assert "Arn" in target["DeadLetterConfig"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    functions = synth.resources("AWS::Lambda::Function")
    [reconciler] = [
        f for f in functions.values() if f["Properties"].get("Handler") == "pipeline.reconciler.handler"
    ]
    env = reconciler["Properties"]["Environment"]["Variables"]
    assert {
        "VIDP_BUCKET",
        "VIDP_TABLE_NAME",
        "VIDP_EVENT_BUS_NAME",
        "VIDP_WEBHOOK_SECRET_ARN",
        "VIDP_CLUSTER_ARN",
    } <= set(env)


def test_stopping_tasks_is_limited_to_the_pipeline_cluster(synth: Synth) -> None:
    for who in ("MarkFailed", "StopTimedOutTask", "Reconciler"):
        statements = _statements(synth, who)
        ecs = [s for s in statements if _actions(s) & {"ecs:ListTasks", "ecs:StopTask"}]
        assert {a for s in ecs for a in _actions(s)} == {"ecs:ListTasks", "ecs:StopTask"}, who
        for statement in ecs:
            assert "ecs:cluster" in statement["Condition"]["ArnEquals"], who
            assert not _actions(statement) - {"ecs:ListTasks", "ecs:StopTask"}, who


def test_reading_executions_is_limited_to_the_pipelines(synth: Synth) -> None:
    for who in ("MarkFailed", "Reconciler"):
        [read] = [s for s in _statements(synth, who) if "states:DescribeExecution" in _actions(s)]
        assert _actions(read) == {"states:DescribeExecution", "states:GetExecutionHistory"}
        resource = read["Resource"]
        text = "".join(part if isinstance(part, str) else "" for part in resource["Fn::Join"][1])
        assert text.endswith(":execution:vidp-dev-pipeline:*"), text

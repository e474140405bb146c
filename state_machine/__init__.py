"""The one workflow definition, ``pipeline.asl.json``, and its renderer.

CDK (``DefinitionBody.from_file`` + ``definition_substitutions``) and the local AWS both render
the same file; this module is how Python code reads it, and what the tests check it with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pipeline.deployment import CONTAINER_NAME

DEFINITION_PATH = Path(__file__).with_name("pipeline.asl.json")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9]*)\}")


def template() -> str:
    """The definition as written, with its ``${Name}`` placeholders."""
    return DEFINITION_PATH.read_text(encoding="utf-8")


def placeholders(text: str | None = None) -> set[str]:
    """The placeholder names a rendering must substitute."""
    return set(_PLACEHOLDER.findall(template() if text is None else text))


def substitutions(
    *,
    function_arn: Callable[[str], str],
    cluster_arn: str,
    task_definition_arn: str,
    subnet_ids: str,
    security_group_ids: str,
    table_name: str,
) -> dict[str, str]:
    """A value for every placeholder, from the deployment's resources (CDK tokens or local ARNs).

    ``${<Step>FunctionArn}`` gets ``function_arn(<Step>)``; ``subnet_ids`` and
    ``security_group_ids`` are comma-separated (the definition splits them). A new placeholder
    needs a value here, else this raises KeyError naming it.
    """
    known = {
        "ClusterArn": cluster_arn,
        "TaskDefinitionArn": task_definition_arn,
        "SubnetIds": subnet_ids,
        "SecurityGroupIds": security_group_ids,
        "AssignPublicIp": "DISABLED",
        "ContainerName": CONTAINER_NAME,
        "TableName": table_name,
    }
    values: dict[str, str] = {}
    for name in sorted(placeholders()):
        if name.endswith("FunctionArn"):
            values[name] = function_arn(name.removesuffix("FunctionArn"))
        else:
            values[name] = known[name]
    return values


def render(substitutions: Mapping[str, str]) -> str:
    """The definition with every placeholder replaced, as CDK's definition_substitutions does.

    Raises ValueError for a missing or unknown substitution, so a rendering never leaves a
    ``${...}`` behind and a typo in a name never goes unnoticed.
    """
    text = template()
    missing = placeholders(text) - substitutions.keys()
    unknown = substitutions.keys() - placeholders(text)
    if missing or unknown:
        raise ValueError(f"substitutions missing {sorted(missing)}, unknown {sorted(unknown)}")
    # Values are placed inside JSON strings: refuse anything that would change the JSON.
    for name, value in substitutions.items():
        if json.dumps(value)[1:-1] != value or "'" in value:
            raise ValueError(f"substitution {name} has characters that need escaping: {value!r}")
    return _PLACEHOLDER.sub(lambda match: substitutions[match[1]], text)


def load(substitutions: Mapping[str, str]) -> dict[str, Any]:
    """The rendered definition as a dict."""
    definition: dict[str, Any] = json.loads(render(substitutions))
    return definition


def mermaid(definition: Mapping[str, Any] | None = None) -> str:
    """A mermaid flowchart of the states: Next, Choice branches, Catch and Default edges."""
    definition = definition if definition is not None else json.loads(template())
    states: dict[str, Any] = definition["States"]
    lines = ["flowchart TD", f"    start((start)) --> {definition['StartAt']}"]
    for name, state in states.items():
        kind = state["Type"]
        shape = {"Choice": "{{{}}}", "Succeed": "([{}])", "Fail": "([{}])"}.get(kind, "[{}]")
        lines.append(f"    {name}{shape.format(name)}")
        for choice in state.get("Choices", []):
            lines.append(f"    {name} -->|choice| {choice['Next']}")
        if "Default" in state:
            lines.append(f"    {name} -->|default| {state['Default']}")
        if "Next" in state:
            lines.append(f"    {name} --> {state['Next']}")
        for catcher in state.get("Catch", []):
            errors = ",".join(catcher["ErrorEquals"])
            lines.append(f"    {name} -.->|{errors}| {catcher['Next']}")
    return "\n".join(lines) + "\n"

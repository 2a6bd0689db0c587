"""What the local tools take from template.yaml: the tables and the routes of the functions."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = PROJECT_ROOT / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no type hints
    """Reads CloudFormation short-form tags (!Ref, !GetAtt, …) as plain values."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {f"Fn::{suffix}" if suffix != "Ref" else "Ref": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str
    code_uri: Path
    handler: str
    # the function's Timeout (its own, else the template's Globals, else Lambda's default)
    timeout_seconds: float = 3.0

    @property
    def module_path(self) -> Path:
        module, _, _ = self.handler.rpartition(".")
        return self.code_uri / (module.replace(".", "/") + ".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rpartition(".")[2]


def template_path() -> Path:
    return Path(os.environ.get("PAYMENTS_TEMPLATE", DEFAULT_TEMPLATE))


def load_template(path: Path | None = None) -> dict[str, Any]:
    with open(path or template_path(), encoding="utf-8") as handle:
        template: dict[str, Any] = yaml.load(handle, Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass
        return template


def table_definitions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """CreateTable arguments of every DynamoDB table, named by its logical id (the local table name)."""
    tables = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::DynamoDB::Table":
            continue
        properties = resource["Properties"]
        definition: dict[str, Any] = {
            "TableName": logical_id,
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if properties.get("GlobalSecondaryIndexes"):
            definition["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
        ttl = properties.get("TimeToLiveSpecification")
        tables[logical_id] = {"create": definition, "ttl_attribute": ttl["AttributeName"] if ttl else None}
    return tables


def routes(template: dict[str, Any], root: Path | None = None) -> list[Route]:
    """Every Api event of every function, with the file and function that handle it."""
    base = root or (template_path().parent)
    found = []
    global_timeout = template.get("Globals", {}).get("Function", {}).get("Timeout", 3)
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        timeout = float(properties.get("Timeout", global_timeout))
        for event in properties.get("Events", {}).values():
            if event.get("Type") != "Api":
                continue
            found.append(
                Route(
                    method=event["Properties"]["Method"].upper(),
                    path=event["Properties"]["Path"],
                    function=logical_id,
                    code_uri=base / properties["CodeUri"],
                    handler=properties["Handler"],
                    timeout_seconds=timeout,
                )
            )
    return found

"""Creates the tables described in template.yaml when they are missing."""

from __future__ import annotations

from typing import Any

from payments_cli.template import load_template, table_definitions

_TABLE = "AWS::DynamoDB::Table"


def stream_specifications(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """CreateTable's StreamSpecification of every table whose template resource has a stream (the ledger's: the
    continuous auditor, `payments audit --follow`, reads it)."""
    found = {}
    for logical_id, resource in template["Resources"].items():
        stream = resource.get("Properties", {}).get("StreamSpecification") if resource.get("Type") == _TABLE else None
        if stream:
            found[logical_id] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    return found


def create_tables(client: Any) -> list[str]:
    """Create every missing table of the template; returns the names it created. A table kept from before the
    template gave it a stream (DynamoDB Local's data directory) gets its stream."""
    existing = set()
    for page in client.get_paginator("list_tables").paginate():
        existing.update(page.get("TableNames", []))
    created = []
    template = load_template()
    streams = stream_specifications(template)
    for name, table in table_definitions(template).items():
        if name in existing:
            if name in streams and not client.describe_table(TableName=name)["Table"].get(
                "StreamSpecification", {}
            ).get("StreamEnabled"):
                client.update_table(TableName=name, StreamSpecification=streams[name])
            continue
        client.create_table(**table["create"], **({"StreamSpecification": streams[name]} if name in streams else {}))
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        if table["ttl_attribute"]:
            client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table["ttl_attribute"]},
            )
        created.append(name)
    return created

"""Creates the tables described in template.yaml when they are missing."""

from __future__ import annotations

from typing import Any

from payments_cli.template import load_template, table_definitions


def create_tables(client: Any) -> list[str]:
    """Create every missing table of the template; returns the names it created."""
    existing = set()
    for page in client.get_paginator("list_tables").paginate():
        existing.update(page.get("TableNames", []))
    created = []
    for name, table in table_definitions(load_template()).items():
        if name in existing:
            continue
        client.create_table(**table["create"])
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        if table["ttl_attribute"]:
            client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table["ttl_attribute"]},
            )
        created.append(name)
    return created

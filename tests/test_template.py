"""template.yaml hardening: linters pass, and the properties ops rely on hold.

Linters: cfn-lint (the project venv) and `sam validate --lint` (the SAM CLI lives in its own
venv: SAM_BIN, set by `make test`). The rest reads the template with
payments_cli.template.load_template, which keeps the short-form intrinsics as `Ref` / `Fn::…`.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import ROOT
from payments_cli.template import load_template

TEMPLATE = ROOT / "template.yaml"
LINT_TIMEOUT = 300
# Runtimes AWS supports through 2027 at least (python3.11 is deprecated in 2026).
SUPPORTED_RUNTIMES = re.compile(r"^python3\.(1[2-9]|[2-9][0-9])$")
WRITE_ACTIONS = {
    "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
    "dynamodb:TransactWriteItems", "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete",
    "dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:UpdateTable", "dynamodb:RestoreTableFromBackup",
    "dynamodb:ImportTable", "dynamodb:UpdateTimeToLive",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r.get("Type") == kind}


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources(template, "AWS::Serverless::Function")


def function_property(template: dict[str, Any], function: dict[str, Any], name: str) -> Any:
    """A function's property, falling back to Globals.Function as SAM does."""
    properties = function.get("Properties", {})
    if name in properties:
        return properties[name]
    return template.get("Globals", {}).get("Function", {}).get(name)


def environment(template: dict[str, Any], function: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    merged.update(template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    merged.update(function.get("Properties", {}).get("Environment", {}).get("Variables", {}))
    return merged


def statements(function: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in function["Properties"].get("Policies", []):
        assert isinstance(policy, dict) and "Statement" in policy, (
            f"only inline statements are checked here, found {policy!r}")
        yield from policy["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def refs(value: Any) -> set[str]:
    """Logical ids a value points at (Ref, Fn::GetAtt, and ${Name} in Fn::Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref":
                found.add(str(inner))
            elif key == "Fn::GetAtt":
                found.add(str(inner).split(".")[0] if isinstance(inner, str) else str(inner[0]))
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                found.update(name.split(".")[0] for name in re.findall(r"\$\{([A-Za-z0-9.]+)\}", text))
                found |= refs(inner)
            else:
                found |= refs(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= refs(inner)
    return found


def actions_on(function: dict[str, Any], table: str) -> set[str]:
    granted: set[str] = set()
    for statement in statements(function):
        if statement.get("Effect") != "Allow":
            continue
        if table in refs(statement.get("Resource")):
            granted.update(as_list(statement["Action"]))
    return granted


def function_for_path(template: dict[str, Any], path: str) -> dict[str, Any]:
    for function in functions(template).values():
        for event in function["Properties"].get("Events", {}).values():
            if event.get("Type") == "Api" and event["Properties"]["Path"] == path:
                return function
    raise AssertionError(f"no function serves {path}")


# --- linters -------------------------------------------------------------------------------------

def sam_binary() -> str | None:
    for candidate in (os.environ.get("SAM_BIN"), str(ROOT / ".venv-sam" / "bin" / "sam"), "/tmp/samvenv/bin/sam",
                      shutil.which("sam")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def test_cfn_lint_passes():
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    assert cfn_lint.exists(), "cfn-lint is a dev dependency of the project venv"
    result = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, timeout=LINT_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_passes(tmp_path):
    sam = sam_binary()
    if sam is None:
        pytest.skip("no SAM CLI: SAM_BIN is unset and no sam was found (`make test` installs one in .venv-sam)")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "HOME": os.environ.get("HOME") or str(tmp_path)}
    result = subprocess.run([sam, "validate", "--lint", "--template", str(TEMPLATE), "--region", "us-east-1"],
                            capture_output=True, text=True, timeout=LINT_TIMEOUT, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


# --- API, functions, concurrency ------------------------------------------------------------------

def test_api_stage_is_throttled(template):
    [api] = resources(template, "AWS::Serverless::Api").values()
    settings = api["Properties"]["MethodSettings"]
    covering = [s for s in settings if s.get("ResourcePath") == "/*" and s.get("HttpMethod") == "*"]
    assert covering, "throttling must cover every route of the stage"
    for setting in covering:
        assert setting.get("ThrottlingRateLimit") is not None
        assert setting.get("ThrottlingBurstLimit") is not None


def test_swap_function_has_reserved_concurrency(template):
    swap = function_for_path(template, "/v1.0/db/swap")
    reserved = swap["Properties"].get("ReservedConcurrentExecutions")
    assert reserved is not None
    if isinstance(reserved, dict):
        parameter = template["Parameters"][reserved["Ref"]]
        assert int(parameter["Default"]) >= 1 and int(parameter.get("MinValue", 1)) >= 1
    else:
        assert int(reserved) >= 1


def test_runtime_is_supported_through_2027(template):
    for name, function in functions(template).items():
        runtime = function_property(template, function, "Runtime")
        assert runtime and SUPPORTED_RUNTIMES.match(runtime), f"{name}: {runtime}"
    for name, layer in resources(template, "AWS::Serverless::LayerVersion").items():
        assert all(SUPPORTED_RUNTIMES.match(r) for r in layer["Properties"]["CompatibleRuntimes"]), name
        build = layer.get("Metadata", {}).get("BuildMethod")
        assert build is None or SUPPORTED_RUNTIMES.match(build), f"{name}: built with {build}"
        for function_name, function in functions(template).items():
            if name in refs(function_property(template, function, "Layers")):
                runtime = function_property(template, function, "Runtime")
                assert runtime in layer["Properties"]["CompatibleRuntimes"], f"{function_name} cannot use {name}"


def test_every_function_has_log_retention(template):
    log_groups = resources(template, "AWS::Logs::LogGroup")
    for name, function in functions(template).items():
        logging = function_property(template, function, "LoggingConfig") or {}
        groups = [g for g in log_groups.values() if name in refs(g["Properties"].get("LogGroupName"))]
        if logging.get("LogGroup"):
            groups += [log_groups[r] for r in refs(logging["LogGroup"]) if r in log_groups]
        assert groups, f"{name} has no log group of its own, so its logs are kept forever"
        for group in groups:
            assert group["Properties"].get("RetentionInDays"), f"{name}: log group without retention"


# --- secrets -------------------------------------------------------------------------------------

SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|API_KEY|CREDENTIAL", re.IGNORECASE)


def test_no_secret_in_plain_environment_variables(template):
    secret_ids = set(resources(template, "AWS::SecretsManager::Secret"))
    assert secret_ids, "the template creates the signing secret"
    for name, function in functions(template).items():
        variables = environment(template, function)
        assert "JWT_SECRET" not in variables, f"{name}: the signing key itself is in the environment"
        assert "JWT_SECRET_ARN" in variables, f"{name}: the secret is read from Secrets Manager by its ARN"
        assert refs(variables["JWT_SECRET_ARN"]) <= secret_ids and refs(variables["JWT_SECRET_ARN"])
        for variable, value in variables.items():
            if SECRET_NAME.search(variable):
                # a reference to a secret, or the name of the table that holds the OTP secrets
                assert variable.endswith(("_ARN", "_TABLE_NAME")) and isinstance(value, dict), (
                    f"{name}: {variable} looks like a secret and is not a reference to one")
    for name, secret in resources(template, "AWS::SecretsManager::Secret").items():
        assert "SecretString" not in secret["Properties"], f"{name}: secret value written in the template"
        assert "GenerateSecretString" in secret["Properties"]


# --- least privilege -----------------------------------------------------------------------------

def test_no_wildcard_permissions(template):
    for name, function in functions(template).items():
        for statement in statements(function):
            for action in as_list(statement["Action"]):
                assert "*" not in action, f"{name}: {action}"
            for resource in as_list(statement["Resource"]):
                assert resource != "*", f"{name}: every resource"


def test_no_function_may_scan(template):
    for name, function in functions(template).items():
        for statement in statements(function):
            assert "dynamodb:Scan" not in as_list(statement["Action"]), name


def test_payment_progress_only_reads(template):
    function = function_for_path(template, "/api/v1/asker/payment/progress")
    for statement in statements(function):
        actions = set(as_list(statement["Action"]))
        assert not actions & WRITE_ACTIONS, actions & WRITE_ACTIONS
        assert statement.get("Effect") == "Allow"
    for table in resources(template, "AWS::DynamoDB::Table"):
        assert actions_on(function, table) <= {"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query"}, table
    assert actions_on(function, "IdempotencyTable") == set()


def test_swap_cannot_delete_or_scan_the_ledger(template):
    function = function_for_path(template, "/v1.0/db/swap")
    ledger = actions_on(function, "LedgerTable")
    assert "dynamodb:DeleteItem" not in ledger and "dynamodb:Scan" not in ledger
    assert "dynamodb:BatchWriteItem" not in ledger
    # what the swap does need: one consistent BatchGetItem, the transaction's items, the OTP counter
    assert {"dynamodb:BatchGetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"} <= ledger
    assert actions_on(function, "WillsonTable") == set()
    assert actions_on(function, "IdempotencyTable") <= {
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}


# --- tables --------------------------------------------------------------------------------------

def test_tables_are_on_demand_with_pitr_sse_and_deletion_protection(template):
    tables = resources(template, "AWS::DynamoDB::Table")
    assert {"WillsonTable", "LedgerTable", "OtpSecretTable"} == set(tables)
    for name, table in tables.items():
        properties = table["Properties"]
        assert properties.get("BillingMode") == "PAY_PER_REQUEST", name
        assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, name
        assert properties["SSESpecification"]["SSEEnabled"] is True, name
        protection = properties.get("DeletionProtectionEnabled")
        assert protection is not None, name
        # driven by the parameter (through a condition), default on
        assert "TableDeletionProtection" in refs(protection) or any(
            "TableDeletionProtection" in refs(template["Conditions"][c]) for c in _conditions(protection)), name
    assert template["Parameters"]["TableDeletionProtection"]["Default"] == "true"
    # the data and the money are kept even if the stack goes
    for name in ("WillsonTable", "LedgerTable", "OtpSecretTable"):
        assert tables[name].get("DeletionPolicy") == "Retain", name
        assert tables[name].get("UpdateReplacePolicy") == "Retain", name


def _conditions(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["Fn::If"][0]} if "Fn::If" in value else set()
        for inner in value.values():
            found |= _conditions(inner)
        return found
    if isinstance(value, list):
        return set().union(*(_conditions(v) for v in value)) if value else set()
    return set()


def test_the_ledger_expires_request_records_and_otp_guards_with_ttl(template):
    tables = resources(template, "AWS::DynamoDB::Table")
    ledger_ttl = tables["LedgerTable"]["Properties"]["TimeToLiveSpecification"]
    assert ledger_ttl["Enabled"] is True
    assert ledger_ttl["AttributeName"] == "expires_at"  # what request records and OTP guards write
    # balances, logs and secrets never expire
    assert "TimeToLiveSpecification" not in tables["WillsonTable"]["Properties"]
    assert "TimeToLiveSpecification" not in tables["OtpSecretTable"]["Properties"]


def test_code_writes_the_ttl_attributes_the_template_declares(template, demo, monkeypatch):
    from functions.swap import app as swap_app
    from payments.repositories import codec, keys
    from swap_helpers import T0, swap, swap_body

    tables = resources(template, "AWS::DynamoDB::Table")
    ttl_attribute = tables["LedgerTable"]["Properties"]["TimeToLiveSpecification"]["AttributeName"]
    # a wrong OTP code writes the failure guard, a success its request record: the items meant to expire
    monkeypatch.setattr(swap_app, "clock", lambda: T0)
    assert swap(swap_body(otp_code="12345x"))[1]["return"] == 32107
    guard = codec.from_item(demo.get_item(TableName="LedgerTable", Key=codec.to_item(keys.otp_guard(19)))["Item"])
    assert T0 < int(guard[ttl_attribute]) <= T0 + 3600
    assert swap(swap_body())[0] == 200
    [record] = [codec.from_item(item) for item in demo.scan(TableName="LedgerTable")["Items"]
                if item["sk"]["S"].startswith("REQUEST#")]
    assert T0 + 600 <= int(record[ttl_attribute]) <= T0 + 700


# --- alarms --------------------------------------------------------------------------------------

def _alarm_metrics(alarm: dict[str, Any]) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    properties = alarm["Properties"]
    if "MetricName" in properties:
        yield properties["Namespace"], properties["MetricName"], properties.get("Dimensions", [])
    for query in properties.get("Metrics", []):
        stat = query.get("MetricStat")
        if stat:
            metric = stat["Metric"]
            yield metric["Namespace"], metric["MetricName"], metric.get("Dimensions", [])


def _alarmed(template: dict[str, Any]) -> list[tuple[str, str, set[str]]]:
    found = []
    for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
        for namespace, metric, dimensions in _alarm_metrics(alarm):
            found.append((namespace, metric, set().union(*(refs(d["Value"]) for d in dimensions)) if dimensions else set()))
    return found


def test_alarm_on_api_5xx(template):
    alarmed = _alarmed(template)
    assert any(ns == "AWS/ApiGateway" and metric == "5XXError" for ns, metric, _ in alarmed)


def test_alarms_on_lambda_errors_and_throttles_of_every_function(template):
    alarmed = _alarmed(template)
    for name in functions(template):
        for metric in ("Errors", "Throttles"):
            assert any(ns == "AWS/Lambda" and m == metric and name in targets for ns, m, targets in alarmed), (
                f"no alarm on {metric} of {name}")


def test_alarms_on_dynamodb_errors_of_the_data_tables(template):
    alarmed = _alarmed(template)
    for table in ("LedgerTable", "WillsonTable"):
        assert any(ns == "AWS/DynamoDB" and m in {"SystemErrors", "ThrottledRequests", "UserErrors"} and table in targets
                   for ns, m, targets in alarmed), f"no alarm on DynamoDB errors of {table}"


def test_alarms_alert_when_a_topic_is_given(template):
    for name, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        assert "AlarmTopicArn" in refs(alarm["Properties"].get("AlarmActions")), name
        assert alarm["Properties"].get("TreatMissingData") == "notBreaching", name

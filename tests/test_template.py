"""template.yaml hardening: the properties ops rely on hold.

The linters (cfn-lint, `sam validate --lint`) run in `make lint`, not here. These tests read the template with
payments_cli.template.load_template, which keeps the short-form intrinsics as `Ref` / `Fn::…`; the ones after the
SAM transform run the SAM CLI's translator in its own interpreter (.venv-sam, or SAM_BIN's): marked `slow`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT
from payments_cli.template import load_template

TEMPLATE = ROOT / "template.yaml"
TRANSFORM_TIMEOUT = 300
# Runtimes AWS supports through 2027 at least (python3.11 is deprecated in 2026).
SUPPORTED_RUNTIMES = re.compile(r"^python3\.(1[2-9]|[2-9][0-9])$")
WRITE_ACTIONS = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:TransactWriteItems",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
    "dynamodb:CreateTable",
    "dynamodb:DeleteTable",
    "dynamodb:UpdateTable",
    "dynamodb:RestoreTableFromBackup",
    "dynamodb:ImportTable",
    "dynamodb:UpdateTimeToLive",
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


def statements(template: dict[str, Any], function: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The inline statements of a function: its SAM Policies, or those of the role it names."""
    policies = list(function["Properties"].get("Policies", []))
    for role in refs(function["Properties"].get("Role")):
        policies += [p["PolicyDocument"] for p in template["Resources"][role]["Properties"].get("Policies", [])]
    assert policies, "the function's permissions are inline statements"
    for policy in policies:
        assert isinstance(policy, dict) and "Statement" in policy, (
            f"only inline statements are checked here, found {policy!r}"
        )
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


def actions_on(template: dict[str, Any], function: dict[str, Any], table: str) -> set[str]:
    granted: set[str] = set()
    for statement in statements(template, function):
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


# --- API, functions, concurrency ------------------------------------------------------------------


def test_api_stage_is_throttled(template):
    [api] = resources(template, "AWS::Serverless::Api").values()
    settings = api["Properties"]["MethodSettings"]
    covering = [s for s in settings if s.get("ResourcePath") == "/*" and s.get("HttpMethod") == "*"]
    assert covering, "throttling must cover every route of the stage"
    for setting in covering:
        assert setting.get("ThrottlingRateLimit") is not None
        assert setting.get("ThrottlingBurstLimit") is not None


def test_runtime_is_supported_through_2027(template):
    for name, function in functions(template).items():
        runtime = function_property(template, function, "Runtime")
        assert runtime and SUPPORTED_RUNTIMES.match(runtime), f"{name}: {runtime}"
    for name, layer in resources(template, "AWS::Serverless::LayerVersion").items():
        assert all(SUPPORTED_RUNTIMES.match(r) for r in layer["Properties"]["CompatibleRuntimes"]), name
        build = layer.get("Metadata", {}).get("BuildMethod")
        assert build in (None, "makefile") or SUPPORTED_RUNTIMES.match(build), f"{name}: built with {build}"
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
                    f"{name}: {variable} looks like a secret and is not a reference to one"
                )
    for name, secret in resources(template, "AWS::SecretsManager::Secret").items():
        assert "SecretString" not in secret["Properties"], f"{name}: secret value written in the template"
        assert "GenerateSecretString" in secret["Properties"]


# --- least privilege -----------------------------------------------------------------------------


def test_no_wildcard_permissions(template):
    for name, function in functions(template).items():
        for statement in statements(template, function):
            for action in as_list(statement["Action"]):
                assert "*" not in action, f"{name}: {action}"
            for resource in as_list(statement["Resource"]):
                assert resource != "*", f"{name}: every resource"


def test_no_function_may_scan(template):
    for name, function in functions(template).items():
        for statement in statements(template, function):
            assert "dynamodb:Scan" not in as_list(statement["Action"]), name


def test_payment_progress_only_reads(template):
    function = function_for_path(template, "/api/v1/asker/payment/progress")
    for statement in statements(template, function):
        actions = set(as_list(statement["Action"]))
        assert not actions & WRITE_ACTIONS, actions & WRITE_ACTIONS
        assert statement.get("Effect") == "Allow"
    for table in resources(template, "AWS::DynamoDB::Table"):
        reads = {"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query"}
        assert actions_on(template, function, table) <= reads, table


def test_swap_cannot_delete_or_scan_the_ledger(template):
    function = function_for_path(template, "/v1.0/db/swap")
    ledger = actions_on(template, function, "LedgerTable")
    assert "dynamodb:DeleteItem" not in ledger and "dynamodb:Scan" not in ledger
    assert "dynamodb:BatchWriteItem" not in ledger
    # what the swap does need: one consistent BatchGetItem, the transaction's items, the OTP counter
    assert {"dynamodb:BatchGetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"} <= ledger
    assert actions_on(template, function, "WillsonTable") == set()


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
            "TableDeletionProtection" in refs(template["Conditions"][c]) for c in _conditions(protection)
        ), name
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
    [record] = [
        codec.from_item(item)
        for item in demo.scan(TableName="LedgerTable")["Items"]
        if item["sk"]["S"].startswith("REQUEST#")
    ]
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
            targets = set().union(*(refs(d["Value"]) for d in dimensions)) if dimensions else set()
            found.append((namespace, metric, targets))
    return found


def test_alarm_on_api_5xx(template):
    alarmed = _alarmed(template)
    assert any(ns == "AWS/ApiGateway" and metric == "5XXError" for ns, metric, _ in alarmed)


def test_alarms_on_lambda_errors_and_throttles_of_every_function(template):
    alarmed = _alarmed(template)
    for name in functions(template):
        for metric in ("Errors", "Throttles"):
            assert any(ns == "AWS/Lambda" and m == metric and name in targets for ns, m, targets in alarmed), (
                f"no alarm on {metric} of {name}"
            )


def test_alarms_on_dynamodb_errors_of_the_data_tables(template):
    alarmed = _alarmed(template)
    for table in ("LedgerTable", "WillsonTable"):
        errors = {"SystemErrors", "ThrottledRequests", "UserErrors"}
        assert any(ns == "AWS/DynamoDB" and m in errors and table in targets for ns, m, targets in alarmed), (
            f"no alarm on DynamoDB errors of {table}"
        )


def test_alarms_alert_when_a_topic_is_given(template):
    for name, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        assert "AlarmTopicArn" in refs(alarm["Properties"].get("AlarmActions")), name
        assert alarm["Properties"].get("TreatMissingData") == "notBreaching", name


# --- after the SAM transform: what CloudFormation will see -----------------------------------------

NO_VALUE = object()
ROUTES = ("/v1.0/db/swap", "/api/v1/asker/payment/progress")
# The one managed policy allowed: X-Ray's segments have no resource ARN. (SAM's own function roles would also carry
# AWSLambdaBasicExecutionRole, logs on every resource: the template writes its roles out instead.)
XRAY_ONLY = re.compile(r"^arn:(aws|\$\{AWS::Partition\}):iam::aws:policy/AWSXrayWriteOnlyAccess$")


def sam_python() -> Path | None:
    for candidate in ([Path(os.environ["SAM_BIN"]).with_name("python")] if os.environ.get("SAM_BIN") else []) + [
        ROOT / ".venv-sam" / "bin" / "python"
    ]:
        if candidate.is_file():
            return candidate
    return None


def transform(parameters: dict[str, str] | None = None, new_code: dict[str, str] | None = None) -> dict[str, Any]:
    python = sam_python()
    if python is None:
        pytest.skip("no SAM CLI virtualenv (.venv-sam, or SAM_BIN): `make test` installs it")
    result = subprocess.run(
        [
            str(python),
            str(ROOT / "tests" / "sam_transform.py"),
            str(TEMPLATE),
            json.dumps(parameters or {}),
            json.dumps(new_code or {}),
        ],
        capture_output=True,
        text=True,
        timeout=TRANSFORM_TIMEOUT,
        cwd=ROOT,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def deployed() -> dict[str, Any]:
    return transform()


def evaluate(value: Any, template: dict[str, Any], parameters: dict[str, str]) -> Any:
    """A value as CloudFormation resolves it for these parameter values (conditions, Fn::If, Ref of a parameter)."""

    def condition(name: str) -> bool:
        return bool(evaluate(template["Conditions"][name], template, parameters))

    if isinstance(value, dict) and len(value) == 1:
        [(key, inner)] = value.items()
        if key == "Ref" and inner == "AWS::NoValue":
            return NO_VALUE
        if key == "Ref" and inner in template.get("Parameters", {}):
            return str(parameters.get(inner, template["Parameters"][inner].get("Default", "")))
        if key == "Fn::Equals":
            return str(evaluate(inner[0], template, parameters)) == str(evaluate(inner[1], template, parameters))
        if key == "Fn::Not":
            return not evaluate(inner[0], template, parameters)
        if key == "Fn::And":
            return all(evaluate(v, template, parameters) for v in inner)
        if key == "Fn::Or":
            return any(evaluate(v, template, parameters) for v in inner)
        if key == "Condition":
            return condition(inner)
        if key == "Fn::If":
            return evaluate(inner[1] if condition(inner[0]) else inner[2], template, parameters)
    return value


def lambda_functions(deployed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources(deployed, "AWS::Lambda::Function")


@pytest.mark.slow
def test_exactly_one_stage_and_it_is_throttled(deployed):
    stages = resources(deployed, "AWS::ApiGateway::Stage")
    assert len(stages) == 1, f"stages: {sorted(stages)}"
    for name, deployment in resources(deployed, "AWS::ApiGateway::Deployment").items():
        # a Deployment's StageName creates a stage of its own: SAM's implicit `Stage`
        assert "StageName" not in deployment["Properties"], (
            f"{name} creates the stage {deployment['Properties']['StageName']}"
        )
    [stage] = stages.values()
    assert stage["Properties"]["StageName"] == {"Ref": "StageName"}
    settings = stage["Properties"]["MethodSettings"]
    [setting] = [s for s in settings if (s["ResourcePath"], s["HttpMethod"]) == ("/*", "*")]
    assert setting["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert setting["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    assert setting["MetricsEnabled"] is True  # the per-route metrics of the dashboard


@pytest.mark.slow
def test_api_alarms_watch_the_real_stage_and_api(deployed):
    [stage_id] = resources(deployed, "AWS::ApiGateway::Stage")
    [api] = resources(deployed, "AWS::ApiGateway::RestApi").values()
    api_alarms = [
        a
        for a in resources(deployed, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Namespace") == "AWS/ApiGateway"
    ]
    assert api_alarms
    for alarm in api_alarms:
        dimensions = {d["Name"]: d["Value"] for d in alarm["Properties"]["Dimensions"]}
        assert dimensions["Stage"] == {"Ref": stage_id}
        assert dimensions["ApiName"] == api["Properties"]["Name"]


@pytest.mark.slow
def test_every_function_is_on_the_layer(deployed):
    [layer] = resources(deployed, "AWS::Lambda::LayerVersion")
    assert lambda_functions(deployed)
    for name, function in lambda_functions(deployed).items():
        assert function["Properties"]["Layers"] == [{"Ref": layer}], name


@pytest.mark.slow
def test_least_privilege_iam(deployed):
    roles = resources(deployed, "AWS::IAM::Role")
    assert len(roles) >= len(lambda_functions(deployed))
    for name, role in roles.items():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            arn = arn.get("Fn::Sub", arn) if isinstance(arn, dict) else arn
            assert isinstance(arn, str) and XRAY_ONLY.match(arn), f"{name}: managed policy {arn}"
        for policy in role["Properties"].get("Policies", []):
            for statement in as_list(policy["PolicyDocument"]["Statement"]):
                actions = as_list(statement["Action"])
                assert statement["Effect"] == "Allow", f"{name}: only Allow statements are expected"
                for action in actions:
                    assert not action.endswith(":*") and action != "*", f"{name}: {action}"
                if all(action.startswith("xray:") for action in actions):
                    continue  # X-Ray's trace segments have no resource ARN
                for resource in as_list(statement["Resource"]):
                    assert resource != "*", f"{name}: {actions} on every resource"


@pytest.mark.slow
def test_each_function_writes_only_its_own_log_group(deployed):
    for name, function in lambda_functions(deployed).items():
        [role] = refs(function["Properties"]["Role"])
        [group] = refs(function["Properties"]["LoggingConfig"]["LogGroup"])
        assert deployed["Resources"][group]["Type"] == "AWS::Logs::LogGroup"
        logging = [
            statement
            for policy in deployed["Resources"][role]["Properties"]["Policies"]
            for statement in as_list(policy["PolicyDocument"]["Statement"])
            if any(action.startswith("logs:") for action in as_list(statement["Action"]))
        ]
        assert logging and all(refs(statement["Resource"]) == {group} for statement in logging), name


@pytest.mark.slow
def test_no_reserved_concurrency_unless_a_parameter_asks(deployed):
    def reserved(parameters: dict[str, str]) -> dict[str, Any]:
        found = {}
        for name, function in lambda_functions(deployed).items():
            value = evaluate(function["Properties"].get("ReservedConcurrentExecutions", NO_VALUE), deployed, parameters)
            if value is not NO_VALUE:
                found[name] = value
        return found

    assert reserved({}) == {}, "a new account (concurrency quota 10) cannot reserve any"
    assert reserved({"SwapReservedConcurrency": "20"}) == {"SwapFunction": "20"}


@pytest.mark.slow
def test_snapstart_on_published_versions_and_the_api_invokes_the_alias(deployed):
    aliases = resources(deployed, "AWS::Lambda::Alias")
    versions = resources(deployed, "AWS::Lambda::Version")
    [api] = resources(deployed, "AWS::ApiGateway::RestApi").values()
    paths = api["Properties"]["Body"]["paths"]
    permissions = resources(deployed, "AWS::Lambda::Permission").values()
    assert set(lambda_functions(deployed)) == {"PaymentProgressFunction", "SwapFunction", "AuditFunction"}
    # the API's functions (the auditor's alias is invoked by its stream's event source mapping: test_audit_template)
    api_functions = {n: f for n, f in lambda_functions(deployed).items() if n != "AuditFunction"}
    for name, function in api_functions.items():
        properties = function["Properties"]
        assert properties["SnapStart"] == {"ApplyOn": "PublishedVersions"}, name
        # what SnapStart supports (docs/operations.md): a managed Python >= 3.12, no EFS, /tmp <= 512 MB
        assert SUPPORTED_RUNTIMES.match(properties["Runtime"]) and properties["Architectures"] == ["arm64"], name
        assert "FileSystemConfigs" not in properties and properties.get("EphemeralStorage", {}).get("Size", 512) <= 512
        [alias_id] = [a for a, alias in aliases.items() if alias["Properties"]["FunctionName"] == {"Ref": name}]
        alias = aliases[alias_id]["Properties"]
        assert alias["Name"] == "live"
        [version_id] = [v for v, version in versions.items() if version["Properties"]["FunctionName"] == {"Ref": name}]
        assert alias["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
        integrations = {p: json.dumps(paths[p]["post"]["x-amazon-apigateway-integration"]) for p in ROUTES}
        routes = [p for p in ROUTES if f"${{{alias_id}}}" in integrations[p]]
        assert len(routes) == 1, f"{name}: the API must invoke the alias {alias_id}"
        granted = [p for p in permissions if p["Properties"]["FunctionName"] == {"Ref": alias_id}]
        assert granted, f"API Gateway may not invoke {alias_id}"
        assert not [p for p in permissions if p["Properties"]["FunctionName"] == {"Ref": name}], "$LATEST is invocable"


@pytest.mark.slow
def test_a_deploy_that_changes_only_the_layer_publishes_new_versions(deployed):
    def versions(template: dict[str, Any]) -> dict[str, str]:
        return {
            version["Properties"]["FunctionName"]["Ref"]: name
            for name, version in resources(template, "AWS::Lambda::Version").items()
        }

    # the domain code is in the layer: a new layer alone must move the `live` alias, or it would run the old one
    before, after = versions(deployed), versions(transform(new_code={"SharedLayer": "-v2"}))
    assert set(before) == set(after) == set(lambda_functions(deployed))
    for function in before:
        assert before[function] != after[function], f"{function}: still the version of the previous layer"
    assert versions(transform()) == before, "an unchanged deploy publishes nothing"


@pytest.mark.slow
def test_access_logs_are_json_with_request_id_route_status_latency_and_no_token(deployed):
    [stage] = resources(deployed, "AWS::ApiGateway::Stage").values()
    setting = stage["Properties"]["AccessLogSetting"]
    [group_id] = refs(setting["DestinationArn"])
    assert deployed["Resources"][group_id]["Properties"]["RetentionInDays"]
    fields = json.loads(setting["Format"])
    assert {fields["requestId"], fields["route"], fields["status"], fields["responseLatency"]} == {
        "$context.requestId",
        "$context.resourcePath",
        "$context.status",
        "$context.responseLatency",
    }
    for name, value in fields.items():
        assert not re.search(r"header|authorizer|input\.|token|\$context\.identity\.(?!sourceIp)", value, re.I), (
            f"{name}: {value} may log a credential"
        )
    # API Gateway needs the account's CloudWatch role before a stage with access logs can exist
    [account] = resources(deployed, "AWS::ApiGateway::Account").values()
    assert refs(account["Properties"]["CloudWatchRoleArn"]) <= set(resources(deployed, "AWS::IAM::Role"))
    [api_id] = resources(deployed, "AWS::ApiGateway::RestApi")
    assert deployed["Resources"][api_id].get("DependsOn") in ("ApiGatewayAccount", ["ApiGatewayAccount"])


@pytest.mark.slow
def test_custom_domain_serves_the_seeds_urls_with_no_stage_prefix(deployed):
    parameters = deployed["Parameters"]
    for name in ("DomainName", "CertificateArn", "HostedZoneId"):
        assert parameters[name]["Default"] == "", f"{name} is optional"
    domains = resources(deployed, "AWS::ApiGateway::DomainName")
    [(domain_id, domain)] = domains.items()
    assert domain["Properties"]["DomainName"] == {"Ref": "DomainName"}
    assert domain["Properties"]["RegionalCertificateArn"] == {"Ref": "CertificateArn"}
    [mapping] = resources(deployed, "AWS::ApiGateway::BasePathMapping").values()
    [stage_id] = resources(deployed, "AWS::ApiGateway::Stage")
    [api_id] = resources(deployed, "AWS::ApiGateway::RestApi")
    assert mapping["Properties"]["DomainName"] == {"Ref": domain_id}
    assert mapping["Properties"]["RestApiId"] == {"Ref": api_id}
    assert mapping["Properties"]["Stage"] == {"Ref": stage_id}
    assert mapping["Properties"].get("BasePath", "") in ("", "(none)"), "the stage at the domain's root"
    # the API's own paths are the seeds' paths, so the domain serves https://{DomainName}/v1.0/db/swap
    assert set(deployed["Resources"][api_id]["Properties"]["Body"]["paths"]) >= set(ROUTES)
    outputs = deployed["Outputs"]
    assert outputs["DomainSwapUrl"]["Value"] == {"Fn::Sub": "https://${DomainName}/v1.0/db/swap"}
    assert outputs["DomainPaymentProgressUrl"]["Value"] == {
        "Fn::Sub": "https://${DomainName}/api/v1/asker/payment/progress"
    }
    # created only when asked for: nothing by default, everything with a domain, the record with a zone as well
    conditional = {name: r["Condition"] for name, r in deployed["Resources"].items() if "Condition" in r}
    records = resources(deployed, "AWS::Route53::RecordSet")
    for name in [domain_id, *resources(deployed, "AWS::ApiGateway::BasePathMapping"), *records]:
        condition = conditional[name]
        assert evaluate({"Condition": condition}, deployed, {}) is False, name
        assert (
            evaluate(
                {"Condition": condition},
                deployed,
                {
                    "DomainName": "api.example.com",
                    "CertificateArn": "arn:aws:acm:us-east-1:1:certificate/x",
                    "HostedZoneId": "Z1",
                },
            )
            is True
        ), name
    [record_id] = records
    assert (
        evaluate(
            {"Condition": conditional[record_id]},
            deployed,
            {"DomainName": "api.example.com", "CertificateArn": "arn:aws:acm:us-east-1:1:certificate/x"},
        )
        is False
    )
    assert {outputs[o]["Condition"] for o in ("DomainSwapUrl", "DomainPaymentProgressUrl")} == {conditional[domain_id]}
    assert any("CertificateArn" in json.dumps(rule) for rule in deployed.get("Rules", {}).values()), (
        "a DomainName without its certificate is refused before anything is created"
    )


def dashboard(deployed: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    [board] = resources(deployed, "AWS::CloudWatch::Dashboard").values()
    body = board["Properties"]["DashboardBody"]["Fn::Sub"]
    placeholders = set(re.findall(r"\$\{([^}]+)\}", body))
    return json.loads(re.sub(r"\$\{([^}]+)\}", lambda m: f"<{m.group(1)}>", body)), placeholders


def dashboard_metrics(body: dict[str, Any]) -> list[tuple[str, str, dict[str, str], str]]:
    found = []
    for widget in body["widgets"]:
        for metric in widget["properties"].get("metrics", []):
            options = metric[-1] if isinstance(metric[-1], dict) else {}
            names = [m for m in metric if not isinstance(m, dict)]
            dimensions = dict(zip(names[2::2], names[3::2], strict=True))
            found.append((names[0], names[1], dimensions, options.get("stat", "")))
    return found


@pytest.mark.slow
def test_dashboard_shows_routes_swap_outcomes_otp_and_dynamodb(deployed):
    from payments.errors import DASHBOARD_CATALOGUE

    body, placeholders = dashboard(deployed)
    for placeholder in placeholders:
        # a resource, or an attribute of one (`${Queue.QueueName}`: Fn::Sub's Fn::GetAtt)
        assert placeholder.startswith("AWS::") or placeholder.split(".")[0] in deployed["Resources"], (
            f"${{{placeholder}}} resolves to nothing"
        )
    metrics = dashboard_metrics(body)
    [stage_id] = resources(deployed, "AWS::ApiGateway::Stage")
    for route in ROUTES:
        wanted = (("Count", {"Sum"}), ("Latency", {"p50", "p99"}), ("4XXError", {"Sum"}), ("5XXError", {"Sum"}))
        for metric, stats in wanted:
            shown = {
                stat
                for ns, name, dims, stat in metrics
                if ns == "AWS/ApiGateway"
                and name == metric
                and dims.get("Resource") == route
                and dims.get("Method") == "POST"
                and dims.get("Stage") == f"<{stage_id}>"
                and dims.get("ApiName") == "<AWS::StackName>"
            }
            assert stats <= shown, f"{metric} {stats - shown} of {route}"
    app_metrics = {name for ns, name, dims, _ in metrics if ns == "WillsonPayments" and dims == {"service": "payments"}}
    refusals = {"SwapRefused" + kind.title().replace("_", "") for kind in DASHBOARD_CATALOGUE}
    assert {"SwapSucceeded", "SwapReplayed", "SwapOutcomeUnknown", "OtpFailure", "OtpLocked"} | refusals <= app_metrics
    throttled = {dims.get("TableName") for ns, name, dims, _ in metrics if ns == "AWS/DynamoDB" and "Throttle" in name}
    assert {f"<{table}>" for table in resources(deployed, "AWS::DynamoDB::Table")} <= throttled
    assert ("AWS/DynamoDB", "TransactionConflict", {"TableName": "<LedgerTable>"}, "Sum") in metrics

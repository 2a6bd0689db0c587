"""The continuous auditor in template.yaml, judged after the SAM transform (as CloudFormation will see it).

The ledger table's stream, the event source mapping's settings (partial batch failures, bisect, bounded retries and
record age, an encrypted SQS on-failure destination), the alarm on LedgerAuditBreak and the dashboard's widget, and
the audit function's IAM: it reads the stream and entries, never writes the ledger, never sees the OTP secrets.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_template import as_list, dashboard, dashboard_metrics, refs, resources, transform

from payments.repositories.audit_reader import ENTRY_ATTRIBUTES

pytestmark = pytest.mark.slow  # the SAM translator runs in its own interpreter


@pytest.fixture(scope="module")
def deployed() -> dict[str, Any]:
    return transform()


def audit_role_statements(deployed: dict[str, Any]) -> list[dict[str, Any]]:
    function = deployed["Resources"]["AuditFunction"]
    [role] = refs(function["Properties"]["Role"])
    return [
        statement
        for policy in deployed["Resources"][role]["Properties"]["Policies"]
        for statement in as_list(policy["PolicyDocument"]["Statement"])
    ]


def test_the_ledger_table_streams_both_images(deployed):
    ledger = deployed["Resources"]["LedgerTable"]["Properties"]
    assert ledger["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    for name in ("WillsonTable", "OtpSecretTable"):
        assert "StreamSpecification" not in deployed["Resources"][name]["Properties"], name


def test_the_audit_function_reads_the_ledger_stream_with_partial_batch_failures(deployed):
    mappings = resources(deployed, "AWS::Lambda::EventSourceMapping")
    [mapping] = [m["Properties"] for m in mappings.values() if "LedgerTable" in refs(m["Properties"]["EventSourceArn"])]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["LedgerTable", "StreamArn"]}
    # the published alias, like the API's functions (SnapStart applies to versions only)
    [target] = refs(mapping["FunctionName"])
    alias = deployed["Resources"][target]
    assert alias["Type"] == "AWS::Lambda::Alias" and alias["Properties"]["FunctionName"] == {"Ref": "AuditFunction"}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert 0 <= mapping["MaximumRetryAttempts"] <= 10
    assert 60 <= mapping["MaximumRecordAgeInSeconds"] <= 24 * 3600
    assert mapping["StartingPosition"] in ("TRIM_HORIZON", "LATEST")
    assert 1 <= mapping["BatchSize"] <= 1000
    # one batch at a time per shard: the records of one item stay in order
    assert mapping.get("ParallelizationFactor", 1) == 1
    [destination] = refs(mapping["DestinationConfig"]["OnFailure"]["Destination"])
    queue = deployed["Resources"][destination]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"].get("SqsManagedSseEnabled") is True or queue["Properties"].get("KmsMasterKeyId")


def test_the_audit_function_is_on_the_layer_with_the_runtime_of_the_others(deployed):
    functions = resources(deployed, "AWS::Lambda::Function")
    audit = functions["AuditFunction"]["Properties"]
    swap = functions["SwapFunction"]["Properties"]
    [layer] = resources(deployed, "AWS::Lambda::LayerVersion")
    assert audit["Layers"] == [{"Ref": layer}]
    assert (audit["Runtime"], audit["Architectures"]) == (swap["Runtime"], swap["Architectures"])
    assert audit["Handler"] == "app.lambda_handler"
    assert audit["Environment"]["Variables"]["LEDGER_TABLE_NAME"] == {"Ref": "LedgerTable"}
    assert "OTP_SECRET_TABLE_NAME" not in audit["Environment"]["Variables"]


def test_the_audit_function_has_least_privilege(deployed):
    statements = audit_role_statements(deployed)
    granted: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            assert "*" not in action, action
            for resource in as_list(statement["Resource"]):
                assert resource != "*", action
                granted.setdefault(action, set()).update(refs(resource))
    # the stream (SAM adds nothing to a role it is given: the template grants the event source's reads)
    for action in ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"):
        assert granted[action] == {"LedgerTable"}, action
    stream_reads = [s for s in statements if "dynamodb:GetRecords" in as_list(s["Action"])]
    assert all(s["Resource"] == {"Fn::GetAtt": ["LedgerTable", "StreamArn"]} for s in stream_reads)
    # entries read by key, a few attributes only; nothing else of DynamoDB
    [entry_read] = [s for s in statements if "dynamodb:GetItem" in as_list(s["Action"])]
    assert entry_read["Resource"] == {"Fn::GetAtt": ["LedgerTable", "Arn"]}
    attributes = set(entry_read["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"])
    assert {"otp_steps", "otp_secret", "failures", "fingerprint"}.isdisjoint(attributes)
    assert attributes == set(ENTRY_ATTRIBUTES), "what the reader projects is what the role may read"
    dynamodb = {a for a in granted if a.startswith("dynamodb:")}
    assert dynamodb == {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
        "dynamodb:GetItem",
    }
    assert not {"WillsonTable", "OtpSecretTable", "OtpSecretsKey"} & set().union(*granted.values())
    # the on-failure destination: send only, to its own queue
    assert granted["sqs:SendMessage"] == {"AuditFailureQueue"}
    assert {a for a in granted if a.startswith("sqs:")} == {"sqs:SendMessage"}
    # no decrypt of the OTP key
    key_policy = deployed["Resources"]["OtpSecretsKey"]["Properties"]["KeyPolicy"]
    assert "AuditFunctionRole" not in refs(key_policy)


def test_an_alarm_on_audit_breaks_and_on_records_given_up(deployed):
    alarms = resources(deployed, "AWS::CloudWatch::Alarm")
    [breaks] = [a["Properties"] for a in alarms.values() if a["Properties"].get("MetricName") == "LedgerAuditBreak"]
    assert breaks["Namespace"] == "WillsonPayments"
    assert breaks["Dimensions"] == [{"Name": "service", "Value": "payments"}]
    assert (breaks["Statistic"], breaks["Threshold"], breaks["ComparisonOperator"]) == (
        "Sum",
        1,
        "GreaterThanOrEqualToThreshold",
    )
    assert breaks["TreatMissingData"] == "notBreaching"
    assert "AlarmTopicArn" in refs(breaks["AlarmActions"])
    queue_alarms = [
        a["Properties"]
        for a in alarms.values()
        if a["Properties"].get("Namespace") == "AWS/SQS" and "AuditFailureQueue" in refs(a["Properties"]["Dimensions"])
    ]
    assert queue_alarms and queue_alarms[0]["MetricName"] == "ApproximateNumberOfMessagesVisible"


def test_the_dashboard_shows_the_audit(deployed):
    body, placeholders = dashboard(deployed)
    metrics = dashboard_metrics(body)
    assert ("WillsonPayments", "LedgerAuditBreak", {"service": "payments"}, "Sum") in metrics
    assert any(
        ns == "AWS/Lambda" and name == "IteratorAge" and dims == {"FunctionName": "<AuditFunction>"}
        for ns, name, dims, _ in metrics
    )
    assert any(
        ns == "AWS/SQS" and dims.get("QueueName") == "<AuditFailureQueue.QueueName>" for ns, name, dims, _ in metrics
    )
    assert {"AuditFunction", "AuditFailureQueue.QueueName"} <= placeholders

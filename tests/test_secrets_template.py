"""Who can read the TOTP secrets, as template.yaml grants it: the swap function and the ops role, nobody else."""

from __future__ import annotations

import json
from typing import Any

import pytest

from payments_cli.template import load_template


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _mentions_secret_table(resource: Any) -> bool:
    text = json.dumps(resource)
    return "OtpSecretTable" in text or "-otp-secrets" in text


def _statements(template: dict[str, Any], function: dict[str, Any]) -> list[dict[str, Any]]:
    """A function's inline statements: its SAM Policies, and those of the role it names (`Role: !GetAtt X.Arn`)."""
    policies = [policy for policy in function["Properties"].get("Policies", []) if isinstance(policy, dict)]
    role = function["Properties"].get("Role")
    if role:
        [role_id] = [value.split(".")[0] if isinstance(value, str) else value[0] for value in role.values()]
        policies += [p["PolicyDocument"] for p in template["Resources"][role_id]["Properties"].get("Policies", [])]
    return [statement for policy in policies for statement in policy.get("Statement", [])]


def _secret_table_actions(template: dict[str, Any], function: dict[str, Any]) -> set[str]:
    actions: set[str] = set()
    for statement in _statements(template, function):
        if any(_mentions_secret_table(resource) for resource in _as_list(statement["Resource"])):
            actions |= set(_as_list(statement["Action"]))
    return actions


def test_only_the_swap_function_may_read_the_otp_secret_table(template):
    functions = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    readers = {name: _secret_table_actions(template, function) for name, function in functions.items()}
    # the swap reads the secret in its one BatchGetItem; it never writes, scans or queries the table
    assert readers == {
        "PaymentProgressFunction": set(),
        "SwapFunction": {"dynamodb:BatchGetItem"},
        "AuditFunction": set(),
    }
    # and only the swap function is told where the secrets are
    assert "OTP_SECRET_TABLE_NAME" not in json.dumps(template["Globals"])
    assert "OTP_SECRET_TABLE_NAME" not in json.dumps(functions["PaymentProgressFunction"])


def test_the_secrets_are_under_a_customer_managed_key_only_their_readers_may_decrypt(template):
    resources = template["Resources"]
    table = resources["OtpSecretTable"]["Properties"]
    assert table["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": {"Ref": "OtpSecretsKey"},
    }
    key = resources["OtpSecretsKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    decrypters = {}
    for entry in key["KeyPolicy"]["Statement"]:
        # a statement only present with the optional ops role: {"Fn::If": [condition, statement, NoValue]}
        condition, statement = (entry["Fn::If"][0], entry["Fn::If"][1]) if "Fn::If" in entry else (None, entry)
        actions = _as_list(statement["Action"])
        if any(action in {"kms:Decrypt", "kms:*"} for action in actions):
            decrypters[json.dumps(statement["Principal"]["AWS"])] = (condition, set(actions), statement)
        if statement["Principal"].get("AWS", {}) == {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}:
            # administration of the key never includes using it, or granting its use
            assert "kms:Decrypt" not in actions and "kms:*" not in actions and "kms:Create*" not in actions
            if "kms:CreateGrant" in actions:
                # the deployer may only let DynamoDB itself hold a grant (to create the table)
                assert statement["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": True}
    # exactly two principals may decrypt: the swap function (read only) and, if given, the ops role
    swap_role = json.dumps({"Fn::GetAtt": "SwapFunctionRole.Arn"})
    ops_role = json.dumps({"Ref": "OpsRoleArn"})
    assert set(decrypters) == {swap_role, ops_role}
    assert decrypters[swap_role][:2] == (None, {"kms:Decrypt", "kms:DescribeKey"})
    assert decrypters[ops_role][0] == "HasOpsRole"
    assert decrypters[ops_role][1] == {
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "kms:DescribeKey",
    }
    for _, _, statement in decrypters.values():
        # only through DynamoDB, in this account
        assert statement["Condition"]["StringEquals"]["kms:ViaService"] == {
            "Fn::Sub": "dynamodb.${AWS::Region}.amazonaws.com"
        }


def test_the_payment_progress_function_reads_no_item_that_holds_a_secret(template):
    # its only ledger access is BatchGetItem for the honeypot balance; secrets are not in the ledger
    function = template["Resources"]["PaymentProgressFunction"]
    resources = [
        resource for statement in _statements(template, function) for resource in _as_list(statement["Resource"])
    ]
    assert resources
    assert not any(_mentions_secret_table(resource) for resource in resources)
    assert not any("OtpSecretsKey" in json.dumps(resource) for resource in resources)

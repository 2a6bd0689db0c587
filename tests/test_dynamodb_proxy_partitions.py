"""The DynamoDB proxy's partition model (payments_cli.partitions): sizes and units as DynamoDB counts them, budgets
per partition key, DynamoDB's own answers past them (in-process here; over HTTP, with boto3, in the slow tests
of test_dynamodb_proxy_partitions_http.py)."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest

from payments_cli.partitions import (
    THROTTLED_MESSAGE,
    PartitionModel,
    item_size,
    number_size,
    read_units,
    value_size,
    write_units,
)

TABLE = "LedgerTable"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def s(text: str) -> dict[str, str]:
    return {"S": text}


def key(pk: str, sk: str = "ITEM") -> dict[str, Any]:
    return {"pk": s(pk), "sk": s(sk)}


def padded(pk: str, size: int, sk: str = "ITEM") -> dict[str, Any]:
    """An item of exactly `size` bytes (pk, sk and a `data` string filling the rest)."""
    base = item_size({**key(pk, sk), "data": s("")})
    return {**key(pk, sk), "data": s("x" * (size - base))}


def body(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()


def answer(value: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    payload = body(value)
    return 200, [("Content-Type", "application/x-amz-json-1.0"), ("x-amz-crc32", str(zlib.crc32(payload)))], payload


def run(model: PartitionModel, operation: str, request: dict[str, Any], response: dict[str, Any]) -> Any:
    """One request through the model as the proxy runs it: admit, (forward), settle. Returns the admission and the
    body that reached 'DynamoDB' (None when refused) and the answer the client gets."""
    admission = model.admit(operation, body(request))
    assert admission is not None
    if admission.refusal is not None:
        status, headers, payload = admission.refusal
        return admission, None, (status, headers, json.loads(payload))
    forwarded = json.loads(admission.body) if admission.body is not None else request
    status, headers, payload = answer(response)
    headers, payload = model.settle(admission, status, headers, payload)
    return admission, forwarded, (status, headers, json.loads(payload))


def partition(model: PartitionModel, pk: str, table: str = TABLE) -> dict[str, Any]:
    return dict(model.stats()["partitions"][f"{table} {pk}"])


# --- sizes and units -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "size"),
    [("0", 1), ("1", 2), ("12", 2), ("123", 3), ("-123", 3), ("1000", 2), ("0.001", 2), ("123.45", 4), ("1E+5", 2)],
)
def test_number_sizes(number, size):
    assert number_size(number) == size


def test_value_and_item_sizes_follow_the_documented_rules():
    assert value_size(s("héllo")) == 6  # UTF-8 bytes
    assert value_size({"B": "AAECAw=="}) == 4  # raw bytes, not base64
    assert value_size({"BOOL": True}) == value_size({"NULL": True}) == 1
    assert value_size({"L": []}) == value_size({"M": {}}) == 3
    assert value_size({"L": [s("ab"), {"N": "12"}]}) == 3 + (1 + 2) + (1 + 2)
    assert value_size({"M": {"ab": s("cd")}}) == 3 + 1 + 2 + 2
    assert value_size({"SS": ["a", "bc"]}) == 3
    assert item_size({"pk": s("ACCOUNT#19"), "sk": s("ACCOUNT"), "version": {"N": "3"}}) == 12 + 9 + 9
    assert item_size(padded("A", 5000)) == 5000


@pytest.mark.parametrize(
    ("size", "consistent", "transactional", "units"),
    [
        (0, True, False, 1.0),  # an item that is not there still costs a read
        (1, True, False, 1.0),
        (4096, True, False, 1.0),
        (4097, True, False, 2.0),
        (4097, False, False, 1.0),  # eventually consistent: half
        (100, False, False, 0.5),
        (4097, True, True, 4.0),  # transactional: twice
        (9000, False, True, 6.0),  # TransactGetItems is never eventually consistent
    ],
)
def test_read_units(size, consistent, transactional, units):
    assert read_units(size, consistent=consistent, transactional=transactional) == units


@pytest.mark.parametrize(
    ("size", "transactional", "units"),
    [(0, False, 1.0), (1024, False, 1.0), (1025, False, 2.0), (3000, False, 3.0), (1025, True, 4.0), (1, True, 2.0)],
)
def test_write_units(size, transactional, units):
    assert write_units(size, transactional=transactional) == units


# --- charging what DynamoDB would charge -----------------------------------------------------------------


def test_get_item_is_charged_by_the_size_returned():
    model = PartitionModel()  # counts only
    item = padded("ACCOUNT#1", 9000)
    run(model, "GetItem", {"TableName": TABLE, "Key": key("ACCOUNT#1"), "ConsistentRead": True}, {"Item": item})
    run(model, "GetItem", {"TableName": TABLE, "Key": key("ACCOUNT#1")}, {"Item": item})  # eventually consistent
    run(model, "GetItem", {"TableName": TABLE, "Key": key("ACCOUNT#2"), "ConsistentRead": True}, {})  # not there
    assert partition(model, "ACCOUNT#1") == {
        "requests": 2,
        "reads": 2,
        "writes": 0,
        "checks": 0,
        "read_units": 3.0 + 1.5,
        "write_units": 0.0,
        "throttled": 0,
    }
    assert partition(model, "ACCOUNT#2")["read_units"] == 1.0


def test_batch_get_rounds_each_item_and_query_the_total():
    model = PartitionModel()
    request = {
        "RequestItems": {
            TABLE: {"Keys": [key("A", "1"), key("A", "2"), key("B")], "ConsistentRead": True},
            "WillsonTable": {"Keys": [key("TICKETS", "CATALOG")]},
        }
    }
    response = {
        "Responses": {
            TABLE: [padded("A", 100, "1"), padded("A", 5000, "2"), padded("B", 4096)],
            "WillsonTable": [padded("TICKETS", 700, "CATALOG")],
        },
        "UnprocessedKeys": {},
    }
    run(model, "BatchGetItem", request, response)
    assert partition(model, "A")["read_units"] == 1.0 + 2.0  # 100 B → 1, 5000 B → 2: each rounded by itself
    assert partition(model, "A")["reads"] == 1  # one request, however many of its keys
    assert partition(model, "B")["read_units"] == 1.0
    assert partition(model, "TICKETS", "WillsonTable")["read_units"] == 0.5
    query = {
        "TableName": "WillsonTable",
        "KeyConditionExpression": "#pk = :pk",
        "ExpressionAttributeNames": {"#pk": "pk"},
        "ExpressionAttributeValues": {":pk": s("LISTING#7#ALL")},
        "Limit": 3,
    }
    items = [padded("LISTING#7#ALL", 1500, str(n)) for n in range(3)]  # 4500 B in all
    run(model, "Query", query, {"Items": items, "Count": 3})
    assert partition(model, "LISTING#7#ALL", "WillsonTable")["read_units"] == 1.0  # 2 units, eventually consistent


def test_writes_and_transactions():
    model = PartitionModel()
    run(model, "PutItem", {"TableName": TABLE, "Item": padded("ACCOUNT#1", 2500)}, {})
    assert partition(model, "ACCOUNT#1")["write_units"] == 3.0
    # an update is charged on the larger of the item before (seen: 2500 B) and after
    update = {
        "TableName": TABLE,
        "Key": key("ACCOUNT#1"),
        "UpdateExpression": "SET #v = :v",
        "ExpressionAttributeNames": {"#v": "version"},
        "ExpressionAttributeValues": {":v": {"N": "4"}},
    }
    run(model, "UpdateItem", update, {})
    assert partition(model, "ACCOUNT#1")["write_units"] == 3.0 + 3.0
    transaction = {
        "TransactItems": [
            {"Put": {"TableName": TABLE, "Item": padded("ACCOUNT#2", 900, "SWAPLOG#1")}},
            {"Update": {**update, "Key": key("ACCOUNT#2", "ACCOUNT")}},
            {
                "ConditionCheck": {
                    "TableName": TABLE,
                    "Key": key("RATE#1"),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
        ]
    }
    run(model, "TransactWriteItems", transaction, {})
    assert partition(model, "ACCOUNT#2")["write_units"] == 2.0 + 2.0  # twice 1 KB, each
    assert partition(model, "ACCOUNT#2")["writes"] == 1
    assert partition(model, "RATE#1") | {} == {
        "requests": 1,
        "reads": 0,
        "writes": 0,
        "checks": 1,
        "read_units": 0.0,
        "write_units": 2.0,
        "throttled": 0,
    }
    gets = {"TransactItems": [{"Get": {"TableName": TABLE, "Key": key("ACCOUNT#3")}}]}
    run(model, "TransactGetItems", gets, {"Responses": [{"Item": padded("ACCOUNT#3", 5000)}]})
    assert partition(model, "ACCOUNT#3")["read_units"] == 4.0  # 2 units, twice


def test_a_failed_condition_still_consumes_and_a_validation_error_does_not():
    model = PartitionModel()
    admission = model.admit("PutItem", body({"TableName": TABLE, "Item": padded("A", 1500)}))
    assert admission is not None
    failed = body({"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"})
    model.settle(admission, 400, [], failed)
    admission = model.admit("PutItem", body({"TableName": TABLE, "Item": padded("A", 1500)}))
    assert admission is not None
    model.settle(admission, 400, [], body({"__type": "com.amazon.coral.validate#ValidationException"}))
    assert partition(model, "A")["write_units"] == 2.0


# --- budgets ----------------------------------------------------------------------------------------------


def test_budgets_are_dynamodb_limits_divided_by_the_scale():
    model = PartitionModel(100)
    assert model.describe() == {
        "scale": 100,
        "read_units_per_second": 30.0,
        "write_units_per_second": 10.0,
        "burst_seconds": 1.0,
        "partition_key": "pk",
    }
    assert PartitionModel().describe() is None
    with pytest.raises(ValueError, match="positive"):
        PartitionModel(0)


def test_past_the_read_budget_a_get_is_refused_as_dynamodb_refuses_it():
    clock = Clock()
    model = PartitionModel(1000, clock=clock)  # 3 read units a second per partition
    get = {"TableName": TABLE, "Key": key("TICKETS"), "ConsistentRead": True}
    for _ in range(3):
        _, forwarded, (status, _, _) = run(model, "GetItem", get, {"Item": padded("TICKETS", 100)})
        assert forwarded is not None and status == 200
    admission, forwarded, (status, headers, refusal) = run(model, "GetItem", get, {})
    assert forwarded is None and status == 400
    assert refusal == {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": THROTTLED_MESSAGE,
        "ThrottlingReasons": [
            {
                "reason": "TableReadKeyRangeThroughputExceeded",
                "resource": "arn:aws:dynamodb:us-east-1:000000000000:table/LedgerTable",
            }
        ],
    }
    assert dict(headers)["Content-Type"] == "application/x-amz-json-1.0"
    assert int(dict(headers)["x-amz-crc32"]) == zlib.crc32(admission.refusal[2])
    # another partition of the same table is not affected; the hot one refills at its rate
    assert run(model, "GetItem", {**get, "Key": key("ACCOUNT#1")}, {})[1] is not None
    clock.now += 1 / 3
    assert run(model, "GetItem", get, {"Item": padded("TICKETS", 100)})[1] is not None
    assert partition(model, "TICKETS")["throttled"] == 1
    assert model.stats()["throttled"] == {"GetItem": 1}


def test_a_read_larger_than_estimated_throttles_the_next_ones():
    clock = Clock()
    model = PartitionModel(1000, clock=clock)  # 3 read units a second
    get = {"TableName": "WillsonTable", "Key": key("BIG"), "ConsistentRead": True}
    run(model, "GetItem", get, {"Item": padded("BIG", 4 * 4096)})  # estimated 1, charged 4: 3 - 4 = -1
    assert run(model, "GetItem", get, {})[1] is None
    clock.now += 1.0  # -1 + 3 = 2 left: the next read is estimated at the size seen (4 units), still refused
    assert run(model, "GetItem", get, {})[1] is None
    clock.now += 1.0  # a full bucket (3) is never less than the capacity: admitted
    assert run(model, "GetItem", get, {"Item": padded("BIG", 4 * 4096)})[1] is not None


def test_a_batch_get_hands_back_throttled_keys_as_unprocessed():
    model = PartitionModel(1000, clock=Clock())
    hot = {"TableName": TABLE, "Key": key("APP#1", "APP"), "ConsistentRead": True}
    for _ in range(3):
        run(model, "GetItem", hot, {"Item": padded("APP#1", 100, "APP")})
    request = {
        "RequestItems": {
            TABLE: {"Keys": [key("ACCOUNT#5", "ACCOUNT"), key("APP#1", "APP")], "ConsistentRead": True},
        }
    }
    response = {"Responses": {TABLE: [padded("ACCOUNT#5", 200, "ACCOUNT")]}, "UnprocessedKeys": {}}
    _, forwarded, (status, headers, answered) = run(model, "BatchGetItem", request, response)
    assert status == 200
    assert forwarded == {"RequestItems": {TABLE: {"Keys": [key("ACCOUNT#5", "ACCOUNT")], "ConsistentRead": True}}}
    assert answered["UnprocessedKeys"] == {TABLE: {"Keys": [key("APP#1", "APP")], "ConsistentRead": True}}
    assert answered["Responses"] == response["Responses"]
    assert int(dict(headers)["x-amz-crc32"]) == zlib.crc32(body(answered).replace(b" ", b""))
    # every key throttled: the whole batch is refused
    only_hot = {"RequestItems": {TABLE: {"Keys": [key("APP#1", "APP")], "ConsistentRead": True}}}
    _, forwarded, (status, _, refusal) = run(model, "BatchGetItem", only_hot, {})
    assert forwarded is None and status == 400
    assert refusal["__type"].endswith("#ProvisionedThroughputExceededException")


def test_a_transaction_on_a_spent_partition_is_cancelled_for_throttling():
    model = PartitionModel(1000, clock=Clock())  # 1 write unit a second per partition
    put = {"TableName": TABLE, "Item": padded("ACCOUNT#1", 100)}
    run(model, "PutItem", put, {})
    transaction = {
        "TransactItems": [
            {"Put": {"TableName": TABLE, "Item": padded("ACCOUNT#2", 100)}},
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": key("ACCOUNT#1"),
                    "UpdateExpression": "SET a = :a",
                    "ExpressionAttributeValues": {":a": {"N": "1"}},
                }
            },
        ]
    }
    _, forwarded, (status, _, refusal) = run(model, "TransactWriteItems", transaction, {})
    assert forwarded is None and status == 400
    assert refusal == {
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "CancellationReasons": [{"Code": "None"}, {"Code": "ThrottlingError", "Message": THROTTLED_MESSAGE}],
        "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons"
        " [None, ThrottlingError]",
    }
    # nothing of the refused transaction was charged: ACCOUNT#2 still has its whole unit (a single put passes)
    assert run(model, "PutItem", {"TableName": TABLE, "Item": padded("ACCOUNT#2", 100)}, {})[1] is not None


def test_counting_without_budgets_never_refuses():
    model = PartitionModel()
    get = {"TableName": TABLE, "Key": key("TICKETS")}
    for _ in range(500):
        assert run(model, "GetItem", get, {"Item": padded("TICKETS", 100)})[1] is not None
    assert partition(model, "TICKETS")["reads"] == 500
    model.reset()
    assert model.stats()["partitions"] == {}


def test_what_the_model_cannot_read_is_left_alone():
    model = PartitionModel(1)
    assert model.admit("GetItem", b"not json") is None
    assert model.admit("GetItem", b'{"TableName": "T"}') is None  # DynamoDB itself refuses it
    assert model.admit("ListTables", b"{}") is None  # nothing to charge: forwarded untouched
    assert model.admit("Scan", b'{"TableName": "T"}') is None  # ops tools only: not charged

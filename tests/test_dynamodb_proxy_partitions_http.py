"""The partition model over HTTP: the DynamoDB proxy in front of moto's server, boto3 as the caller; and the
partitions `payments serve` reads for a crowd of callers (SPEC §7: no hot partition on a request path)."""

from __future__ import annotations

import contextlib
import http.client
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers import DEMO_SECRET
from helpers.processes import LocalStack, moto_server
from helpers.tokens import token
from payments.repositories.throttling import is_throttling
from payments_cli.dynamodb_local import DynamoDBLocal, is_installed
from payments_cli.dynamodb_proxy import DynamoDBProxy
from payments_cli.partitions import THROTTLED_MESSAGE, PartitionModel

pytestmark = pytest.mark.slow

TABLE = "Hot"
PROGRESS_PATH = "/api/v1/asker/payment/progress"
SWAP_PATH = "/v1.0/db/swap"


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def proxy(upstream: str) -> Iterator[DynamoDBProxy]:
    # 1000× below DynamoDB's: 3 read units and 1 write unit a second per partition; the clock stands still, so a
    # spent budget stays spent however slowly the machine runs the test
    started = DynamoDBProxy(upstream, partitions=PartitionModel(1000, clock=lambda: 0.0)).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def client(proxy: DynamoDBProxy) -> Any:
    """boto3 through the proxy, with no retry of its own: every refusal reaches the test."""
    made = boto3.client(
        "dynamodb",
        endpoint_url=proxy.endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    with contextlib.suppress(made.exceptions.ResourceNotFoundException):
        made.delete_table(TableName=TABLE)
    made.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for pk in ("HOT", "COLD"):
        made.put_item(TableName=TABLE, Item={"pk": {"S": pk}, "sk": {"S": "ITEM"}, "n": {"N": "1"}})
    proxy.reset()  # full budgets, no counts
    return made


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "ITEM"}}


def spend_reads(client: Any, pk: str = "HOT") -> None:
    for _ in range(3):
        client.get_item(TableName=TABLE, Key=key(pk), ConsistentRead=True)


def test_a_spent_partition_answers_provisioned_throughput_exceeded(client, proxy):
    spend_reads(client)
    with pytest.raises(ClientError) as refused:
        client.get_item(TableName=TABLE, Key=key("HOT"), ConsistentRead=True)
    error = refused.value.response
    assert error["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert error["Error"]["Message"] == THROTTLED_MESSAGE
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert isinstance(refused.value, client.exceptions.ProvisionedThroughputExceededException)
    assert is_throttling(refused.value)  # the handlers' own test: answered 503 with Retry-After
    client.get_item(TableName=TABLE, Key=key("COLD"), ConsistentRead=True)  # another partition still serves
    stats = proxy.stats()
    assert stats["partitions"]["partitions"][f"{TABLE} HOT"]["throttled"] == 1
    assert stats["errors"]["GetItem"] == {"ProvisionedThroughputExceededException": 1}


def test_the_raw_answer_is_dynamodbs(client, proxy):
    spend_reads(client)
    connection = http.client.HTTPConnection(*proxy.endpoint.removeprefix("http://").split(":"))
    request = {"TableName": TABLE, "Key": key("HOT"), "ConsistentRead": True}
    headers = {"X-Amz-Target": "DynamoDB_20120810.GetItem", "Content-Type": "application/x-amz-json-1.0"}
    connection.request("POST", "/", body=json.dumps(request), headers=headers)
    response = connection.getresponse()
    assert response.status == 400
    assert response.getheader("Content-Type") == "application/x-amz-json-1.0"
    assert response.getheader("x-amzn-RequestId") and response.getheader("x-amz-crc32")
    assert json.loads(response.read()) == {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": THROTTLED_MESSAGE,
        "ThrottlingReasons": [
            {
                "reason": "TableReadKeyRangeThroughputExceeded",
                "resource": f"arn:aws:dynamodb:us-east-1:000000000000:table/{TABLE}",
            }
        ],
    }


def test_a_transaction_on_a_spent_partition_is_cancelled_with_throttling_error(client):
    client.put_item(TableName=TABLE, Item={**key("HOT"), "n": {"N": "2"}})  # the 1 write unit of the second
    with pytest.raises(ClientError) as refused:
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {**key("COLD"), "n": {"N": "5"}}}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": key("HOT"),
                        "UpdateExpression": "SET n = :n",
                        "ExpressionAttributeValues": {":n": {"N": "3"}},
                    }
                },
            ]
        )
    error = refused.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    assert [reason["Code"] for reason in error["CancellationReasons"]] == ["None", "ThrottlingError"]
    assert is_throttling(refused.value)
    # nothing of it was written
    assert client.get_item(TableName=TABLE, Key=key("COLD"), ConsistentRead=True)["Item"]["n"] == {"N": "1"}


def test_transact_get_on_a_spent_partition_is_cancelled_too(client):
    spend_reads(client)
    with pytest.raises(ClientError) as refused:
        client.transact_get_items(
            TransactItems=[
                {"Get": {"TableName": TABLE, "Key": key("COLD")}},
                {"Get": {"TableName": TABLE, "Key": key("HOT")}},
            ]
        )
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert [reason["Code"] for reason in refused.value.response["CancellationReasons"]] == ["None", "ThrottlingError"]


def test_batch_get_leaves_throttled_keys_unprocessed(client):
    spend_reads(client)
    request = {TABLE: {"Keys": [key("COLD"), key("HOT")], "ConsistentRead": True}}
    response = client.batch_get_item(RequestItems=request)  # botocore checks the answer's CRC32 too
    assert [item["pk"]["S"] for item in response["Responses"][TABLE]] == ["COLD"]
    assert response["UnprocessedKeys"] == {TABLE: {"Keys": [key("HOT")], "ConsistentRead": True}}
    with pytest.raises(ClientError) as refused:  # every key throttled: refused whole
        client.batch_get_item(RequestItems={TABLE: {"Keys": [key("HOT")], "ConsistentRead": True}})
    assert refused.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"


def test_budgets_can_be_set_over_http(client, proxy):
    connection = http.client.HTTPConnection(*proxy.endpoint.removeprefix("http://").split(":"))
    connection.request("POST", "/__proxy/partitions", body=json.dumps({"scale": None}))
    assert json.loads(connection.getresponse().read()) == {}
    for _ in range(10):  # counting only: nothing refused
        client.get_item(TableName=TABLE, Key=key("HOT"), ConsistentRead=True)
    connection.request("GET", "/__proxy/stats")
    stats = json.loads(connection.getresponse().read())
    assert stats["partitions"]["model"] is None
    assert stats["partitions"]["partitions"][f"{TABLE} HOT"]["reads"] == 10


# --- no hot partition on a request path ----------------------------------------------------------------------

CALLERS = 36
ASKERS = range(20_001, 20_001 + CALLERS)
ACCOUNTS = range(10_001, 10_001 + CALLERS)


def crowd_fixture() -> dict[str, Any]:
    """The demo data, plus 36 askers each with a concern of subcategory 1 (a push-notification burst) and 36
    accounts with points on app 1 (a swap promotion)."""
    from conftest import demo_fixture

    fixture = demo_fixture()
    user = {"gender": "여", "age": "20대 중반", "pic": "https://example.com/p.png"}
    fixture["users"] += [user | {"au_id": au_id, "nickname": f"asker{au_id}"} for au_id in ASKERS]
    concern = {
        "content": "c",
        "time": "",
        "wil_gender": "ALL",
        "subcategory_idx": 1,
        "personalities": [],
        "direction": "d",
    }
    fixture["concerns"] += [concern | {"idx": 30_000 + n, "au_id": au_id} for n, au_id in enumerate(ASKERS)]
    fixture["accounts"] += [
        {
            "au_id": au_id,
            "otp_secret": DEMO_SECRET,
            "points": [{"app_id": 1, "point_id": 1, "mu_id": 50_000 + au_id, "quantity": 1000}],
            "wallets": [{"coin_id": 2, "walletaddress": f"0x{au_id:040x}", "quantity": "10"}],
        }
        for au_id in ACCOUNTS
    ]
    return fixture


@pytest.mark.parametrize("cache_seconds", ["30", "0"], ids=["caches on", "caches off"])
def test_36_callers_read_no_partition_in_more_than_a_third_of_their_requests(tmp_path, cache_seconds):
    """Caches on, no partition is touched by more than 12 of the 36 requests of a route; caches off (the check's
    own check), the shared items' partitions are touched by every request."""
    import pyotp

    path = tmp_path / "crowd.json"
    path.write_text(json.dumps(crowd_fixture(), ensure_ascii=False), encoding="utf-8")
    if not is_installed():
        pytest.skip("DynamoDB Local not installed (make dynamodb-local)")
    # DynamoDB Local: moto copies the ledger table, its stream records included, in every transaction, and the
    # fixture's 36 accounts and the swaps' transactions took 35 s there
    with DynamoDBLocal() as upstream:
        counting = DynamoDBProxy(upstream.endpoint, partitions=PartitionModel()).start()
        try:
            env = {"SHARED_ITEMS_CACHE_SECONDS": cache_seconds}
            stack_args = ("--fixture", str(path), "--dynamodb-endpoint", counting.endpoint, "--concurrent-dynamodb")
            with LocalStack(*stack_args, env=env) as stack:
                counting.reset()  # the fixture's load is not a request

                def progress(n_au_id: tuple[int, int]) -> tuple[int, Any]:
                    n, au_id = n_au_id
                    return stack.post(PROGRESS_PATH, {"concern_idx": 30_000 + n}, {"x-token": token(au_id)})

                def swap(au_id: int) -> tuple[int, Any]:
                    body = {
                        "event_id": 3,
                        "otp_code": pyotp.TOTP(DEMO_SECRET).now(),
                        "point": {"app_id": 1, "point_id": 1, "adjust_point_quantity": -100},
                        "coin": {"coin_id": 2, "adjust_coin_quantity": 10},
                    }
                    return stack.post(SWAP_PATH, body, {"Authorization": f"Bearer {token(au_id)}"})

                with ThreadPoolExecutor(2) as pool:
                    progress_answers = list(pool.map(progress, enumerate(ASKERS)))
                    progress_stats = counting.stats()["partitions"]["partitions"]
                    counting.reset()
                    swap_answers = list(pool.map(swap, ACCOUNTS))
                    swap_stats = counting.stats()["partitions"]["partitions"]
        finally:
            counting.stop()
    assert [answer for answer in progress_answers if answer[0] != 200] == []
    assert [answer for answer in swap_answers if (answer[0], answer[1].get("return")) != (200, 0)] == []
    for route, stats in (("payment progress", progress_stats), ("swap", swap_stats)):
        busiest = max(stats.items(), key=lambda item: item[1]["requests"])
        if cache_seconds == "0":
            assert busiest[1]["requests"] >= CALLERS, f"{route}: {busiest}"
        else:
            assert busiest[1]["requests"] <= CALLERS // 3, f"{route}: {busiest[0]} touched by {busiest[1]} requests"

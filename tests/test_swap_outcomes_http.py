"""A lost DynamoDB answer over HTTP, once: the whole path (serve, the proxy, a real database) agrees with test_faults.

test_faults.py tests every lost answer in-process, where it is cheap (botocore's wire, on moto). This is the one
case over HTTP: `payments serve` talks to DynamoDB Local (moto's server when it is not installed) through
payments_cli.dynamodb_proxy, which counts every request and, when armed, forwards a request and then resets the
connection instead of answering: the call happened, its caller cannot know.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from conftest import DEMO_FIXTURE
from helpers import account_items, code_at, exact_json, rated_swap_body, token, wait_for_calm_otp_step
from helpers.ledger import reconciliation_problems
from helpers.processes import LocalStack, dynamodb_at, moto_server
from payments_cli.dynamodb_local import DynamoDBLocal, is_installed
from payments_cli.dynamodb_proxy import DynamoDBProxy
from seed_values import SEED_SWAP_VALUE

pytestmark = pytest.mark.local_stack


@pytest.fixture
def proxied() -> Iterator[tuple[LocalStack, DynamoDBProxy, str]]:
    """serve → counting, fault-injecting proxy → DynamoDB Local (or moto's server, one request at a time)."""
    with ExitStack() as stack:
        if is_installed():
            endpoint, serialise = stack.enter_context(DynamoDBLocal()).endpoint, False
        else:
            endpoint, serialise = stack.enter_context(moto_server()), True
        proxy = DynamoDBProxy(endpoint, serialise=serialise).start()
        stack.callback(proxy.stop)
        local = stack.enter_context(
            LocalStack("--dynamodb-endpoint", proxy.endpoint, "--fixture", str(DEMO_FIXTURE), "--concurrent-dynamodb")
        )
        proxy.reset()
        yield local, proxy, endpoint


def test_lost_answers_of_a_committed_transaction_are_resolved_and_the_retry_is_one_read(proxied):
    local, proxy, endpoint = proxied
    body = rated_swap_body(code_at(wait_for_calm_otp_step()), -110)

    def post() -> tuple[int, object]:
        return local.post("/v1.0/db/swap", raw=exact_json(body), headers={"Authorization": f"Bearer {token(19)}"})

    success = (200, {"return": 0, "message": "success", "value": SEED_SWAP_VALUE})
    # Given the transaction reaches the database and commits, but its answer (and botocore's resend's) never
    # comes back
    proxy.arm("TransactWriteItems", drop_answer=2)
    # When the swap is sent once, it finds out for itself, and answers the truth
    assert post() == success
    assert proxy.stats()["dropped_answers"] == {"TransactWriteItems": 2}
    # Then the client's retry is answered from the request record, with one read, and nothing moves twice
    proxy.reset()
    assert post() == success
    assert proxy.stats()["requests"] == {"BatchGetItem": 1}
    client = dynamodb_at(endpoint)
    ledger = account_items(client, 19)
    assert [sk for sk in ledger if sk.startswith("SWAPLOG#")] == ["SWAPLOG#00000000000000000001"]
    assert ledger["POINT#1#1"]["quantity"] == 1990
    assert reconciliation_problems(client) == []

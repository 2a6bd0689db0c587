"""Fixture loader: what it refuses, the items it writes, upserts, and derived items following their sources."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conftest import moto_tables
from payments.repositories import codec
from payments_cli.fixture_loader import FixtureError, load_fixture, parse_fixture_text

WILLSON = "WillsonTable"
LEDGER = "LedgerTable"
SECRETS = "OtpSecretTable"
# The bundled demo data: the same file as the spec's fixture.example.json.
EXAMPLE = Path(__file__).resolve().parents[1] / "cli" / "payments_cli" / "demo_fixture.json"
IMAGES = "https://willson-v1.s3.ap-northeast-2.amazonaws.com"
WOMAN_PIC = f"{IMAGES}/user_image/img_profile_w.png"
MAN_PIC = f"{IMAGES}/user_image/img_profile_m.png"
RANK_12 = "R#095500000000000#00000000000000000012"
RANK_15 = "R#095200000000000#00000000000000000015"
RANK_18 = "U#00000000000000000018"

Key = tuple[str, str]
Contents = dict[Key, dict[str, Any]]


def _tables(monkeypatch: pytest.MonkeyPatch, snapshot: dict[str, Any]) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    with moto_tables(snapshot) as dynamodb:
        yield dynamodb
        dynamodb.meta.events.unregister("before-call.dynamodb.BatchWriteItem", unique_id=_COUNTER)


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, table_snapshots: dict[str, Any]) -> Iterator[Any]:
    """The template's tables, empty, in a fresh moto: the handlers' client (count_batch_writes' hook removed after)."""
    yield from _tables(monkeypatch, table_snapshots["empty"])


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch, table_snapshots: dict[str, Any]) -> Iterator[Any]:
    """The tables holding the example fixture: conftest's "demo" snapshot (the same file, loaded once a session)."""
    yield from _tables(monkeypatch, table_snapshots["demo"])


@pytest.fixture(scope="module")
def example_contents(table_snapshots: dict[str, Any]) -> tuple[Contents, Contents]:
    """Every item of the tables holding the example fixture, read once a module."""
    with moto_tables(table_snapshots["demo"]) as dynamodb:
        return everything(dynamodb)


def example() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def load(client: Any, document: dict[str, Any] | str) -> dict[str, int]:
    text = document if isinstance(document, str) else json.dumps(document, ensure_ascii=False)
    return load_fixture(client, parse_fixture_text(text), WILLSON, LEDGER, SECRETS)


def contents(client: Any, table: str) -> Contents:
    found: Contents = {}
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for raw in page["Items"]:
            item = codec.from_item(raw)
            assert item is not None
            found[(item["pk"], item["sk"])] = item
    return found


def everything(client: Any) -> tuple[Contents, Contents]:
    return contents(client, WILLSON), contents(client, LEDGER)


def get(client: Any, table: str, pk: str, sk: str) -> dict[str, Any] | None:
    return codec.from_item(client.get_item(TableName=table, Key=codec.to_item({"pk": pk, "sk": sk})).get("Item"))


def listing_of(client: Any, willsoner_idx: int) -> Contents:
    return {
        key: item
        for key, item in contents(client, WILLSON).items()
        if item["entity"] == "listing" and item["willsoner_idx"] == willsoner_idx
    }


def card_12(nickname: str = "지수카카오", gender: str = "여", status: str = "complete") -> dict[str, Any]:
    return {
        "idx": 12,
        "avg_rating": Decimal("4.5"),
        "experience": "저는 집이 잘 살다 한 순가에 무너져 압류즐이 붙고 고물을 줍고 다녔습니다",
        "introduction": "안녕하슈",
        "asker_idx": 26,
        "status": status,
        "asker": {"gender": gender, "age": "20대 중반", "pic": WOMAN_PIC, "nickname": nickname},
        "subcategories": ["이별"],
        "keywords": ["줍줍", "무너짐", "집"],
        "image": f"{IMAGES}/willsoner_image/willson_04.jpg",
    }


def user_26(**changes: Any) -> dict[str, Any]:
    return {"au_id": 26, "nickname": "지수카카오", "gender": "여", "age": "20대 중반", "pic": WOMAN_PIC, **changes}


def willsoner_12(**changes: Any) -> dict[str, Any]:
    return {**example()["willsoners"][0], **changes}


def session(willsoner_idx: int, completed_at: str) -> dict[str, Any]:
    return {"asker_au_id": 149, "willsoner_idx": willsoner_idx, "concern_idx": 1500, "completed_at": completed_at}


_COUNTER = "test_fixture_loader.count_batch_writes"


def count_batch_writes(client: Any) -> list[int]:
    calls: list[int] = []
    client.meta.events.register("before-call.dynamodb.BatchWriteItem", lambda **_: calls.append(1), unique_id=_COUNTER)
    return calls


# --- Loading the example ----------------------------------------------------------------------


def test_example_counts_every_section(client):
    # When the example fixture is loaded
    counts = load(client, example())
    # Then each section's entries are counted
    assert counts == {
        "categories": 2,
        "users": 5,
        "willsoners": 4,
        "tickets": 3,
        "concerns": 3,
        "sessions": 1,
        "apps": 1,
        "coins": 1,
        "swap_rates": 1,
        "accounts": 2,
    }


def test_example_writes_exactly_these_keys(client):
    # When the example fixture is loaded
    load(client, example())
    # Then the tables hold its base items, one card per willsoner and listings for complete ones only
    willson, ledger = everything(client)
    assert sorted(willson) == sorted(
        [
            *[(f"USER#{au_id}", "USER") for au_id in (149, 26, 31, 44, 57)],
            ("CATEGORY#1", "CATEGORY"),
            ("CATEGORY#2", "CATEGORY"),
            *[(f"WILLSONER#{idx}", sk) for idx in (12, 15, 18, 21) for sk in ("PROFILE", "CARD")],
            ("LISTING#1#ALL", RANK_12),
            ("LISTING#1#여", RANK_12),
            ("LISTING#1#ALL", RANK_15),
            ("LISTING#1#남", RANK_15),
            ("LISTING#2#ALL", RANK_15),
            ("LISTING#2#남", RANK_15),
            ("LISTING#1#ALL", RANK_18),
            ("LISTING#1#여", RANK_18),
            ("LISTING#5#ALL", RANK_18),
            ("LISTING#5#여", RANK_18),
            ("TICKETS", "CATALOG"),
            *[(f"CONCERN#{idx}", "CONCERN") for idx in (1577, 1578, 1500)],
            ("ASKER#149", "SESSIONS"),
        ]
    )
    assert sorted(ledger) == sorted(
        [
            ("APP#1", "APP"),
            ("COIN#2", "COIN"),
            ("RATE#1#1#2", "RATE"),
            ("ACCOUNT#149", "ACCOUNT"),
            ("ACCOUNT#149", "POINT#1#1"),
            ("ACCOUNT#149", "ADJUSTMENT#00000000000000000001"),
            ("ACCOUNT#149", f"ADJUSTMENT_ID#{adjustment_id(ledger, 149, 1)}"),
            ("ACCOUNT#19", "ACCOUNT"),
            ("ACCOUNT#19", "POINT#1#1"),
            ("ACCOUNT#19", "WALLET#2"),
            ("ACCOUNT#19", "ADJUSTMENT#00000000000000000001"),
            ("ACCOUNT#19", f"ADJUSTMENT_ID#{adjustment_id(ledger, 19, 1)}"),
            ("ACCOUNT#19", "ADJUSTMENT#00000000000000000002"),
            ("ACCOUNT#19", f"ADJUSTMENT_ID#{adjustment_id(ledger, 19, 2)}"),
        ]
    )


def test_example_concern_is_denormalised(client):
    # When the example fixture is loaded
    load(client, example())
    # Then the concern carries its asker's picture and nickname and its subcategory's names
    assert get(client, WILLSON, "CONCERN#1577", "CONCERN") == {
        "pk": "CONCERN#1577",
        "sk": "CONCERN",
        "entity": "concern",
        "idx": 1577,
        "au_id": 149,
        "content": "필터테스트",
        "time": "",
        "wil_gender": "ALL",
        "subcategory_idx": 1,
        "personalities": ["솔직한", "우유부단한"],
        "direction": "문제를 해결하고 싶어요",
        "asker_pic": WOMAN_PIC,
        "asker_nickname": "포스트맨",
        "subcategory_name": "이별",
        "category_idx": 1,
        "category_name": "연애",
    }


def test_example_willsoner_card_profile_and_listings(client):
    # When the example fixture is loaded
    load(client, example())
    # Then willsoner 12 has a card, a profile naming its listing entries, and those two entries
    assert get(client, WILLSON, "WILLSONER#12", "CARD") == {
        "pk": "WILLSONER#12",
        "sk": "CARD",
        "entity": "willsoner_card",
        "au_id": 26,
        "status": "complete",
        "card": card_12(),
    }
    assert get(client, WILLSON, "WILLSONER#12", "PROFILE") == {
        "pk": "WILLSONER#12",
        "sk": "PROFILE",
        "entity": "willsoner",
        "idx": 12,
        "au_id": 26,
        "status": "complete",
        "avg_rating": Decimal("4.5"),
        "experience": "저는 집이 잘 살다 한 순가에 무너져 압류즐이 붙고 고물을 줍고 다녔습니다",
        "introduction": "안녕하슈",
        "subcategory_idx": [1],
        "keywords": ["줍줍", "무너짐", "집"],
        "image": f"{IMAGES}/willsoner_image/willson_04.jpg",
        "listing_keys": [["LISTING#1#ALL", RANK_12], ["LISTING#1#여", RANK_12]],
    }
    assert listing_of(client, 12) == {
        (partition, RANK_12): {
            "pk": partition,
            "sk": RANK_12,
            "entity": "listing",
            "au_id": 26,
            "willsoner_idx": 12,
            "card": card_12(),
        }
        for partition in ("LISTING#1#ALL", "LISTING#1#여")
    }


def test_example_unrated_and_waiting_willsoners(client):
    # When the example fixture is loaded
    load(client, example())
    # Then the unrated willsoner 18 is listed with a null rating and the waiting willsoner 21 is not listed
    card_18 = get(client, WILLSON, "WILLSONER#18", "CARD")
    assert card_18 is not None and card_18["card"]["avg_rating"] is None
    assert card_18["card"]["subcategories"] == ["이별", "취업"]
    assert sorted(listing_of(client, 18)) == [
        ("LISTING#1#ALL", RANK_18),
        ("LISTING#1#여", RANK_18),
        ("LISTING#5#ALL", RANK_18),
        ("LISTING#5#여", RANK_18),
    ]
    assert listing_of(client, 21) == {}
    card_21 = get(client, WILLSON, "WILLSONER#21", "CARD")
    assert card_21 is not None and card_21["status"] == "waiting"


def test_example_tickets_and_sessions(client):
    # When the example fixture is loaded
    load(client, example())
    # Then the ticket catalogue and the asker's session history are single items
    assert get(client, WILLSON, "TICKETS", "CATALOG") == {
        "pk": "TICKETS",
        "sk": "CATALOG",
        "entity": "tickets",
        "tickets": {
            "1": {"minutes": 30, "price": 7},
            "2": {"minutes": 50, "price": 10},
            "3": {"minutes": 80, "price": 15},
        },
    }
    assert get(client, WILLSON, "ASKER#149", "SESSIONS") == {
        "pk": "ASKER#149",
        "sk": "SESSIONS",
        "entity": "sessions",
        "willsoners": {"12": "2020-11-20T10:00:00Z"},
    }


def adjustment_id(ledger: Contents, au_id: int, seq: int) -> str:
    """The id of an account's adjustment entry: `fixture-` and 64 hex digits when a fixture wrote it."""
    entry = ledger[(f"ACCOUNT#{au_id}", f"ADJUSTMENT#{seq:020d}")]
    return str(entry["adjustment_id"])


def fixture_id(value: str) -> bool:
    return value.startswith("fixture-") and len(value) == 72 and all(c in "0123456789abcdef" for c in value[8:])


def test_example_account_19(client):
    # When the example fixture is loaded
    started = int(time.time() * 1000)
    load(client, example())
    finished = int(time.time() * 1000)
    # Then account 19 has its account item, its honeypot balance and its coin wallet, both written by opening
    # adjustments (previous 0) in the transaction that created the account
    account = {key: item for key, item in contents(client, LEDGER).items() if key[0] == "ACCOUNT#19"}
    point_id, wallet_id = adjustment_id(account, 19, 1), adjustment_id(account, 19, 2)
    assert fixture_id(point_id) and fixture_id(wallet_id) and point_id != wallet_id
    written_at = account[("ACCOUNT#19", "ADJUSTMENT#00000000000000000001")]["created_at_ms"]
    assert started <= written_at <= finished
    opening = {
        "pk": "ACCOUNT#19",
        "entity": "adjustment",
        "au_id": 19,
        "after_log_id": 0,
        "reason": "load-fixture",
        "actor": "load-fixture fixture",
        "created_at_ms": written_at,
        "opening": True,
    }
    assert account == {
        ("ACCOUNT#19", "ACCOUNT"): {
            "pk": "ACCOUNT#19",
            "sk": "ACCOUNT",
            "entity": "account",
            "au_id": 19,
            "version": 0,
            "log_seq": 0,
            "otp_steps": {},
            "adjustment_seq": 2,
        },
        ("ACCOUNT#19", "POINT#1#1"): {
            "pk": "ACCOUNT#19",
            "sk": "POINT#1#1",
            "entity": "point",
            "au_id": 19,
            "app_id": 1,
            "point_id": 1,
            "mu_id": 28,
            "quantity": 2100,
            "last_adjustment_seq": 1,
        },
        ("ACCOUNT#19", "WALLET#2"): {
            "pk": "ACCOUNT#19",
            "sk": "WALLET#2",
            "entity": "wallet",
            "au_id": 19,
            "coin_id": 2,
            "walletaddress": "0x0cE183FBE350BE042c9F456Da78CfADAA5Cf1225",
            "quantity": Decimal("0"),
            "last_adjustment_seq": 2,
        },
        ("ACCOUNT#19", "ADJUSTMENT#00000000000000000001"): {
            **opening,
            "sk": "ADJUSTMENT#00000000000000000001",
            "adjustment_seq": 1,
            "adjustment_id": point_id,
            "balance": "POINT#1#1",
            "previous_quantity": 0,
            "new_quantity": 2100,
        },
        ("ACCOUNT#19", "ADJUSTMENT#00000000000000000002"): {
            **opening,
            "sk": "ADJUSTMENT#00000000000000000002",
            "adjustment_seq": 2,
            "adjustment_id": wallet_id,
            "balance": "WALLET#2",
            "previous_quantity": 0,
            "new_quantity": Decimal("0"),
        },
        ("ACCOUNT#19", f"ADJUSTMENT_ID#{point_id}"): {
            "pk": "ACCOUNT#19",
            "sk": f"ADJUSTMENT_ID#{point_id}",
            "entity": "adjustment_marker",
            "au_id": 19,
            "adjustment_id": point_id,
            "adjustment_seq": 1,
            "created_at_ms": written_at,
        },
        ("ACCOUNT#19", f"ADJUSTMENT_ID#{wallet_id}"): {
            "pk": "ACCOUNT#19",
            "sk": f"ADJUSTMENT_ID#{wallet_id}",
            "entity": "adjustment_marker",
            "au_id": 19,
            "adjustment_id": wallet_id,
            "adjustment_seq": 2,
            "created_at_ms": written_at,
        },
    }


def test_example_catalogue_items(client):
    # When the example fixture is loaded
    load(client, example())
    # Then the app, coin and rate items hold the fixture's values, the rate as an exact decimal
    ledger = contents(client, LEDGER)
    assert ledger[("APP#1", "APP")] == {
        "pk": "APP#1",
        "sk": "APP",
        "entity": "app",
        "app_id": 1,
        "database_id": 1,
        "name": "Willson",
        "points": {"1": "꿀단지"},
    }
    assert ledger[("COIN#2", "COIN")] == {
        "pk": "COIN#2",
        "sk": "COIN",
        "entity": "coin",
        "coin_id": 2,
        "symbol": "WSC",
        "decimals": 8,
    }
    assert ledger[("RATE#1#1#2", "RATE")] == {
        "pk": "RATE#1#1#2",
        "sk": "RATE",
        "entity": "rate",
        "app_id": 1,
        "point_id": 1,
        "coin_id": 2,
        "rate": Decimal("0.1"),
    }
    assert str(ledger[("RATE#1#1#2", "RATE")]["rate"]) == "0.1"


# --- Upserts ------------------------------------------------------------------------------------


def test_loading_twice_leaves_the_same_state_and_writes_nothing_the_second_time(loaded):
    # Given the example fixture loaded once
    client = loaded
    first = everything(client)
    writes = count_batch_writes(client)
    # When it is loaded again
    load(client, example())
    # Then both tables are unchanged and the second load sent no write at all
    assert everything(client) == first
    assert writes == []


def test_empty_fixture_changes_nothing(loaded):
    # Given the example fixture loaded
    client = loaded
    before = everything(client)
    # When a fixture with no sections is loaded
    counts = load(client, "{}")
    # Then nothing changed
    assert everything(client) == before
    assert set(counts.values()) == {0}


def test_unprocessed_writes_are_sent_again(client):
    # Given a DynamoDB that processes only the first item of every other batch call
    class Throttled:
        def __init__(self, real: Any) -> None:
            self._real = real
            self.calls = 0
            self.throttled = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self._real, name)

        def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's name
            (table, requests), *others = RequestItems.items()
            self.calls += 1
            if others or len(requests) == 1 or self.calls % 2 == 0:
                return self._real.batch_write_item(RequestItems=RequestItems)
            self.throttled += 1
            self._real.batch_write_item(RequestItems={table: requests[:1]})
            return {"UnprocessedItems": {table: requests[1:]}}

    throttled = Throttled(client)
    # When the example fixture is loaded through it
    load(throttled, example())
    # Then everything arrived: a plain load of the same fixture finds nothing left to write
    assert throttled.throttled > 0
    loaded = everything(client)
    writes = count_batch_writes(client)
    load(client, example())
    assert writes == []
    assert everything(client) == loaded


def test_tickets_merge_with_the_stored_catalogue(loaded):
    # Given the example fixture loaded
    client = loaded
    # When a fixture changes ticket 2 and adds ticket 4
    load(client, {"tickets": [{"idx": 2, "minutes": 60, "price": 12}, {"idx": 4, "minutes": 100, "price": 18}]})
    # Then tickets 1 and 3 are kept
    catalog = get(client, WILLSON, "TICKETS", "CATALOG")
    assert catalog is not None and catalog["tickets"] == {
        "1": {"minutes": 30, "price": 7},
        "2": {"minutes": 60, "price": 12},
        "3": {"minutes": 80, "price": 15},
        "4": {"minutes": 100, "price": 18},
    }


def test_sessions_keep_the_latest_completion_per_willsoner(loaded):
    # Given the example fixture loaded (asker 149 met willsoner 12 on 2020-11-20T10:00:00Z)
    client = loaded
    # When a fixture adds an older session with 12 and a newer one with 15, with offsets and fractions
    load(
        client,
        {
            "sessions": [
                session(12, "2020-11-01T09:00:00+09:00"),
                session(15, "2020-11-21T09:30:15.75+09:00"),
                session(15, "2020-11-20T23:00:00Z"),
            ]
        },
    )
    # Then each willsoner keeps its latest completion, in UTC
    sessions = get(client, WILLSON, "ASKER#149", "SESSIONS")
    assert sessions is not None
    assert sessions["willsoners"] == {"12": "2020-11-20T10:00:00Z", "15": "2020-11-21T00:30:15Z"}


def test_app_points_merge_with_the_stored_app(loaded):
    # Given the example fixture loaded (app 1 has point 1)
    client = loaded
    # When a fixture restates app 1 with a second point
    app_1 = {"app_id": 1, "database_id": 1, "name": "Willson", "points": [{"point_id": 2, "name": "별"}]}
    load(client, {"apps": [app_1]})
    # Then app 1 has both points
    app = get(client, LEDGER, "APP#1", "APP")
    assert app is not None and app["points"] == {"1": "꿀단지", "2": "별"}


def test_reloading_an_account_keeps_its_counters_and_secret(loaded):
    # Given the example loaded, then account 19 used by a swap (its counters moved)
    client = loaded
    client.update_item(
        TableName=LEDGER,
        Key=codec.to_item({"pk": "ACCOUNT#19", "sk": "ACCOUNT"}),
        UpdateExpression="SET version = :v, log_seq = :l, otp_steps = :s",
        ExpressionAttributeValues=codec.to_item({":v": 3, ":l": 2, ":s": {"last": 55_000_000}}),
    )
    # When a fixture restates account 19 without an OTP secret
    load(client, {"accounts": [{"au_id": 19, "points": [{"app_id": 1, "point_id": 1, "mu_id": 28, "quantity": 500}]}]})
    # Then the counters and the stored secret are kept and the balance is the fixture's
    assert get(client, SECRETS, "ACCOUNT#19", "OTP_SECRET") == {
        "pk": "ACCOUNT#19",
        "sk": "OTP_SECRET",
        "au_id": 19,
        "otp_secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    }
    assert get(client, LEDGER, "ACCOUNT#19", "ACCOUNT") == {
        "pk": "ACCOUNT#19",
        "sk": "ACCOUNT",
        "entity": "account",
        "au_id": 19,
        "version": 3,
        "log_seq": 2,
        "otp_steps": {"last": 55_000_000},
        "adjustment_seq": 3,  # two opening entries, then this fixture's adjustment
    }
    point = get(client, LEDGER, "ACCOUNT#19", "POINT#1#1")
    assert point is not None and point["quantity"] == 500 and point["last_adjustment_seq"] == 3
    entry = get(client, LEDGER, "ACCOUNT#19", "ADJUSTMENT#00000000000000000003")
    assert entry is not None
    assert (entry["balance"], entry["previous_quantity"], entry["new_quantity"], entry["after_log_id"]) == (
        "POINT#1#1",
        2100,
        500,
        2,
    )
    assert "opening" not in entry


def test_new_otp_secret_replaces_the_stored_one_normalised(loaded):
    # Given the example fixture loaded
    client = loaded
    # When account 19 gets a new secret written in lower case with padding
    load(client, {"accounts": [{"au_id": 19, "otp_secret": "gezdgnbvgy3tqojqgezdgnbvgy3tqojq===="}]})
    # Then the stored secret is the canonical upper-case, unpadded form
    stored = get(client, SECRETS, "ACCOUNT#19", "OTP_SECRET")
    assert stored is not None and stored["otp_secret"] == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    # and the ledger, which the payment-progress function may read, holds no secret at all
    assert not any("otp_secret" in item for item in contents(client, LEDGER).values())


def test_references_resolve_against_stored_items(loaded):
    # Given the example fixture loaded
    client = loaded
    # When a fixture holds only a concern of stored user 31 in stored subcategory 5, and a wallet of stored coin 2
    load(
        client,
        {
            "concerns": [
                {
                    "idx": 1600,
                    "au_id": 31,
                    "content": "취업 고민",
                    "time": "",
                    "wil_gender": "여",
                    "subcategory_idx": 5,
                    "personalities": [],
                    "direction": "조언을 듣고 싶어요",
                }
            ],
            "accounts": [
                {"au_id": 31, "wallets": [{"coin_id": 2, "walletaddress": "0xabc", "quantity": "1.50000000000"}]}
            ],
        },
    )
    # Then the concern is denormalised from the stored items and the wallet accepted (trailing zeros don't count)
    concern = get(client, WILLSON, "CONCERN#1600", "CONCERN")
    assert concern is not None
    assert (concern["asker_nickname"], concern["asker_pic"]) == ("새벽감성", MAN_PIC)
    assert (concern["subcategory_name"], concern["category_idx"], concern["category_name"]) == ("취업", 2, "진로")
    wallet = get(client, LEDGER, "ACCOUNT#31", "WALLET#2")
    assert wallet is not None and wallet["quantity"] == Decimal("1.5")


# --- Derived items follow their sources ---------------------------------------------------------


def test_nickname_change_updates_cards_listings_and_concerns(loaded):
    # Given the example fixture loaded
    client = loaded
    before = contents(client, WILLSON)
    # When a fixture renames willsoner 12's user (26) and the asker of the concerns (149)
    load(
        client,
        {
            "users": [
                user_26(nickname="지수"),
                {"au_id": 149, "nickname": "우체부", "gender": "여", "age": "20대 초반", "pic": WOMAN_PIC},
            ]
        },
    )
    # Then exactly the users, willsoner 12's card and listings and 149's concerns changed
    after = contents(client, WILLSON)
    changed = sorted(key for key in after if after[key] != before.get(key))
    assert changed == sorted(
        [
            ("USER#26", "USER"),
            ("USER#149", "USER"),
            ("WILLSONER#12", "CARD"),
            ("LISTING#1#ALL", RANK_12),
            ("LISTING#1#여", RANK_12),
            ("CONCERN#1577", "CONCERN"),
            ("CONCERN#1578", "CONCERN"),
            ("CONCERN#1500", "CONCERN"),
        ]
    )
    assert set(after) == set(before)
    assert after[("WILLSONER#12", "CARD")]["card"] == card_12(nickname="지수")
    assert [entry["card"] for entry in listing_of(client, 12).values()] == [card_12(nickname="지수")] * 2
    assert {after[(f"CONCERN#{idx}", "CONCERN")]["asker_nickname"] for idx in (1577, 1578, 1500)} == {"우체부"}


def test_gender_change_moves_listing_partition(loaded):
    # Given the example fixture loaded (willsoner 12's user 26 is 여)
    client = loaded
    # When user 26 becomes 남
    load(client, {"users": [user_26(gender="남")]})
    # Then willsoner 12 is listed under 남 instead of 여, and its profile records the new entries
    assert sorted(listing_of(client, 12)) == [("LISTING#1#ALL", RANK_12), ("LISTING#1#남", RANK_12)]
    assert get(client, WILLSON, "LISTING#1#여", RANK_12) is None
    profile = get(client, WILLSON, "WILLSONER#12", "PROFILE")
    assert profile is not None and profile["listing_keys"] == [["LISTING#1#ALL", RANK_12], ["LISTING#1#남", RANK_12]]
    assert [entry["card"] for entry in listing_of(client, 12).values()] == [card_12(gender="남")] * 2


def test_rating_change_moves_listing_rank(loaded):
    # Given the example fixture loaded (willsoner 12 rated 4.5)
    client = loaded
    # When willsoner 12 is rated 4.9 and gains subcategory 2
    load(client, {"willsoners": [willsoner_12(avg_rating=4.9, subcategory_idx=[2, 1])]})
    # Then its old entries are gone and the new ones carry the new rank
    rank = "R#095100000000000#00000000000000000012"
    assert sorted(listing_of(client, 12)) == [
        ("LISTING#1#ALL", rank),
        ("LISTING#1#여", rank),
        ("LISTING#2#ALL", rank),
        ("LISTING#2#여", rank),
    ]
    card = get(client, WILLSON, "WILLSONER#12", "CARD")
    assert card is not None
    assert (card["card"]["avg_rating"], card["card"]["subcategories"]) == (Decimal("4.9"), ["짝사랑", "이별"])


def test_status_no_longer_complete_removes_listing_entries(loaded):
    # Given the example fixture loaded (willsoner 12 is complete and listed twice)
    client = loaded
    # When willsoner 12 goes back to waiting
    load(client, {"willsoners": [willsoner_12(status="waiting")]})
    # Then it has no listing entries, and its card and profile say waiting
    assert listing_of(client, 12) == {}
    assert get(client, WILLSON, "WILLSONER#12", "CARD") == {
        "pk": "WILLSONER#12",
        "sk": "CARD",
        "entity": "willsoner_card",
        "au_id": 26,
        "status": "waiting",
        "card": card_12(status="waiting"),
    }
    profile = get(client, WILLSON, "WILLSONER#12", "PROFILE")
    assert profile is not None and (profile["status"], profile["listing_keys"]) == ("waiting", [])
    assert len(listing_of(client, 15)) == 4


def test_subcategory_rename_updates_concerns_and_cards(loaded):
    # Given the example fixture loaded
    client = loaded
    # When subcategory 1 of category 1 is renamed
    subcategories = [{"idx": 1, "name": "헤어짐"}, {"idx": 2, "name": "짝사랑"}]
    load(client, {"categories": [{"idx": 1, "name": "사랑", "subcategories": subcategories}]})
    # Then concerns and cards carry the new names
    concern = get(client, WILLSON, "CONCERN#1577", "CONCERN")
    assert concern is not None and (concern["subcategory_name"], concern["category_name"]) == ("헤어짐", "사랑")
    card_15 = get(client, WILLSON, "WILLSONER#15", "CARD")
    assert card_15 is not None and card_15["card"]["subcategories"] == ["헤어짐", "짝사랑"]
    assert {entry["card"]["subcategories"][0] for entry in listing_of(client, 15).values()} == {"헤어짐"}


# --- Refusals -----------------------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        *parents, last = [int(part) if part.isdigit() else part for part in path.split("/")]
        target: Any = document
        for part in parents:
            target = target[part]
        target[last] = value

    return change


def _append(section: str, entry: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda document: document[section].append(entry)


REFUSED: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "unknown field": (_set("users/0/email", "a@b.c"), "users[0].email: Extra inputs are not permitted"),
    "unknown section": (_set("reviews", []), "reviews: Extra inputs are not permitted"),
    "bool for an int": (_set("tickets/1/minutes", True), "tickets[1].minutes: Input should be a valid integer"),
    "string for an int": (
        _set("willsoners/0/subcategory_idx", ["1"]),
        "willsoners[0].subcategory_idx[0]: Input should be a valid integer",
    ),
    "float for an int": (
        _set("accounts/0/points/0/quantity", 280.0),
        "accounts[0].points[0].quantity: Input should be a valid integer",
    ),
    "zero id": (_set("coins/0/coin_id", 0), "coins[0].coin_id: Input should be greater than 0"),
    "id too large": (_set("users/0/au_id", 2**63), "users[0].au_id: Input should be less than 9223372036854775808"),
    "unknown gender": (_set("users/1/gender", "F"), "users[1].gender: Input should be '여' or '남'"),
    "unknown concern gender": (
        _set("concerns/0/wil_gender", "all"),
        "concerns[0].wil_gender: Input should be 'ALL', '여' or '남'",
    ),
    "rating above 5": (
        _set("willsoners/1/avg_rating", 5.01),
        "willsoners[1].avg_rating: Input should be less than or equal to 5",
    ),
    "rating as a string": (_set("willsoners/1/avg_rating", "4.8"), "willsoners[1].avg_rating: must be a JSON number"),
    "zero minutes": (_set("tickets/0/minutes", 0), "tickets[0].minutes: Input should be greater than 0"),
    "negative price": (_set("tickets/0/price", -1), "tickets[0].price: Input should be greater than or equal to 0"),
    "too many coin decimals": (
        _set("coins/0/decimals", 19),
        "coins[0].decimals: Input should be less than or equal to 18",
    ),
    "rate as a number": (
        _set("swap_rates/0/rate", 0.1),
        'swap_rates[0].rate: must be a decimal string such as "0.1" (digits, optionally a point and digits)',
    ),
    "zero rate": (_set("swap_rates/0/rate", "0.000"), "swap_rates[0].rate: Input should be greater than 0"),
    "short otp secret": (
        _set("accounts/1/otp_secret", "JBSWY3DPEHPK3PX"),
        "accounts[1].otp_secret: must be at least 16 base32 characters",
    ),
    "otp secret not base32": (
        _set("accounts/1/otp_secret", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PX1"),
        "accounts[1].otp_secret: is not a usable TOTP secret (Non-base32 digit found)",
    ),
    "negative point quantity": (
        _set("accounts/1/points/0/quantity", -1),
        "accounts[1].points[0].quantity: Input should be greater than or equal to 0",
    ),
    "wallet quantity too large": (
        _set("accounts/1/wallets/0/quantity", "1000000000000000000"),
        "accounts[1].wallets[0].quantity: Input should be less than 1000000000000000000",
    ),
    "completed_at without offset": (
        _set("sessions/0/completed_at", "2020-11-20T10:00:00"),
        "sessions[0].completed_at: must state its UTC offset (for example Z or +09:00)",
    ),
    "completed_at not a date": (
        _set("sessions/0/completed_at", "yesterday"),
        "sessions[0].completed_at: must be an ISO 8601 date and time",
    ),
    "section as null": (_set("tickets", None), "tickets: Input should be a valid list"),
    "duplicate user": (_append("users", user_26()), "users[5].au_id: duplicate of users[1].au_id"),
    "duplicate subcategory across categories": (
        _set("categories/1/subcategories/0/idx", 2),
        "categories[1].subcategories[0].idx: duplicate of categories[0].subcategories[1].idx",
    ),
    "repeated willsoner subcategory": (
        _set("willsoners/1/subcategory_idx", [1, 2, 1]),
        "willsoners[1].subcategory_idx[2]: duplicate of willsoners[1].subcategory_idx[0]",
    ),
    "dangling concern subcategory": (
        _set("concerns/0/subcategory_idx", 99),
        "concerns[0].subcategory_idx: subcategory 99 does not exist",
    ),
    "dangling concern asker": (_set("concerns/2/au_id", 7), "concerns[2].au_id: user 7 does not exist"),
    "dangling willsoner user": (_set("willsoners/2/au_id", 99), "willsoners[2].au_id: user 99 does not exist"),
    "dangling willsoner subcategory": (
        _set("willsoners/2/subcategory_idx", [1, 6, 8]),
        "willsoners[2].subcategory_idx[2]: subcategory 8 does not exist",
    ),
    "dangling session willsoner": (
        _set("sessions/0/willsoner_idx", 13),
        "sessions[0].willsoner_idx: willsoner 13 does not exist",
    ),
    "dangling session asker": (_set("sessions/0/asker_au_id", 150), "sessions[0].asker_au_id: user 150 does not exist"),
    "dangling rate app": (_set("swap_rates/0/app_id", 2), "swap_rates[0].app_id: app 2 does not exist"),
    "dangling rate point": (
        _set("swap_rates/0/point_id", 7),
        "swap_rates[0].point_id: point 7 of app 1 does not exist",
    ),
    "dangling rate coin": (_set("swap_rates/0/coin_id", 3), "swap_rates[0].coin_id: coin 3 does not exist"),
    "dangling account point": (
        _set("accounts/0/points/0/point_id", 2),
        "accounts[0].points[0].point_id: point 2 of app 1 does not exist",
    ),
    "dangling wallet coin": (
        _set("accounts/1/wallets/0/coin_id", 5),
        "accounts[1].wallets[0].coin_id: coin 5 does not exist",
    ),
    "wallet quantity with too many decimals": (
        _set("accounts/1/wallets/0/quantity", "0.123456789"),
        "accounts[1].wallets[0].quantity: 0.123456789 has more than 8 fractional digits (coin 2)",
    ),
}


@pytest.mark.parametrize("preloaded", [False, True], ids=["empty tables", "after a good load"])
@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_broken_fixture_is_refused_naming_the_path_and_nothing_is_written(request, case, preloaded, example_contents):
    # Given empty tables, or tables holding the example fixture
    client = request.getfixturevalue("loaded" if preloaded else "client")
    before = example_contents if preloaded else ({}, {})
    change, message = REFUSED[case]
    document = copy.deepcopy(example())
    change(document)
    # When the broken fixture is loaded
    with pytest.raises(FixtureError) as refused:
        load(client, document)
    # Then the message names the path and the tables are exactly as before
    assert str(refused.value) == message
    assert everything(client) == before


NOT_A_NUMBER = "is not a JSON number; the fixture must not contain NaN or Infinity"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"users": [{"au_id": 1, "au_id": 2}]}', "users[0].au_id: key appears more than once"),
        ('{"tickets": [], "tickets": []}', "tickets: key appears more than once"),
        ('{"willsoners": [{"avg_rating": NaN}]}', f"NaN {NOT_A_NUMBER}"),
        ('{"willsoners": [{"avg_rating": -Infinity}]}', f"-Infinity {NOT_A_NUMBER}"),
        ('{"users": [', "line 1 column 12: Expecting value"),
        ("[]", "(top level): Input should be a valid dictionary or instance of Fixture"),
    ],
    ids=["repeated field", "repeated section", "NaN", "Infinity", "truncated", "not an object"],
)
def test_malformed_json_is_refused(loaded, text, message, example_contents):
    # Given the example fixture loaded
    client, before = loaded, example_contents
    # When malformed text is loaded
    with pytest.raises(FixtureError) as refused:
        load(client, text)
    # Then the message says what is wrong and nothing changed
    assert str(refused.value) == message
    assert everything(client) == before


def test_category_update_that_orphans_stored_items_is_refused(loaded, example_contents):
    # Given the example fixture loaded (willsoners 12, 15 and 18 and the concerns use subcategory 1)
    client, before = loaded, example_contents
    # When a fixture restates category 1 without subcategory 1
    with pytest.raises(FixtureError) as refused:
        load(client, {"categories": [{"idx": 1, "name": "연애", "subcategories": [{"idx": 2, "name": "짝사랑"}]}]})
    # Then the stored willsoner that would be orphaned is named and nothing changed
    assert str(refused.value) == "willsoner 12 (stored).subcategory_idx[0]: subcategory 1 does not exist"
    assert everything(client) == before


def test_subcategory_moved_into_another_stored_category_is_refused(loaded, example_contents):
    # Given the example fixture loaded (subcategory 5 belongs to category 2)
    client, before = loaded, example_contents
    # When a new category 3 claims subcategory 5
    with pytest.raises(FixtureError) as refused:
        load(client, {"categories": [{"idx": 3, "name": "기타", "subcategories": [{"idx": 5, "name": "취업"}]}]})
    # Then the fixture's path is named and nothing changed
    assert str(refused.value) == "categories[0].subcategories[0].idx: subcategory 5 already belongs to category 2"
    assert everything(client) == before


def test_wallet_decimals_follow_a_coin_changed_in_the_same_fixture(loaded, example_contents):
    # Given the example fixture loaded (coin 2 has 8 decimals)
    client, before = loaded, example_contents
    # When a fixture lowers coin 2 to 2 decimals and gives a wallet 3 of them
    fixture = {
        "coins": [{"coin_id": 2, "symbol": "WSC", "decimals": 2}],
        "accounts": [{"au_id": 19, "wallets": [{"coin_id": 2, "walletaddress": "0x0", "quantity": "0.125"}]}],
    }
    with pytest.raises(FixtureError) as refused:
        load(client, fixture)
    # Then the wallet is refused against the fixture's coin
    assert str(refused.value) == "accounts[0].wallets[0].quantity: 0.125 has more than 2 fractional digits (coin 2)"
    assert everything(client) == before

"""Payment progress through API Gateway events into the handler: every shape, filter and error."""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest

from conftest import ROOT, WILLSON_TABLE, LambdaContext, api_event, call, demo_fixture, load, token
from functions.payment_progress import app as payment_progress
from payments.repositories.shared_items import forget_all

PATH = "/api/v1/asker/payment/progress"
SEED_RESPONSE = json.loads(
    (ROOT / "tests" / "data" / "seed_payment_progress_response.json").read_text(encoding="utf-8")
)


def progress(body: Any = None, au_id: int | None = 149, raw: str | None = None, headers: dict[str, str] | None = None):
    all_headers = {"x-token": token(au_id)} if au_id is not None else {}
    all_headers.update(headers or {})
    return call(payment_progress.lambda_handler, api_event(PATH, body, all_headers, raw=raw))


def listed(body: dict[str, Any]) -> list[tuple[int, str]]:
    return [(w["idx"], w["avg_rating"]) for w in body["data"]["willsoners"]]


def test_seed_example_is_reproduced_exactly(dynamodb):
    # Given a database holding only the seed page's example data
    load(dynamodb, ROOT / "tests" / "data" / "seed_payment_progress_fixture.json")
    # When the seed's asker asks for concern 1577
    status, body = progress({"concern_idx": 1577})
    # Then the answer is the seed's, field for field and in the seed's order
    assert status == 200
    assert body == SEED_RESPONSE
    assert json.dumps(body, ensure_ascii=False) == json.dumps(SEED_RESPONSE, ensure_ascii=False)


def test_all_willsoners_ranked_by_rating_then_idx_unrated_last(demo):
    status, body = progress({"concern_idx": 1577})
    assert status == 200
    assert listed(body) == [(15, "4.8"), (12, "4.5"), (18, "0.0")]
    assert body["data"]["point"] == {"honeypot": "280개"}
    assert [t["idx"] for t in body["data"]["tickets"]] == [1, 2, 3]
    assert body["data"]["willsoners"][0]["subcategories"] == [{"name": "이별"}, {"name": "짝사랑"}]
    assert body["data"]["willsoners"][2]["subcategories"] == [{"name": "이별"}, {"name": "취업"}]


def test_an_inactive_ticket_is_not_offered(demo):
    # Given ticket 2 marked inactive in the stored catalogue (absent `active` means active)
    demo.update_item(
        TableName=WILLSON_TABLE,
        Key={"pk": {"S": "TICKETS"}, "sk": {"S": "CATALOG"}},
        UpdateExpression="SET tickets.#idx.active = :inactive",
        ExpressionAttributeNames={"#idx": "2"},
        ExpressionAttributeValues={":inactive": {"BOOL": False}},
        ConditionExpression="attribute_exists(tickets.#idx)",
    )
    forget_all()  # as `load` does: the handler's kept catalogue is read again
    # When the asker asks for concern 1577
    status, body = progress({"concern_idx": 1577})
    # Then ticket 2 is not offered; the others still are, in order
    assert status == 200
    assert body["data"]["tickets"] == [
        {"type": "고민나누기 30분", "amount": "꿀단지 7개", "idx": 1},
        {"type": "고민나누기 80분", "amount": "꿀단지 15개", "idx": 3},
    ]
    assert listed(body) == [(15, "4.8"), (12, "4.5"), (18, "0.0")]


def test_match_type_null_means_all(demo):
    assert listed(progress({"concern_idx": 1577, "match_type": None})[1]) == [(15, "4.8"), (12, "4.5"), (18, "0.0")]


def test_match_type_2_leaves_out_willsoners_already_met(demo):
    status, body = progress({"concern_idx": 1577, "match_type": 2})
    assert status == 200
    assert listed(body) == [(15, "4.8"), (18, "0.0")]


def test_match_type_1_lists_the_willsoners_met_before(demo):
    status, body = progress({"concern_idx": 1577, "match_type": 1})
    assert status == 200
    assert listed(body) == [(12, "4.5")]


def test_match_type_1_orders_by_most_recent_session_and_skips_incomplete(dynamodb):
    fixture = demo_fixture()
    fixture["sessions"] = [
        {"asker_au_id": 149, "willsoner_idx": 12, "concern_idx": 1500, "completed_at": "2020-11-20T10:00:00Z"},
        {"asker_au_id": 149, "willsoner_idx": 18, "concern_idx": 1500, "completed_at": "2021-01-02T10:00:00+09:00"},
        {"asker_au_id": 149, "willsoner_idx": 21, "concern_idx": 1500, "completed_at": "2022-01-01T00:00:00Z"},
        {"asker_au_id": 149, "willsoner_idx": 15, "concern_idx": 1500, "completed_at": "2019-05-01T00:00:00Z"},
    ]
    load(dynamodb, fixture)
    # 21 is waiting: asked for by name but no longer complete, so not listed
    assert listed(progress({"concern_idx": 1578, "match_type": 1})[1]) == [(18, "0.0"), (12, "4.5"), (15, "4.8")]


def test_gender_filter_follows_the_concern(demo):
    # concern 1578 wants a male willsoner: only 15 (au_id 31, 남)
    status, body = progress({"concern_idx": 1578})
    assert status == 200
    assert listed(body) == [(15, "4.8")]
    assert body["data"]["concern"]["wil_gender"] == "남"


def demo_with_a_concern_of_willsoner_12() -> dict[str, Any]:
    """The demo data plus concern 2000 of au 26, who is willsoner 12 (a caller who is also a willsoner)."""
    fixture = demo_fixture()
    fixture["concerns"].append(
        {
            "idx": 2000,
            "au_id": 26,
            "content": "내 고민",
            "time": "",
            "wil_gender": "ALL",
            "subcategory_idx": 1,
            "personalities": [],
            "direction": "들어주세요",
        }
    )
    return fixture


def test_the_caller_is_never_listed(dynamodb):
    fixture = demo_with_a_concern_of_willsoner_12()
    load(dynamodb, fixture)
    status, body = progress({"concern_idx": 2000}, au_id=26)
    assert status == 200
    assert listed(body) == [(15, "4.8"), (18, "0.0")]
    assert body["data"]["point"] == {"honeypot": "0개"}


@pytest.mark.parametrize(
    ("met", "answer"),
    [
        # the caller met only their own card: nobody is left to list
        ([12], (404, {"code": "willsoner_not_found", "message": "Willsoner not found."})),
        # their own card is the most recent session, yet only the other willsoner is listed
        ([12, 15], (200, [(15, "4.8")])),
    ],
    ids=["only_their_own_card", "their_own_card_and_another"],
)
def test_match_type_1_never_lists_the_caller_met_as_their_own_willsoner(dynamodb, met, answer):
    # Given au 26, who is willsoner 12, with a concern of their own and sessions with their own card
    fixture = demo_with_a_concern_of_willsoner_12()
    completed = {12: "2021-06-01T00:00:00Z", 15: "2021-01-01T00:00:00Z"}
    fixture["sessions"].extend(
        {"asker_au_id": 26, "willsoner_idx": idx, "concern_idx": 2000, "completed_at": completed[idx]} for idx in met
    )
    load(dynamodb, fixture)
    # When they ask for the willsoners they met before
    status, body = progress({"concern_idx": 2000, "match_type": 1}, au_id=26)
    # Then their own card is never listed
    expected_status, expected = answer
    assert status == expected_status
    assert (listed(body) if status == 200 else body) == expected


def many_willsoners_fixture(count: int, subcategory: int = 1) -> dict[str, Any]:
    fixture = demo_fixture()
    for n in range(count):
        au_id = 10_000 + n
        fixture["users"].append(
            {
                "au_id": au_id,
                "nickname": f"user{n}",
                "gender": "여" if n % 2 else "남",
                "age": "30대",
                "pic": f"https://example.com/{n}.png",
            }
        )
        fixture["willsoners"].append(
            {
                "idx": 1_000 + n,
                "au_id": au_id,
                "status": "complete" if n % 5 else "waiting",
                "avg_rating": None if n % 7 == 0 else round(1 + (n % 40) / 10, 1),
                "experience": "경험",
                "introduction": "소개",
                "subcategory_idx": [subcategory],
                "keywords": ["k"],
                "image": f"https://example.com/w{n}.jpg",
            }
        )
    return fixture


def expected_order(fixture: dict[str, Any], exclude_au: int) -> list[int]:
    complete = [
        w
        for w in fixture["willsoners"]
        if w["status"] == "complete" and 1 in w["subcategory_idx"] and w["au_id"] != exclude_au
    ]
    rated = sorted((w for w in complete if w["avg_rating"] is not None), key=lambda w: (-w["avg_rating"], w["idx"]))
    unrated = sorted((w for w in complete if w["avg_rating"] is None), key=lambda w: w["idx"])
    return [w["idx"] for w in rated + unrated]


def test_at_most_30_are_listed_in_rank_order(dynamodb):
    fixture = many_willsoners_fixture(80)
    load(dynamodb, fixture)
    status, body = progress({"concern_idx": 1577})
    assert status == 200
    assert [w["idx"] for w in body["data"]["willsoners"]] == expected_order(fixture, 149)[:30]


def test_avg_rating_rounds_half_up(dynamodb):
    fixture = demo_fixture()
    fixture["willsoners"][0]["avg_rating"] = 4.25
    fixture["willsoners"][1]["avg_rating"] = 4.35
    fixture["willsoners"][2]["avg_rating"] = 3
    load(dynamodb, fixture)
    assert listed(progress({"concern_idx": 1577})[1]) == [(15, "4.4"), (12, "4.3"), (18, "3.0")]


class CountingHook:
    def __init__(self) -> None:
        self.operations: list[str] = []

    def __call__(self, model: Any, **_: Any) -> None:
        self.operations.append(model.name)


@pytest.mark.parametrize("count", [5, 500])
def test_round_trips_do_not_grow_with_willsoners(dynamodb, count):
    load(dynamodb, many_willsoners_fixture(count))
    hook = CountingHook()
    dynamodb.meta.events.register("before-call.dynamodb", hook)
    try:
        for body in (
            {"concern_idx": 1577},
            {"concern_idx": 1577, "match_type": 2},
            {"concern_idx": 1577, "match_type": 1},
        ):
            hook.operations.clear()
            status, _ = progress(body)
            assert status == 200
            assert len(hook.operations) <= 3, hook.operations
            assert "Scan" not in hook.operations
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb", hook)


# Errors, in the order SPEC checks them: body → token → fields → concern → willsoners.


@pytest.mark.parametrize(
    "raw", ["{bad json", "[1, 2]", '"text"', "", "null", "NaN", '{"concern_idx": 1, "concern_idx": 2}']
)
def test_body_that_is_not_a_json_object_comes_first(demo, raw):
    status, body = progress(raw=raw, au_id=None)
    assert status == 400
    assert body["code"] == "invalid_parameter"
    assert body["message"]


def test_missing_token(demo):
    assert progress({"concern_idx": 1577}, au_id=None) == (
        401,
        {"code": "invalid_token", "message": "Access token is invalid"},
    )


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-jwt",
        jwt.encode({"au_id": 149, "exp": 4102444800}, "other-secret", algorithm="HS256"),
        jwt.encode({"au_id": 149}, "x", algorithm="HS256"),
    ],
)
def test_malformed_or_badly_signed_token(demo, bad):
    status, body = progress({"concern_idx": 1577}, au_id=None, headers={"x-token": bad})
    assert (status, body) == (401, {"code": "invalid_token", "message": "Access token is invalid"})


def test_expired_token(demo):
    expired = token(149, ttl=-1)
    status, body = progress({"concern_idx": 1577}, au_id=None, headers={"x-token": expired})
    assert (status, body) == (401, {"code": "access_token_expired", "message": "Access token expired"})


def test_expired_token_in_milliseconds_like_the_seed(demo):
    seed_expired = jwt.encode(
        {"au_id": 149, "exp": 1646410924922}, "local-development-secret-change-me", algorithm="HS256"
    )
    assert progress({"concern_idx": 1577}, au_id=None, headers={"x-token": seed_expired})[0] == 401
    fresh_ms = token(149, milliseconds=True)
    assert progress({"concern_idx": 1577}, au_id=None, headers={"x-token": fresh_ms})[0] == 200


def test_token_checked_before_fields(demo):
    assert progress({"concern_idx": "x"}, au_id=None)[1]["code"] == "invalid_token"


@pytest.mark.parametrize(
    "payload, message",
    [
        ({}, "concern_idx is required"),
        ({"concern_idx": "1577"}, "concern_idx must be an integer"),
        ({"concern_idx": True}, "concern_idx must be an integer"),
        ({"concern_idx": 1577.0}, "concern_idx must be an integer"),
        ({"concern_idx": None}, "concern_idx must be an integer"),
        ({"concern_idx": 1577, "match_type": 3}, "match_type must be 1 or 2"),
        ({"concern_idx": 1577, "match_type": "1"}, "match_type must be 1 or 2"),
        ({"concern_idx": 1577, "match_type": True}, "match_type must be 1 or 2"),
        ({"concern_idx": 1577, "match_type": 1.0}, "match_type must be 1 or 2"),
    ],
)
def test_fields_of_the_wrong_type_are_refused_not_coerced(demo, payload, message):
    assert progress(payload) == (400, {"code": "invalid_parameter", "message": message})


def test_concern_that_does_not_exist(demo):
    assert progress({"concern_idx": 424242}) == (404, {"code": "not_found", "message": "Result not found"})


def test_concern_of_someone_else(demo):
    assert progress({"concern_idx": 1577}, au_id=26) == (404, {"code": "not_found", "message": "Result not found"})


def test_nobody_to_list(demo):
    # 149 has met only 12, and only 15 is male: a different willsoner for a male-only concern is 15...
    assert progress({"concern_idx": 1578, "match_type": 2})[0] == 200
    # ...but nobody in subcategory 2 is female and complete
    fixture = demo_fixture()
    fixture["concerns"] = [
        {
            "idx": 3000,
            "au_id": 149,
            "content": "c",
            "time": "",
            "wil_gender": "여",
            "subcategory_idx": 2,
            "personalities": [],
            "direction": "d",
        }
    ]
    load(demo, fixture)
    assert progress({"concern_idx": 3000}) == (404, {"code": "willsoner_not_found", "message": "Willsoner not found."})


def test_match_type_1_without_sessions_finds_nobody(demo):
    load(
        demo,
        {
            "concerns": [
                {
                    "idx": 3001,
                    "au_id": 44,
                    "content": "c",
                    "time": "",
                    "wil_gender": "ALL",
                    "subcategory_idx": 1,
                    "personalities": [],
                    "direction": "d",
                }
            ]
        },
    )
    assert progress({"concern_idx": 3001, "match_type": 1}, au_id=44) == (
        404,
        {"code": "willsoner_not_found", "message": "Willsoner not found."},
    )


def test_unexpected_failure_is_a_500_without_internals(demo, monkeypatch):
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(payment_progress.repository, "load_payment_context", broken)
    assert progress({"concern_idx": 1577}) == (500, {"code": "internal_error", "message": "Internal server error"})


def test_match_type_1_stays_within_3_requests_for_a_caller_who_met_hundreds(dynamodb):
    fixture = many_willsoners_fixture(260)
    fixture["sessions"] = [
        {
            "asker_au_id": 149,
            "willsoner_idx": 1_000 + n,
            "concern_idx": 1500,
            "completed_at": f"2021-01-01T00:{n // 60:02d}:{n % 60:02d}Z",
        }
        for n in range(250)
    ]
    load(dynamodb, fixture)
    hook = CountingHook()
    dynamodb.meta.events.register("before-call.dynamodb", hook)
    try:
        status, body = progress({"concern_idx": 1577, "match_type": 1})
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb", hook)
    assert status == 200
    assert len(hook.operations) <= 3, hook.operations
    # most recent session first, only willsoners still complete (every fifth one is waiting)
    met = [1_000 + n for n in range(249, -1, -1) if n % 5]
    assert [w["idx"] for w in body["data"]["willsoners"]] == met[:30]


def test_ranking_uses_the_stored_rating_to_many_decimals(dynamodb):
    fixture = demo_fixture()
    fixture["willsoners"][0]["avg_rating"] = 4.12344  # idx 12, shown "4.1"
    fixture["willsoners"][1]["avg_rating"] = 4.12345  # idx 15, shown "4.1"
    fixture["willsoners"][2]["avg_rating"] = 4.12345  # idx 18, shown "4.1": ties with 15, then idx
    load(dynamodb, fixture)
    assert listed(progress({"concern_idx": 1577})[1]) == [(15, "4.1"), (18, "4.1"), (12, "4.1")]


class SlowDynamoDBContext(LambdaContext):
    """A Lambda context whose clock loses a DynamoDB call's worst case (payments.aws) per call made."""

    def __init__(self, start_ms: int, hook: CountingHook) -> None:
        self.start_ms, self.hook = start_ms, hook

    def get_remaining_time_in_millis(self) -> int:
        from payments.aws import DYNAMODB_CALL_WORST_CASE_MS

        return self.start_ms - DYNAMODB_CALL_WORST_CASE_MS * len(self.hook.operations)


def sessions_whose_latest_100_are_waiting(dynamodb: Any) -> None:
    """match_type 1 then needs a second chunk of cards: 3 DynamoDB calls."""
    fixture = many_willsoners_fixture(150)
    for n, willsoner in enumerate(fixture["willsoners"][-150:]):
        if n >= 50:
            willsoner["status"] = "waiting"
    fixture["sessions"] = [
        {
            "asker_au_id": 149,
            "willsoner_idx": 1_000 + n,
            "concern_idx": 1500,
            "completed_at": f"2021-01-01T00:{n // 60:02d}:{n % 60:02d}Z",
        }
        for n in range(150)
    ]
    load(dynamodb, fixture)


@pytest.mark.parametrize(
    ("start_ms", "status", "calls"),
    [
        # the function's Timeout (22 s): a third call could outlive the invocation, so it is not sent
        (22_000, 500, ["BatchGetItem", "BatchGetItem"]),
        # with time for all three: the listing
        (28_000, 200, ["BatchGetItem", "BatchGetItem", "BatchGetItem"]),
        # not even the first call fits
        (9_499, 500, []),
    ],
)
def test_no_dynamodb_call_starts_that_could_outlive_the_invocation(dynamodb, start_ms, status, calls):
    sessions_whose_latest_100_are_waiting(dynamodb)
    hook = CountingHook()
    dynamodb.meta.events.register("before-call.dynamodb", hook)
    try:
        event = api_event(PATH, {"concern_idx": 1577, "match_type": 1}, {"x-token": token(149)})
        response = payment_progress.lambda_handler(event, SlowDynamoDBContext(start_ms, hook))
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb", hook)
    body = json.loads(response["body"])
    assert (response["statusCode"], hook.operations) == (status, calls)
    if status == 500:
        # the catalogued answer, not a function timeout (which API Gateway answers with its own 502 body)
        assert body == {"code": "internal_error", "message": "Internal server error"}
    else:
        met = [1_000 + n for n in range(49, -1, -1) if n % 5]
        assert [w["idx"] for w in body["data"]["willsoners"]] == met[:30]

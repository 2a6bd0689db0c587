"""Validates fixture files (demo data, test users, catalogues) and upserts them into the Willson and Ledger tables."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, DecimalException
from typing import Annotated, Any, Literal, TypeVar

import pyotp
from boto3.dynamodb.table import BatchWriter
from boto3.dynamodb.types import DYNAMODB_CONTEXT
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from payments.models.willson import Concern as ConcernValue
from payments.models.willson import Ticket as TicketValue
from payments.models.willson import WillsonerCard
from payments.repositories import codec, keys
from payments.repositories.adjustments import (
    AdjustmentRepository,
    BalanceSetting,
    Outcome,
    PointTarget,
    WalletTarget,
)
from payments.repositories.batch import batch_get
from payments.repositories.ledger import LedgerRepository
from payments.repositories.ledger_items import (
    AccountItem,
    AppItem,
    CoinItem,
    OtpSecretItem,
    PointBalanceItem,
    RateItem,
    WalletItem,
)
from payments.repositories.willson_items import (
    AskerSessionsItem,
    CardItem,
    CategoryItem,
    ConcernItem,
    FieldsItem,
    ListingEntryItem,
    TicketCatalogItem,
    UserItem,
    WillsonerProfileItem,
)


class FixtureError(Exception):
    """A fixture was refused; message names the path, e.g. 'willsoners[2].au_id: user 99 does not exist'."""


# --- Format ---------------------------------------------------------------------------------

_ID_LIMIT = 2**63
_WALLET_LIMIT = 10**18
_MIN_OTP_SECRET_LENGTH = 16
_DECIMAL_STRING = re.compile(r"[0-9]+(\.[0-9]+)?")


def _storable(value: Decimal) -> Decimal:
    # The serializer would refuse the value mid-load; refusing it here keeps the load all-or-nothing.
    try:
        DYNAMODB_CONTEXT.create_decimal(value)
    except DecimalException:
        raise ValueError("does not fit a DynamoDB number (at most 38 significant digits)") from None
    return value


def _json_number(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValueError("must be a JSON number")
    return _storable(Decimal(value))


def _decimal_string(value: object) -> Decimal:
    if not isinstance(value, str) or not _DECIMAL_STRING.fullmatch(value):
        raise ValueError('must be a decimal string such as "0.1" (digits, optionally a point and digits)')
    return _storable(Decimal(value))


def _otp_secret(value: str) -> str:
    secret = value.upper().rstrip("=")
    if len(secret) < _MIN_OTP_SECRET_LENGTH:
        raise ValueError(f"must be at least {_MIN_OTP_SECRET_LENGTH} base32 characters")
    try:
        pyotp.TOTP(secret)
    except ValueError as error:
        raise ValueError(f"is not a usable TOTP secret ({error})") from None
    return secret


def _utc_timestamp(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        raise ValueError("must state its UTC offset (for example Z or +09:00)")
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None
    return utc.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


Id = Annotated[int, Field(gt=0, lt=_ID_LIMIT)]
Gender = Literal["여", "남"]
ConcernGender = Literal["ALL", "여", "남"]
Rating = Annotated[Decimal, BeforeValidator(_json_number), Field(ge=0, le=5)]
Rate = Annotated[Decimal, BeforeValidator(_decimal_string), Field(gt=0)]
CoinQuantity = Annotated[Decimal, BeforeValidator(_decimal_string), Field(ge=0, lt=_WALLET_LIMIT)]
PointQuantity = Annotated[int, Field(ge=0, lt=_ID_LIMIT)]
OtpSecret = Annotated[str, AfterValidator(_otp_secret)]
UtcTimestamp = Annotated[str, AfterValidator(_utc_timestamp)]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Subcategory(_Entry):
    idx: Id
    name: str


class Category(_Entry):
    idx: Id
    name: str
    subcategories: list[Subcategory]


class User(_Entry):
    au_id: Id
    nickname: str
    gender: Gender
    age: str
    pic: str


class Willsoner(_Entry):
    idx: Id
    au_id: Id
    status: str
    avg_rating: Rating | None
    experience: str
    introduction: str
    subcategory_idx: list[Id]
    keywords: list[str]
    image: str


class Ticket(_Entry):
    idx: Id
    minutes: Annotated[int, Field(gt=0, lt=_ID_LIMIT)]
    price: Annotated[int, Field(ge=0, lt=_ID_LIMIT)]


class Concern(_Entry):
    idx: Id
    au_id: Id
    content: str
    time: str
    wil_gender: ConcernGender
    subcategory_idx: Id
    personalities: list[str]
    direction: str


class Session(_Entry):
    asker_au_id: Id
    willsoner_idx: Id
    concern_idx: Id
    completed_at: UtcTimestamp


class AppPoint(_Entry):
    point_id: Id
    name: str


class App(_Entry):
    app_id: Id
    database_id: Id
    name: str
    points: list[AppPoint]


class Coin(_Entry):
    coin_id: Id
    symbol: str
    decimals: Annotated[int, Field(ge=0, le=18)]


class SwapRate(_Entry):
    app_id: Id
    point_id: Id
    coin_id: Id
    rate: Rate


class AccountPoint(_Entry):
    app_id: Id
    point_id: Id
    mu_id: Id
    quantity: PointQuantity


class AccountWallet(_Entry):
    coin_id: Id
    walletaddress: str
    quantity: CoinQuantity


class Account(_Entry):
    au_id: Id
    otp_secret: OtpSecret | None = None
    points: list[AccountPoint] = []
    wallets: list[AccountWallet] = []


class Fixture(_Entry):
    categories: list[Category] = []
    users: list[User] = []
    willsoners: list[Willsoner] = []
    tickets: list[Ticket] = []
    concerns: list[Concern] = []
    sessions: list[Session] = []
    apps: list[App] = []
    coins: list[Coin] = []
    swap_rates: list[SwapRate] = []
    accounts: list[Account] = []

    @model_validator(mode="after")
    def _identities_are_unique(self) -> Fixture:
        """Each id appears once per section (subcategories: once across categories)."""
        for entries in self._identities():
            first: dict[Hashable, str] = {}
            for path, identity in entries:
                if identity in first:
                    raise PydanticCustomError(
                        "duplicate", "{path}: duplicate of {first}", {"path": path, "first": first[identity]}
                    )
                first[identity] = path
        return self

    def _identities(self) -> Iterator[Iterable[tuple[str, Hashable]]]:
        yield ((f"categories[{i}].idx", c.idx) for i, c in enumerate(self.categories))
        yield (
            (f"categories[{i}].subcategories[{j}].idx", s.idx)
            for i, c in enumerate(self.categories)
            for j, s in enumerate(c.subcategories)
        )
        yield ((f"users[{i}].au_id", u.au_id) for i, u in enumerate(self.users))
        yield ((f"willsoners[{i}].idx", w.idx) for i, w in enumerate(self.willsoners))
        for i, willsoner in enumerate(self.willsoners):
            yield ((f"willsoners[{i}].subcategory_idx[{j}]", s) for j, s in enumerate(willsoner.subcategory_idx))
        yield ((f"tickets[{i}].idx", t.idx) for i, t in enumerate(self.tickets))
        yield ((f"concerns[{i}].idx", c.idx) for i, c in enumerate(self.concerns))
        yield ((f"apps[{i}].app_id", a.app_id) for i, a in enumerate(self.apps))
        for i, app in enumerate(self.apps):
            yield ((f"apps[{i}].points[{j}].point_id", p.point_id) for j, p in enumerate(app.points))
        yield ((f"coins[{i}].coin_id", c.coin_id) for i, c in enumerate(self.coins))
        yield ((f"swap_rates[{i}]", (r.app_id, r.point_id, r.coin_id)) for i, r in enumerate(self.swap_rates))
        yield ((f"accounts[{i}].au_id", a.au_id) for i, a in enumerate(self.accounts))
        for i, account in enumerate(self.accounts):
            yield ((f"accounts[{i}].points[{j}]", (p.app_id, p.point_id)) for j, p in enumerate(account.points))
            yield ((f"accounts[{i}].wallets[{j}].coin_id", w.coin_id) for j, w in enumerate(account.wallets))


# --- Parsing --------------------------------------------------------------------------------


class _JsonObject(dict[str, Any]):
    """A JSON object that remembers the first key it saw twice (json keeps only the last value)."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        counted: set[str] = set()
        self.repeated: str | None = None
        for name, _ in pairs:
            if name in counted:
                self.repeated = name
                break
            counted.add(name)


def _refuse_constant(name: str) -> Any:
    raise FixtureError(f"{name} is not a JSON number; the fixture must not contain NaN or Infinity")


def _format_path(location: Iterable[str | int]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _find_repeated_key(value: Any, location: tuple[str | int, ...] = ()) -> str | None:
    if isinstance(value, _JsonObject):
        if value.repeated is not None:
            return f"{_format_path((*location, value.repeated))}: key appears more than once"
        children: Iterable[tuple[str | int, Any]] = value.items()
    elif isinstance(value, list):
        children = enumerate(value)
    else:
        return None
    for name, child in children:
        found = _find_repeated_key(child, (*location, name))
        if found:
            return found
    return None


def _describe(problem: ErrorDetails, prefix: str = "") -> str:
    if problem["type"] == "duplicate":
        return problem["msg"]  # names both paths itself
    # Our own validators' messages read better without pydantic's "Value error, " prefix.
    message = str(problem["ctx"]["error"]) if problem["type"] == "value_error" else problem["msg"]
    location = (prefix, *problem["loc"]) if prefix else problem["loc"]
    return f"{_format_path(location)}: {message}"


def parse_fixture_text(text: str) -> Fixture:
    """Parse and validate a fixture file's text; raises FixtureError naming the first bad path."""
    try:
        document = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant, object_pairs_hook=_JsonObject)
    except json.JSONDecodeError as error:
        raise FixtureError(f"line {error.lineno} column {error.colno}: {error.msg}") from None
    repeated = _find_repeated_key(document)
    if repeated:
        raise FixtureError(repeated)
    try:
        fixture = Fixture.model_validate(document)
    except ValidationError as error:
        raise FixtureError("; ".join(_describe(problem) for problem in error.errors())) from None
    return fixture


# --- DynamoDB access ------------------------------------------------------------------------

ItemKey = tuple[str, str]
Item = dict[str, Any]

_BATCH_GET_LIMIT = 100
_STORED_WILLSON_ITEMS = (UserItem, CategoryItem, WillsonerProfileItem, ConcernItem)


def _item_key(item: Item) -> ItemKey:
    return (item[keys.PK], item[keys.SK])


def _scan(client: Any, table: str, entities: Iterable[str]) -> dict[ItemKey, Item]:
    """Every item of these entities (an ops tool's read: no request path scans)."""
    values = {f":entity{n}": codec.to_attribute(entity) for n, entity in enumerate(entities)}
    pages = client.get_paginator("scan").paginate(
        TableName=table,
        ConsistentRead=True,
        FilterExpression=f"#entity IN ({', '.join(values)})",
        ExpressionAttributeNames={"#entity": keys.ENTITY},
        ExpressionAttributeValues=values,
    )
    found: dict[ItemKey, Item] = {}
    for page in pages:
        for raw in page.get("Items", []):
            item = codec.from_item(raw)
            if item is not None:
                found[_item_key(item)] = item
    return found


def _get_all(client: Any, table: str, wanted: Iterable[dict[str, str]]) -> dict[ItemKey, Item]:
    unique = list({(key[keys.PK], key[keys.SK]): key for key in wanted}.values())
    found: dict[ItemKey, Item] = {}
    for start in range(0, len(unique), _BATCH_GET_LIMIT):
        chunk = unique[start : start + _BATCH_GET_LIMIT]
        for (_, pk, sk), item in batch_get(client, {table: chunk}, consistent=True).items():
            found[(pk, sk)] = item
    return found


@dataclass
class _Changes:
    """What one table needs so that it holds the fixture: items to put and keys to delete."""

    stored: dict[ItemKey, Item]
    puts: list[Item] = field(default_factory=list)
    deletes: list[ItemKey] = field(default_factory=list)
    wanted: set[ItemKey] = field(default_factory=set)

    def upsert(self, item: Item) -> None:
        # Attributes the loader does not own (written by the services) survive the upsert.
        self.wanted.add(_item_key(item))
        previous = self.stored.get(_item_key(item))
        merged = {**(previous or {}), **item}
        if merged != previous:
            self.puts.append(merged)


ADJUSTMENT_REASON = "load-fixture"


def load_fixture(
    client: Any,
    fixture: Fixture,
    willson_table: str,
    ledger_table: str,
    otp_secret_table: str,
    source: str = "fixture",
) -> dict[str, int]:
    """Upsert the fixture; every reference is checked (fixture ∪ stored) before anything is written.

    An existing account keeps its swap counters (version, log sequence, consumed OTP steps):
    they are only ever created, never overwritten, so loading over a live account rolls nothing back.
    Balances go through the adjustment path (payments.repositories.adjustments): a new account gets an
    opening entry per balance, an existing balance whose quantity differs an adjustment whose id is derived
    from the fixture's content (so loading the same fixture again changes nothing), an equal one no entry.
    `source` names the fixture in the entries' actor. Returns how many entries each section of the fixture had.
    """
    willson = _plan_willson(client, fixture, willson_table)
    ledger = _plan_ledger(client, fixture, ledger_table)
    stored_accounts = _get_all(client, ledger_table, [AccountItem.key(account.au_id) for account in fixture.accounts])
    stored_secrets = _get_all(
        client, otp_secret_table, [OtpSecretItem.key(a.au_id) for a in fixture.accounts if a.otp_secret is not None]
    )
    # New listing entries go in before stale ones go, so a listing is never briefly empty.
    for table, changes in ((willson_table, willson), (ledger_table, ledger)):
        with BatchWriter(table, client) as writer:
            for item in changes.puts:
                writer.put_item(Item=codec.to_item(item))
    with BatchWriter(willson_table, client) as writer:
        for pk, sk in willson.deletes:
            writer.delete_item(Key=codec.to_item({keys.PK: pk, keys.SK: sk}))
    accounts = LedgerRepository(client, ledger_table, otp_secret_table)
    adjustments = AdjustmentRepository(client, ledger_table)
    content = _content_digest(fixture)
    for account in fixture.accounts:
        settings = _balance_settings(account, content)
        if settings:
            # before the account item is created: the transaction that creates it writes the opening entries
            for result in adjustments.set_balances(
                account.au_id, settings, reason=ADJUSTMENT_REASON, actor=f"load-fixture {source}"
            ):
                if result.outcome is Outcome.NO_BALANCE:  # cannot happen: every setting can create its balance
                    raise FixtureError(f"accounts: au_id {account.au_id}: {result.setting.target} was not written")
        secret_key = _item_key(OtpSecretItem.key(account.au_id))
        if account.otp_secret is not None and OtpSecretItem.read(stored_secrets.get(secret_key)) != account.otp_secret:
            accounts.enroll_otp(account.au_id, account.otp_secret)
        elif not settings and _item_key(AccountItem.key(account.au_id)) not in stored_accounts:
            accounts.ensure_account(account.au_id)
    return {section: len(getattr(fixture, section)) for section in Fixture.model_fields}


def _content_digest(fixture: Fixture) -> str:
    """sha256 of the fixture's canonical text (parsed values, model order; OTP secrets left out)."""
    canonical = fixture.model_dump_json(exclude={"accounts": {"__all__": {"otp_secret"}}})
    return hashlib.sha256(canonical.encode()).hexdigest()


def _balance_settings(account: Account, content: str) -> list[BalanceSetting]:
    """The account's balances as adjustments; each id is the fixture's content and the balance's key."""

    def adjustment_id(key: dict[str, str]) -> str:
        return "fixture-" + hashlib.sha256(f"{content}\n{key[keys.PK]}\n{key[keys.SK]}".encode()).hexdigest()

    settings = [
        BalanceSetting(
            adjustment_id(PointBalanceItem.key(account.au_id, point.app_id, point.point_id)),
            PointTarget(point.app_id, point.point_id, point.mu_id),
            point.quantity,
        )
        for point in account.points
    ]
    settings += [
        BalanceSetting(
            adjustment_id(WalletItem.key(account.au_id, wallet.coin_id)),
            WalletTarget(wallet.coin_id, wallet.walletaddress),
            wallet.quantity,
        )
        for wallet in account.wallets
    ]
    return settings


# --- Willson table --------------------------------------------------------------------------

_T = TypeVar("_T", bound=_Entry)
# An entry and where it came from ("willsoners[2]" or "willsoner 12 (stored)"), for messages.
_Placed = tuple[_T, str]


def _merge(
    stored: dict[ItemKey, Item],
    stored_as: type[FieldsItem],
    model: type[_T],
    id_field: str,
    section: str,
    given: list[_T],
) -> dict[int, _Placed[_T]]:
    """The stored entries of one kind with the fixture's laid over them, by id."""
    merged: dict[int, _Placed[_T]] = {}
    for item in stored.values():
        if stored_as.holds(item):
            label = f"{stored_as.ENTITY} {item[id_field]} (stored)"
            try:
                entry = model.model_validate(stored_as.fields(item), strict=False)
            except ValidationError as error:
                raise FixtureError(_describe(error.errors()[0], label)) from None
            merged[getattr(entry, id_field)] = (entry, label)
    for index, entry in enumerate(given):
        # Fixture entries go last, so a conflict with a stored entry is reported at the fixture's path.
        merged.pop(getattr(entry, id_field), None)
        merged[getattr(entry, id_field)] = (entry, f"{section}[{index}]")
    return merged


@dataclass(frozen=True)
class _Placement:
    subcategory: Subcategory
    category: Category


def _subcategory_index(categories: dict[int, _Placed[Category]]) -> dict[int, _Placement]:
    index: dict[int, _Placement] = {}
    for category, where in categories.values():
        for position, subcategory in enumerate(category.subcategories):
            if subcategory.idx in index:
                raise FixtureError(
                    f"{where}.subcategories[{position}].idx: subcategory {subcategory.idx} "
                    f"already belongs to category {index[subcategory.idx].category.idx}"
                )
            index[subcategory.idx] = _Placement(subcategory, category)
    return index


def _require(found: bool, path: str, what: str) -> None:
    if not found:
        raise FixtureError(f"{path}: {what} does not exist")


def _card(willsoner: Willsoner, user: User, subcategories: dict[int, _Placement]) -> WillsonerCard:
    return WillsonerCard(
        idx=willsoner.idx,
        au_id=willsoner.au_id,
        status=willsoner.status,
        avg_rating=willsoner.avg_rating,
        experience=willsoner.experience,
        introduction=willsoner.introduction,
        gender=user.gender,
        age=user.age,
        pic=user.pic,
        nickname=user.nickname,
        subcategories=tuple(subcategories[idx].subcategory.name for idx in willsoner.subcategory_idx),
        keywords=tuple(willsoner.keywords),
        image=willsoner.image,
    )


def _willsoner_items(willsoner: Willsoner, user: User, subcategories: dict[int, _Placement]) -> Iterator[Item]:
    card = _card(willsoner, user, subcategories)
    listing = ListingEntryItem.write_all(card, willsoner.subcategory_idx)
    yield from listing
    yield CardItem.write(card)
    yield WillsonerProfileItem.with_listing(willsoner.model_dump(), listing)


def _concern_item(concern: Concern, asker: User, placement: _Placement) -> Item:
    return ConcernItem.write(
        ConcernValue(
            idx=concern.idx,
            au_id=concern.au_id,
            content=concern.content,
            time=concern.time,
            wil_gender=concern.wil_gender,
            subcategory_idx=concern.subcategory_idx,
            subcategory_name=placement.subcategory.name,
            category_idx=placement.category.idx,
            category_name=placement.category.name,
            asker_pic=asker.pic,
            asker_nickname=asker.nickname,
            personalities=tuple(concern.personalities),
            direction=concern.direction,
        )
    )


def _latest(first: str | None, second: str) -> str:
    if first is None:
        return second
    return max(first, second, key=lambda moment: datetime.fromisoformat(moment.replace("Z", "+00:00")))


def _session_items(fixture: Fixture, stored: dict[ItemKey, Item]) -> Iterator[Item]:
    by_asker: dict[int, dict[int, str]] = {}
    for session in fixture.sessions:
        if session.asker_au_id not in by_asker:
            previous = stored.get(_item_key(AskerSessionsItem.key(session.asker_au_id)))
            by_asker[session.asker_au_id] = AskerSessionsItem.read(previous)
        willsoners = by_asker[session.asker_au_id]
        willsoners[session.willsoner_idx] = _latest(willsoners.get(session.willsoner_idx), session.completed_at)
    for asker_au_id, willsoners in by_asker.items():
        yield AskerSessionsItem.write(asker_au_id, willsoners)


def _plan_willson(client: Any, fixture: Fixture, table: str) -> _Changes:
    # Cards, listings and concerns copy names from users and categories, so every one of them is
    # recomputed from the stored base items with the fixture laid over them.
    entities = [kind.ENTITY for kind in _STORED_WILLSON_ITEMS] + [CardItem.ENTITY, ListingEntryItem.ENTITY]
    stored = _scan(client, table, entities)
    singles = [TicketCatalogItem.key()] if fixture.tickets else []
    stored |= _get_all(client, table, singles + [AskerSessionsItem.key(s.asker_au_id) for s in fixture.sessions])

    users = _merge(stored, UserItem, User, "au_id", "users", fixture.users)
    categories = _merge(stored, CategoryItem, Category, "idx", "categories", fixture.categories)
    willsoners = _merge(stored, WillsonerProfileItem, Willsoner, "idx", "willsoners", fixture.willsoners)
    concerns = _merge(stored, ConcernItem, Concern, "idx", "concerns", fixture.concerns)
    subcategories = _subcategory_index(categories)

    for willsoner, where in willsoners.values():
        _require(willsoner.au_id in users, f"{where}.au_id", f"user {willsoner.au_id}")
        for position, subcategory_idx in enumerate(willsoner.subcategory_idx):
            _require(
                subcategory_idx in subcategories,
                f"{where}.subcategory_idx[{position}]",
                f"subcategory {subcategory_idx}",
            )
    for concern, where in concerns.values():
        _require(concern.au_id in users, f"{where}.au_id", f"user {concern.au_id}")
        subcategory_idx = concern.subcategory_idx
        _require(subcategory_idx in subcategories, f"{where}.subcategory_idx", f"subcategory {subcategory_idx}")
    for index, session in enumerate(fixture.sessions):
        _require(session.asker_au_id in users, f"sessions[{index}].asker_au_id", f"user {session.asker_au_id}")
        willsoner_idx = session.willsoner_idx
        _require(willsoner_idx in willsoners, f"sessions[{index}].willsoner_idx", f"willsoner {willsoner_idx}")

    changes = _Changes(stored)
    for user, _ in users.values():
        changes.upsert(UserItem.to_item(UserItem.key(user.au_id), user.model_dump()))
    for category, _ in categories.values():
        changes.upsert(CategoryItem.to_item(CategoryItem.key(category.idx), category.model_dump()))
    for willsoner, _ in willsoners.values():
        for item in _willsoner_items(willsoner, users[willsoner.au_id][0], subcategories):
            changes.upsert(item)
    for concern, _ in concerns.values():
        changes.upsert(_concern_item(concern, users[concern.au_id][0], subcategories[concern.subcategory_idx]))
    if fixture.tickets:
        tickets = [TicketValue(idx=t.idx, minutes=t.minutes, price=t.price) for t in fixture.tickets]
        changes.upsert(TicketCatalogItem.write(tickets, stored.get(_item_key(TicketCatalogItem.key()))))
    for item in _session_items(fixture, stored):
        changes.upsert(item)

    listed: set[ItemKey] = set()
    for item in stored.values():
        if ListingEntryItem.holds(item):
            listed.add(_item_key(item))
        elif WillsonerProfileItem.holds(item):
            listed.update(WillsonerProfileItem.listing_keys(item))
    changes.deletes = sorted(listed - changes.wanted)
    return changes


# --- Ledger table ---------------------------------------------------------------------------


def _plan_ledger(client: Any, fixture: Fixture, table: str) -> _Changes:
    app_ids = {a.app_id for a in fixture.apps} | {r.app_id for r in fixture.swap_rates}
    app_ids |= {p.app_id for account in fixture.accounts for p in account.points}
    coin_ids = {c.coin_id for c in fixture.coins} | {r.coin_id for r in fixture.swap_rates}
    coin_ids |= {w.coin_id for account in fixture.accounts for w in account.wallets}
    wanted = [AppItem.key(app_id) for app_id in sorted(app_ids)]
    wanted += [CoinItem.key(coin_id) for coin_id in sorted(coin_ids)]
    wanted += [RateItem.key(r.app_id, r.point_id, r.coin_id) for r in fixture.swap_rates]
    stored = _get_all(client, table, wanted)

    app_points: dict[int, dict[int, str]] = {}
    for app_id in app_ids:
        app_item = stored.get(_item_key(AppItem.key(app_id)))
        if app_item is not None:
            app_points[app_id] = AppItem.point_names(app_item)
    for app in fixture.apps:
        app_points[app.app_id] = {**app_points.get(app.app_id, {}), **{p.point_id: p.name for p in app.points}}
    coin_decimals: dict[int, int] = {}
    for coin_id in coin_ids:
        stored_coin = CoinItem.read(stored.get(_item_key(CoinItem.key(coin_id))))
        if stored_coin is not None:
            coin_decimals[coin_id] = stored_coin.decimals
    coin_decimals |= {coin.coin_id: coin.decimals for coin in fixture.coins}

    def require_point(path: str, app_id: int, point_id: int) -> None:
        _require(app_id in app_points, f"{path}.app_id", f"app {app_id}")
        _require(point_id in app_points[app_id], f"{path}.point_id", f"point {point_id} of app {app_id}")

    for index, rate in enumerate(fixture.swap_rates):
        require_point(f"swap_rates[{index}]", rate.app_id, rate.point_id)
        _require(rate.coin_id in coin_decimals, f"swap_rates[{index}].coin_id", f"coin {rate.coin_id}")
    for index, account in enumerate(fixture.accounts):
        for position, point in enumerate(account.points):
            require_point(f"accounts[{index}].points[{position}]", point.app_id, point.point_id)
        for position, wallet in enumerate(account.wallets):
            path = f"accounts[{index}].wallets[{position}]"
            _require(wallet.coin_id in coin_decimals, f"{path}.coin_id", f"coin {wallet.coin_id}")
            decimals = coin_decimals[wallet.coin_id]
            # a finite decimal (the model refuses others): its exponent is an int
            exponent = int(wallet.quantity.normalize().as_tuple().exponent)
            if -exponent > decimals:
                raise FixtureError(
                    f"{path}.quantity: {wallet.quantity} has more than {decimals} fractional digits "
                    f"(coin {wallet.coin_id})"
                )

    changes = _Changes(stored)
    for app in fixture.apps:
        changes.upsert(AppItem.write(app.app_id, app.database_id, app.name, app_points[app.app_id]))
    for coin in fixture.coins:
        changes.upsert(CoinItem.write(coin.coin_id, coin.symbol, coin.decimals))
    for rate in fixture.swap_rates:
        changes.upsert(RateItem.write(rate.app_id, rate.point_id, rate.coin_id, rate.rate))
    # balances are not upserted: they go through the adjustment path (load_fixture), each with its entry
    return changes

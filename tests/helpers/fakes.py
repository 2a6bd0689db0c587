"""In-memory repositories for the services' unit tests: typed values only, DynamoDB's conditions kept.

`InMemoryWillson` is a `payments.services.payment_progress.WillsonReader`, `InMemoryLedger` a
`payments.services.swap.Ledger`; both count the calls they answer, as DynamoDB requests would be.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from payments.models.ledger import (
    Account,
    Coin,
    OtpGuard,
    PointAccount,
    RequestRecord,
    SwapCommit,
    SwapLog,
    SwappableApp,
    SwapState,
    Wallet,
)
from payments.models.willson import Concern, ListingPage, PaymentContext, Ticket, WillsonerCard
from payments.repositories.ledger import CommitResult, GuardWriteResult, SwapOutcomeUnknown
from payments.repositories.willson_items import COMPLETE


@dataclass
class InMemoryWillson:
    """Concerns, tickets, sessions, honeypots and cards; listings derived from the cards as the loader does."""

    concerns: dict[int, Concern] = field(default_factory=dict)
    tickets: tuple[Ticket, ...] = ()
    sessions: dict[int, dict[int, str]] = field(default_factory=dict)
    honeypots: dict[int, int] = field(default_factory=dict)
    cards: dict[int, WillsonerCard] = field(default_factory=dict)
    subcategories: dict[int, tuple[int, ...]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def load_payment_context(
        self, au_id: int, concern_idx: int, app_id: int, point_id: int, may_ask_again: Callable[[], bool] = bool
    ) -> PaymentContext:
        self.calls.append("BatchGetItem")
        concern = self.concerns.get(concern_idx)
        return PaymentContext(
            concern=concern,
            tickets=self.tickets,
            past_willsoners=dict(self.sessions.get(au_id, {})),
            honeypot=self.honeypots.get(au_id, 0),
        )

    def list_candidates(
        self, subcategory_idx: int, gender: str, wanted: int, before_call: Callable[[], None] = lambda: None
    ) -> ListingPage:
        before_call()
        self.calls.append("Query")
        listed = [
            card
            for card in self.cards.values()
            if card.status == COMPLETE
            and subcategory_idx in self.subcategories.get(card.idx, ())
            and gender in ("ALL", card.gender)
        ]
        unrated = [card for card in listed if card.avg_rating is None]
        rated = sorted(
            (card for card in listed if card.avg_rating is not None), key=lambda c: (-(c.avg_rating or 0), c.idx)
        )
        return ListingPage(cards=tuple([*rated, *sorted(unrated, key=lambda c: c.idx)][:wanted]))

    def get_cards(
        self, willsoner_idxs: list[int], may_ask_again: Callable[[], bool] = bool
    ) -> dict[int, WillsonerCard]:
        self.calls.append("BatchGetItem")
        return {idx: self.cards[idx] for idx in willsoner_idxs if idx in self.cards}


@dataclass
class InMemoryLedger:
    """One account's world: balances, catalogue, OTP secret and guard, logs and request records.

    `lose_next_answers` makes that many commits raise SwapOutcomeUnknown after (`True`) or
    before (`False`) applying, as a lost answer or a failed send does.
    """

    accounts: dict[int, Account] = field(default_factory=dict)
    points: dict[tuple[int, int, int], PointAccount] = field(default_factory=dict)
    wallets: dict[tuple[int, int], Wallet] = field(default_factory=dict)
    secrets: dict[int, str] = field(default_factory=dict)
    guards: dict[int, OtpGuard] = field(default_factory=dict)
    apps: dict[int, SwappableApp] = field(default_factory=dict)
    coins: dict[int, Coin] = field(default_factory=dict)
    rates: dict[tuple[int, int, int], Decimal] = field(default_factory=dict)
    logs: dict[tuple[int, int], SwapLog] = field(default_factory=dict)
    records: dict[tuple[int, str], RequestRecord] = field(default_factory=dict)
    lose_next_answers: list[bool] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def read_swap_state(
        self,
        au_id: int,
        app_id: int | None,
        point_id: int | None,
        coin_id: int | None,
        fingerprint: str,
        may_ask_again: Callable[[], bool] = bool,
    ) -> SwapState:
        self.calls.append("BatchGetItem")
        return SwapState(
            account=self.accounts.get(au_id),
            point=self.points.get((au_id, app_id or 0, point_id or 0)),
            wallet=self.wallets.get((au_id, coin_id or 0)),
            otp_secret=self.secrets.get(au_id),
            otp_guard=self.guards.get(au_id, OtpGuard()),
            app=self.apps.get(app_id or 0),
            coin=self.coins.get(coin_id or 0),
            rate=self.rates.get((app_id or 0, point_id or 0, coin_id or 0)),
            request=self.records.get((au_id, fingerprint)),
        )

    def commit_swap(self, commit: SwapCommit) -> CommitResult:
        self.calls.append("TransactWriteItems")
        lose = self.lose_next_answers.pop(0) if self.lose_next_answers else None
        if lose is False:
            raise SwapOutcomeUnknown("connection reset before the transaction was sent")
        result = self._apply(commit)
        if lose:
            raise SwapOutcomeUnknown("read timeout: the answer was lost")
        return result

    def _apply(self, commit: SwapCommit) -> CommitResult:
        account = self.accounts.get(commit.au_id)
        point_key = (commit.au_id, commit.app_id, commit.point_id)
        wallet_key = (commit.au_id, commit.coin_id)
        point, wallet = self.points[point_key], self.wallets[wallet_key]
        guard = self.guards.get(commit.au_id, OtpGuard())
        record = self.records.get((commit.au_id, commit.record.fingerprint))
        if (
            (account.version if account else 0) != commit.account_version
            or (account is not None) != commit.account_exists
            or point.quantity != commit.previous_point
            or wallet.quantity != commit.previous_coin
            or (commit.au_id, commit.log_id) in self.logs
            or (record is not None and record.expires_at_ms > commit.record.created_at_ms)
            or guard.is_locked(commit.record.created_at_ms)
        ):
            return CommitResult.STALE
        self.accounts[commit.au_id] = Account(
            commit.au_id, commit.account_version + 1, commit.log_id, dict(commit.consumed_otp_steps)
        )
        self.points[point_key] = point._replace(quantity=commit.new_point, last_log_id=commit.log_id)
        self.wallets[wallet_key] = wallet._replace(quantity=commit.new_coin, last_log_id=commit.log_id)
        self.logs[(commit.au_id, commit.log_id)] = SwapLog(
            commit.log_id,
            commit.record.fingerprint,
            commit.otp_step,
            commit.record.created_at_ms,
            commit.record.result,
            commit.rate,
        )
        self.records[(commit.au_id, commit.record.fingerprint)] = commit.record
        return CommitResult.COMMITTED

    def get_logged_swap(self, au_id: int, log_id: int) -> SwapLog | None:
        self.calls.append("GetItem")
        return self.logs.get((au_id, log_id))

    def save_otp_guard(self, au_id: int, expected_version: int, guard: OtpGuard, expires_at: int) -> GuardWriteResult:
        self.calls.append("PutItem")
        if self.guards.get(au_id, OtpGuard()).version != expected_version:
            return GuardWriteResult.STALE
        self.guards[au_id] = guard
        return GuardWriteResult.WRITTEN

    def get_otp_guard(self, au_id: int) -> OtpGuard:
        self.calls.append("GetItem")
        return self.guards.get(au_id, OtpGuard())

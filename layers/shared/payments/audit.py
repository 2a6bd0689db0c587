"""The continuous audit of the ledger: stream records in, findings (breaks) out.

Run by the audit function on the ledger table's DynamoDB stream (functions/audit) and by `payments audit --follow`
on a local stream, the same checks:

* **Every balance write is explained.** A write of a `POINT#…` / `WALLET#…` item carries the stamp of the entry
  that made it: `last_log_id` (a swap log) or `last_adjustment_seq` (an adjustment). A stamp that moved names the
  entry, which must exist (in the same batch, or read consistently: its transaction has committed; a late one is
  waited for, within a bound), must move this balance, from the quantity before the write (the old image) to the
  quantity after it (the new image). The entry the old image's stamp names (the balance's previous entry) must
  have left the quantity this one found. A quantity that changed while neither stamp moved is a break ("balance
  changed without an entry"), as is a stamp that went back, a removed balance, a removed or modified entry.
  A balance inserted with no stamp is an opening balance (the loader's new account): nothing to explain.
* **Every new entry follows the account's previous one.** Swap log n > 1 needs log n - 1; adjustment n > 1 needs
  adjustment n - 1; a swap log's own arithmetic holds (previous + adjust = new, for the point and the coin).

Records of one transaction may arrive apart, in other batches, interleaved with other accounts' records: no check
depends on arrival order. Each balance write carries both images and the stamps, and names its entry by the
entries' own sequence; a batch's entries are indexed before any record is checked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from payments.repositories import codec, keys
from payments.repositories.ledger_items import AdjustmentItem, PointBalanceItem, SwapLogItem

BALANCE_PREFIXES = ("POINT#", "WALLET#")
SWAP_LOG = "swap log"
ADJUSTMENT = "adjustment"
LAST_ADJUSTMENT_SEQ = PointBalanceItem.LAST_ADJUSTMENT_SEQ
_MALFORMED = (KeyError, TypeError, ValueError, ArithmeticError, AttributeError, IndexError)


class UnreadableRecord(ValueError):
    """A stream record the auditor cannot read (a poison record): reported as this record's failure."""


class EntryReader(Protocol):
    """Consistent reads of one entry by key (payments.repositories.audit_reader.LedgerEntryReader)."""

    def swap_log(self, au_id: int, log_id: int) -> Mapping[str, Any] | None: ...

    def adjustment(self, au_id: int, seq: int) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True)
class StreamRecord:
    """One stream record: the item's key, the event, both images as Python values."""

    event_name: str  # INSERT, MODIFY, REMOVE
    pk: str
    sk: str
    sequence_number: str
    new_image: Mapping[str, Any] | None
    old_image: Mapping[str, Any] | None

    @classmethod
    def parse(cls, record: Mapping[str, Any]) -> StreamRecord:
        """A record as Lambda delivers it or as GetRecords returns it (attribute values in DynamoDB JSON)."""
        try:
            body = record["dynamodb"]
            item_keys = codec.from_item(dict(body["Keys"])) or {}
            event_name = str(record["eventName"])
            if event_name not in ("INSERT", "MODIFY", "REMOVE"):
                raise ValueError(f"event {event_name!r}")
            return cls(
                event_name=event_name,
                pk=str(item_keys[keys.PK]),
                sk=str(item_keys[keys.SK]),
                sequence_number=str(body.get("SequenceNumber", "")),
                new_image=codec.from_item(body["NewImage"]) if "NewImage" in body else None,
                old_image=codec.from_item(body["OldImage"]) if "OldImage" in body else None,
            )
        except _MALFORMED as error:
            raise UnreadableRecord(f"unreadable stream record: {error!r}") from error

    @property
    def au_id(self) -> int | None:
        prefix, _, rest = self.pk.partition("#")
        return int(rest) if prefix == "ACCOUNT" and rest.isdigit() else None


@dataclass(frozen=True)
class Finding:
    """A break: the account, the item (its sort key), why, and the stream record that showed it."""

    au_id: int | None
    item: str
    reason: str
    sequence_number: str = ""

    def line(self) -> str:
        return f"au_id {self.au_id} {self.item}: {self.reason}"


@dataclass(frozen=True)
class Entry:
    """A swap log or an adjustment: which balances it moved, from what quantity to what."""

    au_id: int
    kind: str  # SWAP_LOG or ADJUSTMENT
    seq: int
    # balance (its sort key) -> (previous quantity, new quantity)
    moves: Mapping[str, tuple[Decimal, Decimal]]
    # an adjustment: the account's last swap log when it was written (0: none); a swap log: its own id
    after_log_id: int
    # what is wrong with the entry on its own (a swap log whose previous + adjust != new)
    defects: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.kind} {self.seq}"


def is_entry(sk: str) -> bool:
    return sk.startswith((keys.SWAP_LOG_PREFIX, keys.ADJUSTMENT_PREFIX))


def is_balance(sk: str) -> bool:
    return sk.startswith(BALANCE_PREFIXES)


def read_entry(item: Mapping[str, Any]) -> Entry | None:
    """The entry an item holds (None for any other item). Raises on a malformed entry."""
    if SwapLogItem.holds(item):
        log = SwapLogItem.read(item)
        result = log.result
        defects = tuple(
            f"swap log {log.log_id} {what}: {previous} + {adjust} != {new}"
            for what, previous, adjust, new in (
                ("point", result.previous_point, result.adjust_point, result.new_point),
                ("coin", result.previous_coin, result.adjust_coin, result.new_coin),
            )
            if Decimal(previous) + Decimal(adjust) != Decimal(new)
        )
        return Entry(
            au_id=result.au_id,
            kind=SWAP_LOG,
            seq=log.log_id,
            moves={
                PointBalanceItem.key(result.au_id, result.app_id, result.point_id)[keys.SK]: (
                    Decimal(result.previous_point),
                    Decimal(result.new_point),
                ),
                f"WALLET#{result.coin_id}": (Decimal(result.previous_coin), Decimal(result.new_coin)),
            },
            after_log_id=log.log_id,
            defects=defects,
        )
    if AdjustmentItem.holds(item):
        adjustment = AdjustmentItem.read(item)
        return Entry(
            au_id=adjustment.au_id,
            kind=ADJUSTMENT,
            seq=adjustment.adjustment_seq,
            moves={
                adjustment.balance: (Decimal(adjustment.previous_quantity), Decimal(adjustment.new_quantity)),
            },
            after_log_id=adjustment.after_log_id,
        )
    return None


def _seq_of(sk: str) -> int:
    return int(sk.rpartition("#")[2])


def audit_order(record: StreamRecord) -> tuple[str, int, int, str]:
    """The entries' own sequence: per account, entries before balance writes, by their sequence number."""
    if is_entry(record.sk):
        return (record.pk, 0, _seq_of(record.sk), record.sk)
    return (record.pk, 1, 0, record.sk)


class LedgerAuditor:
    """Checks stream records against the entries of their batch and, for the others, the ledger (`reader`).

    An entry not in the batch is read consistently; if it is missing, it is read again every `retry_interval`
    seconds until `partner_wait_seconds` after the batch began (a late partner), then judged missing. The bound is
    the batch's, not each entry's: a batch of many breaks waits once.
    """

    def __init__(
        self,
        reader: EntryReader,
        partner_wait_seconds: float = 2.0,
        retry_interval: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._wait = partner_wait_seconds
        self._interval = retry_interval
        self._sleep = sleep
        self._clock = clock

    def batch(self, records: Iterable[Mapping[str, Any]]) -> BatchAudit:
        """A batch's audit: its entries indexed first (a record that cannot be read is skipped here: checked
        alone, it fails)."""
        return BatchAudit(self, records)

    def audit(self, records: Sequence[Mapping[str, Any]]) -> tuple[list[Finding], list[tuple[Mapping[str, Any], str]]]:
        """Every record of a batch in the entries' own order: the findings, and the unreadable records."""
        batch = self.batch(records)
        findings: list[Finding] = []
        unreadable: list[tuple[Mapping[str, Any], str]] = []
        parsed: list[tuple[StreamRecord, Mapping[str, Any]]] = []
        for raw in records:
            try:
                parsed.append((StreamRecord.parse(raw), raw))
            except UnreadableRecord as error:
                unreadable.append((raw, str(error)))
        for record, raw in sorted(parsed, key=lambda pair: audit_order(pair[0])):
            try:
                findings += batch.check_record(record)
            except UnreadableRecord as error:
                unreadable.append((raw, str(error)))
        return findings, unreadable

    def deadline(self) -> float:
        """Until when a batch beginning now waits for a late entry."""
        return self._clock() + self._wait

    def read(self, au_id: int, kind: str, seq: int, deadline: float) -> Entry | None:
        """The entry from the ledger, read again until `deadline` while it is missing."""
        while True:
            item = self._reader.swap_log(au_id, seq) if kind == SWAP_LOG else self._reader.adjustment(au_id, seq)
            if item is not None:
                try:
                    return read_entry(item)
                except _MALFORMED as error:
                    raise UnreadableRecord(f"{kind} {seq} of au_id {au_id} is malformed: {error!r}") from error
            if self._clock() + self._interval > deadline:
                return None
            self._sleep(self._interval)


class BatchAudit:
    """One batch of records: its entries, and the entries read from the ledger so far."""

    def __init__(self, auditor: LedgerAuditor, records: Iterable[Mapping[str, Any]]) -> None:
        self._auditor = auditor
        self._deadline = auditor.deadline()
        self._entries: dict[tuple[int, str, int], Entry | None] = {}
        for raw in records:
            try:
                record = StreamRecord.parse(raw)
                if record.event_name == "INSERT" and is_entry(record.sk) and record.new_image is not None:
                    entry = read_entry(record.new_image)
                    if entry is not None:
                        self._entries[(entry.au_id, entry.kind, entry.seq)] = entry
            except (UnreadableRecord, *_MALFORMED):
                continue  # checked alone, it fails

    def entry(self, au_id: int, kind: str, seq: int) -> Entry | None:
        key = (au_id, kind, seq)
        if key not in self._entries:
            self._entries[key] = self._auditor.read(au_id, kind, seq, self._deadline)
        return self._entries[key]

    def check(self, raw: Mapping[str, Any]) -> list[Finding]:
        """The findings of one record; raises UnreadableRecord for a record that cannot be read."""
        return self.check_record(StreamRecord.parse(raw))

    def check_record(self, record: StreamRecord) -> list[Finding]:
        try:
            if is_balance(record.sk):
                reasons = self._balance_write(record)
            elif is_entry(record.sk):
                reasons = self._entry_write(record)
            else:
                reasons = []
        except _MALFORMED as error:
            raise UnreadableRecord(f"{record.pk} {record.sk}: {error!r}") from error
        return [Finding(record.au_id, record.sk, reason, record.sequence_number) for reason in reasons]

    # --- the checks -----------------------------------------------------------------------------

    def _balance_write(self, record: StreamRecord) -> list[str]:
        if record.event_name == "REMOVE":
            return ["balance removed (no entry removes a balance)"]
        au_id = record.au_id
        if au_id is None or record.new_image is None:
            raise ValueError("a balance write without its account or new image")
        new, old = record.new_image, record.old_image
        quantity = Decimal(str(new["quantity"]))
        before = None if old is None else Decimal(str(old["quantity"]))
        log_id, log_before = int(new.get(PointBalanceItem.LAST_LOG_ID, 0)), int((old or {}).get("last_log_id", 0))
        adjustment, adjustment_before = (
            int(new.get(LAST_ADJUSTMENT_SEQ, 0)),
            int((old or {}).get(LAST_ADJUSTMENT_SEQ, 0)),
        )
        if log_id < log_before or adjustment < adjustment_before:
            return [
                f"stamp went back (last_log_id {log_before} -> {log_id}, "
                f"last_adjustment_seq {adjustment_before} -> {adjustment})"
            ]
        if log_id > log_before and adjustment > adjustment_before:
            return [f"one write moved both stamps (swap log {log_id}, adjustment {adjustment})"]
        if log_id > log_before:
            return self._explained(record, au_id, SWAP_LOG, log_id, before, quantity, log_before, adjustment_before)
        if adjustment > adjustment_before:
            return self._explained(
                record, au_id, ADJUSTMENT, adjustment, before, quantity, log_before, adjustment_before
            )
        if before is not None and before != quantity:
            return [f"balance changed without an entry ({before} -> {quantity}, stamps unchanged)"]
        return []

    def _explained(
        self,
        record: StreamRecord,
        au_id: int,
        kind: str,
        seq: int,
        before: Decimal | None,
        quantity: Decimal,
        log_before: int,
        adjustment_before: int,
    ) -> list[str]:
        entry = self.entry(au_id, kind, seq)
        if entry is None:
            return [f"the balance's stamp names {kind} {seq}, which does not exist"]
        if record.sk not in entry.moves:
            return [f"the balance's stamp names {entry.name}, which did not move this balance"]
        previous, new = entry.moves[record.sk]
        problems = []
        if quantity != new:
            problems.append(f"balance is {quantity}, {entry.name} left {new}")
        if before is not None and before != previous:
            problems.append(f"balance was {before}, {entry.name} found {previous}")
        # the chain: the balance's previous entry (named by the old image's stamps) left what this one found
        prior = self._previous_entry(au_id, log_before, adjustment_before)
        if prior is not None and record.sk in prior.moves and prior.moves[record.sk][1] != previous:
            left = prior.moves[record.sk][1]
            problems.append(f"{entry.name} found {previous}, the previous {prior.name} left {left}")
        elif prior is None and (log_before or adjustment_before):
            problems.append(
                f"the balance's previous entry (last_log_id {log_before}, last_adjustment_seq {adjustment_before}) "
                "does not exist"
            )
        return problems

    def _previous_entry(self, au_id: int, log_id: int, adjustment_seq: int) -> Entry | None:
        """The later of the swap log and the adjustment a balance's stamps name (None: neither, or missing)."""
        log = self.entry(au_id, SWAP_LOG, log_id) if log_id else None
        adjustment = self.entry(au_id, ADJUSTMENT, adjustment_seq) if adjustment_seq else None
        if (log_id and log is None) or (adjustment_seq and adjustment is None):
            return None
        if adjustment is not None and (log is None or adjustment.after_log_id >= log.seq):
            return adjustment
        return log

    def _entry_write(self, record: StreamRecord) -> list[str]:
        if record.event_name == "REMOVE":
            return ["entry removed (entries are never removed)"]
        if record.event_name == "MODIFY":
            return ["entry modified (entries are written once)"]
        if record.new_image is None:
            raise ValueError("an inserted entry without its new image")
        entry = read_entry(record.new_image)
        if entry is None:
            raise ValueError(f"not an entry: entity {record.new_image.get(keys.ENTITY)!r}")
        problems = list(entry.defects)
        if record.au_id != entry.au_id:
            problems.append(f"{entry.name} names au_id {entry.au_id}, kept under {record.pk}")
        if _seq_of(record.sk) != entry.seq:
            problems.append(f"{entry.name} kept under {record.sk}")
        if entry.seq < 1:
            problems.append(f"{entry.name}: sequences start at 1")
        elif entry.seq > 1 and self.entry(entry.au_id, entry.kind, entry.seq - 1) is None:
            problems.append(f"{entry.name} follows no {entry.kind} {entry.seq - 1}")
        return problems

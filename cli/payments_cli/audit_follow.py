"""`payments audit --follow`: the continuous auditor's checks (payments.audit) on the ledger table's stream.

Locally the stream is DynamoDB Local's or the embedded emulator's (moto): both serve the DynamoDB Streams API at the
DynamoDB endpoint. Every shard is read (DescribeStream, GetShardIterator, GetRecords), the shards that appear later
from their start, and each round's records are checked as one batch, as the audit function checks a Lambda batch.
A break is printed on stdout as one line, `break au_id {au_id} {item}: {reason}`, as soon as it is seen; Ctrl-C
stops cleanly (exit 0).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from botocore.exceptions import ClientError

from payments.audit import LedgerAuditor
from payments.repositories.audit_reader import LedgerEntryReader

# How often the shards are listed again (a new shard appears when DynamoDB splits or rolls one over).
SHARD_REFRESH_SECONDS = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--follow", action="store_true", required=True, help="follow the ledger's stream until Ctrl-C (required)"
    )
    parser.add_argument(
        "--from-start",
        action="store_true",
        help="check every record the stream still holds (default: only what is written from now on)",
    )
    parser.add_argument(
        "--poll-seconds", type=float, default=0.2, help="pause between reads when nothing new came (default 0.2)"
    )
    parser.add_argument(
        "--partner-wait-seconds",
        type=float,
        default=2.0,
        help="how long a balance write waits for the entry its stamp names (default 2, as deployed)",
    )


class StreamFollower:
    """Reads every shard of one stream, in order within each shard; remembers where it is."""

    def __init__(self, streams: Any, stream_arn: str, from_start: bool) -> None:
        self._streams = streams
        self._arn = stream_arn
        self._iterators: dict[str, str] = {}
        self._last_sequence: dict[str, str] = {}
        self._finished: set[str] = set()
        self._started = False
        self._from_start = from_start
        self._listed_at = 0.0

    def _shards(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {"StreamArn": self._arn}
        while True:
            description = self._streams.describe_stream(**arguments)["StreamDescription"]
            shards += description.get("Shards", [])
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            arguments["ExclusiveStartShardId"] = last

    def refresh(self) -> None:
        """Start reading the shards not known yet: at the first listing from now on (or the start), later ones
        from their start (nothing written to a new shard is missed)."""
        for shard in self._shards():
            shard_id = shard["ShardId"]
            if shard_id in self._iterators or shard_id in self._finished:
                continue
            closed = "EndingSequenceNumber" in shard.get("SequenceNumberRange", {})
            if not self._started and not self._from_start:
                if closed:
                    self._finished.add(shard_id)
                    continue
                position = "LATEST"
            else:
                position = "TRIM_HORIZON"
            self._iterators[shard_id] = self._streams.get_shard_iterator(
                StreamArn=self._arn, ShardId=shard_id, ShardIteratorType=position
            )["ShardIterator"]
        self._started = True
        self._listed_at = time.monotonic()

    def read(self) -> list[dict[str, Any]]:
        """The records written since the last read, shard by shard."""
        if time.monotonic() - self._listed_at >= SHARD_REFRESH_SECONDS:
            self.refresh()
        records: list[dict[str, Any]] = []
        for shard_id, iterator in list(self._iterators.items()):
            try:
                response = self._streams.get_records(ShardIterator=iterator, Limit=1000)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ExpiredIteratorException":
                    raise
                response = self._streams.get_records(ShardIterator=self._resume(shard_id), Limit=1000)
            batch = response.get("Records", [])
            if batch:
                self._last_sequence[shard_id] = batch[-1]["dynamodb"]["SequenceNumber"]
            records += batch
            following = response.get("NextShardIterator")
            if following:
                self._iterators[shard_id] = following
            else:  # a closed shard, read to its end: its children are listed now
                del self._iterators[shard_id]
                self._finished.add(shard_id)
                self._listed_at = 0.0
        return records

    def _resume(self, shard_id: str) -> str:
        last = self._last_sequence.get(shard_id)
        arguments: dict[str, Any] = {"StreamArn": self._arn, "ShardId": shard_id}
        if last:
            arguments.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=last)
        else:
            arguments.update(ShardIteratorType="TRIM_HORIZON")
        iterator: str = self._streams.get_shard_iterator(**arguments)["ShardIterator"]
        return iterator


def follow(
    client: Any,
    streams: Any,
    table: str,
    auditor: LedgerAuditor,
    out: TextIO,
    err: TextIO,
    *,
    from_start: bool = False,
    poll_seconds: float = 0.2,
    keep_going: Callable[[], bool] = lambda: True,
) -> tuple[int, int]:
    """Check the stream's records until `keep_going` says no (or Ctrl-C); returns (records, breaks)."""
    stream_arn = client.describe_table(TableName=table)["Table"].get("LatestStreamArn")
    if not stream_arn:
        raise RuntimeError(f"the table {table} has no stream: `payments create-tables` gives it one")
    follower = StreamFollower(streams, stream_arn, from_start)
    follower.refresh()
    print(f"following {table}'s stream {stream_arn} (Ctrl-C to stop)", file=err, flush=True)
    checked = breaks = 0
    try:
        while keep_going():
            records = follower.read()
            if not records:
                time.sleep(poll_seconds)
                continue
            findings, unreadable = auditor.audit(records)
            checked += len(records)
            for finding in findings:
                print(f"break {finding.line()}", file=out, flush=True)
            breaks += len(findings)
            for record, why in unreadable:
                sequence = record.get("dynamodb", {}).get("SequenceNumber", "?")
                print(f"unreadable record {sequence}: {why}", file=err, flush=True)
    except KeyboardInterrupt:
        pass
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    print(f"{stamp} stopped: {checked} records checked, {breaks} breaks", file=err, flush=True)
    return checked, breaks


def run(client: Any, table: str, args: argparse.Namespace) -> int:
    """The command: the auditor on the configured ledger table's stream, at the DynamoDB endpoint in use."""
    import boto3

    # a local DynamoDB serves its streams at its own endpoint; AWS at the streams endpoint of the region
    local = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL")
    streams = boto3.client("dynamodbstreams", endpoint_url=local or None, region_name=client.meta.region_name)
    auditor = LedgerAuditor(LedgerEntryReader(client, table), partner_wait_seconds=args.partner_wait_seconds)
    with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C while it says where it stopped
        follow(
            client,
            streams,
            table,
            auditor,
            sys.stdout,
            sys.stderr,
            from_start=args.from_start,
            poll_seconds=args.poll_seconds,
        )
    return 0

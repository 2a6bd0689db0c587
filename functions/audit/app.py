"""Lambda handler of the continuous audit, on the ledger table's DynamoDB stream (payments.audit has the checks).

A break is logged (the account, the item, the reason; never an image) and counted in the metric LedgerAuditBreak
(AuditBreakAlarm). A record that cannot be read, or whose entry cannot be read now, is this record's failure
(ReportBatchItemFailures): Lambda retries from it, bisects, and in the end sends it to the on-failure queue; the
records before it are done.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments.audit import Finding, LedgerAuditor
from payments.aws import dynamodb_client
from payments.observability import logger, metrics
from payments.repositories.audit_reader import LedgerEntryReader

BREAK_METRIC = "LedgerAuditBreak"

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
auditor = LedgerAuditor(
    LedgerEntryReader(dynamodb_client(), os.environ.get("LEDGER_TABLE_NAME", "LedgerTable")),
    partner_wait_seconds=float(os.environ.get("AUDIT_PARTNER_WAIT_SECONDS", "2")),
)


def report(finding: Finding) -> None:
    logger.warning(
        "ledger audit break",
        extra={
            "au_id": finding.au_id,
            "item": finding.item,
            "reason": finding.reason,
            "sequence_number": finding.sequence_number,
        },
    )


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    batch = auditor.batch(event.get("Records") or [])
    breaks: list[Finding] = []

    def record_handler(record: DynamoDBRecord) -> None:
        findings = batch.check(record.raw_event)
        for finding in findings:
            report(finding)
        breaks.extend(findings)

    try:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    finally:
        # every invocation publishes the count, 0 included: the dashboard shows the auditor at work
        metrics.add_metric(name=BREAK_METRIC, unit=MetricUnit.Count, value=len(breaks))

"""An S3 intake bucket's notifications, read from an SQS queue (`openpacs import --watch`).

Each message is an S3 event notification (directly, or wrapped by SNS) naming objects just
created. The importer stores each object, then removes it from the intake bucket (or tags it),
and only then deletes the message: a crash in between makes SQS deliver the message again
after its visibility timeout, and the import, which skips what is stored, converges.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from openpacs.storage.sources import SourceError, SourceItem

log = logging.getLogger(__name__)

TAG_KEY = "openpacs-import"


@dataclass(frozen=True)
class Notice:
    receipt: str
    items: tuple[SourceItem, ...]


def queue_name(url: str) -> str:
    """The queue named by ``sqs://name`` (or a queue URL after ``sqs://``)."""
    name = url.removeprefix("sqs://")
    if not url.startswith("sqs://") or not name:
        raise SourceError(f"{url}: give the queue as sqs://NAME")
    return name


def notice_items(body: str) -> tuple[SourceItem, ...]:
    """The created objects an S3 event notification names (none for a test event or any
    other message)."""
    try:
        event = json.loads(body)
        if isinstance(event, dict) and event.get("Type") == "Notification":  # through SNS
            event = json.loads(event.get("Message", ""))
    except (ValueError, TypeError):
        log.warning("intake message is not JSON: ignored")
        return ()
    records = event.get("Records", []) if isinstance(event, dict) else []
    found = []
    for record in records:
        if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
            continue
        s3 = record.get("s3", {})
        bucket = s3.get("bucket", {}).get("name", "")
        key = unquote_plus(s3.get("object", {}).get("key", ""))
        if bucket and key and not key.endswith("/"):
            found.append(SourceItem("s3", bucket, key, int(s3["object"].get("size", 0) or 0)))
    return tuple(found)


class IntakeQueue:
    def __init__(self, sqs: Any, s3: Any, url: str) -> None:
        self._sqs = sqs
        self._s3 = s3
        name = queue_name(url)
        try:
            self._url = name if "://" in name else sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except Exception as exc:  # botocore's errors: a missing queue, no access
            raise SourceError(f"{url}: cannot open the queue: {exc}") from None

    def receive(self, wait_seconds: int) -> list[Notice]:
        answer = self._sqs.receive_message(
            QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        )
        return [
            Notice(message["ReceiptHandle"], notice_items(message.get("Body", "")))
            for message in answer.get("Messages", [])
        ]

    def done(self, notice: Notice) -> None:
        self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=notice.receipt)

    def remove(self, item: SourceItem) -> None:
        self._s3.delete_object(Bucket=item.container, Key=item.name)

    def tag(self, item: SourceItem, value: str) -> None:
        self._s3.put_object_tagging(
            Bucket=item.container,
            Key=item.name,
            Tagging={"TagSet": [{"Key": TAG_KEY, "Value": value}]},
        )

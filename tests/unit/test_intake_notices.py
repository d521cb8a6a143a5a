"""S3 event notifications as an intake queue delivers them: direct, through SNS, test events
and messages that are not notifications."""

from __future__ import annotations

import json

import pytest

from openpacs.storage.intake import notice_items, queue_name
from openpacs.storage.sources import SourceError, SourceItem


def _event(name: str, key: str, size: int = 7) -> dict[str, object]:
    return {
        "eventName": name,
        "s3": {"bucket": {"name": "intake"}, "object": {"key": key, "size": size}},
    }


def test_created_objects_are_named_with_their_keys_decoded() -> None:
    body = json.dumps(
        {
            "Records": [
                _event("ObjectCreated:Put", "site+a/CT%C3%A9/1.dcm"),
                _event("ObjectRemoved:Delete", "gone"),
                _event("ObjectCreated:CompleteMultipartUpload", "folder/"),
            ]
        }
    )
    assert notice_items(body) == (SourceItem("s3", "intake", "site a/CTé/1.dcm", 7),)


def test_notifications_through_sns_are_unwrapped() -> None:
    inner = json.dumps({"Records": [_event("ObjectCreated:Post", "x")]})
    body = json.dumps({"Type": "Notification", "Message": inner})
    assert notice_items(body) == (SourceItem("s3", "intake", "x", 7),)


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "intake"}),
        "not json",
        json.dumps(["a", "list"]),
    ],
)
def test_other_messages_name_nothing(body: str) -> None:
    assert notice_items(body) == ()


def test_queues_are_named_as_sqs_urls() -> None:
    assert queue_name("sqs://intake") == "intake"
    with pytest.raises(SourceError):
        queue_name("intake")

"""`openpacs import --watch sqs://queue`: an intake bucket notifies an SQS queue of each new
object (moto's S3 and SQS over HTTP); each object is imported, then deleted or tagged, and
its message deleted; refused and skipped objects are tagged, kept and reported."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from openpacs.compose import build_archive
from openpacs.config import load_settings
from tests.support import corpus
from tests.support.backends import Backend
from tests.support.node import write_config
from tests.support.s3 import client, make_bucket


def _intake(endpoint: str) -> tuple[str, str, Any, Any]:
    """A bucket that notifies a new queue of created objects: (bucket, queue, s3, sqs)."""
    s3, sqs = client(endpoint), client(endpoint, "sqs")
    bucket = make_bucket(endpoint)
    queue = f"intake-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn["QueueArn"], "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return bucket, queue, s3, sqs


def _watch(config: Path, queue: str, endpoint: str, report: Path, *extra: str) -> str:
    command = [
        sys.executable, "-m", "openpacs", "import", "--config", str(config),
        "--watch", f"sqs://{queue}", "--sqs-endpoint", endpoint, "--s3-endpoint", endpoint,
        "--idle-exit", "2", "--report", str(report), *extra,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 1, done.stdout + done.stderr  # one object refused
    return done.stdout


def _tags(s3: Any, bucket: str, key: str) -> dict[str, str]:
    tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    return {tag["Key"]: tag["Value"] for tag in tags}


def _instances(config: Path) -> int:
    archive = build_archive(load_settings(config, environ={}))
    try:
        return archive.totals().instances
    finally:
        archive.close()


def test_objects_landing_in_the_intake_bucket_are_imported(
    tmp_path: Path, backend: Backend, s3_endpoint_session: str
) -> None:
    _import_from_intake(tmp_path, backend, s3_endpoint_session, "delete")


def test_stored_objects_can_be_tagged_instead(
    tmp_path: Path, postgres_url: str, s3_endpoint_session: str
) -> None:
    backend = Backend("postgresql-s3", postgres_url, s3_endpoint_session)
    _import_from_intake(tmp_path, backend, s3_endpoint_session, "tag")


def _import_from_intake(tmp_path: Path, backend: Backend, endpoint: str, after: str) -> None:
    s3_endpoint_session = endpoint
    config = write_config(tmp_path, backend.sections(tmp_path))
    bucket, queue, s3, sqs = _intake(s3_endpoint_session)
    datasets = corpus.synthetic_ct_series(3, rows=16, columns=16)
    for number, dataset in enumerate(datasets):
        s3.put_object(Bucket=bucket, Key=f"site a/{number}", Body=corpus.to_part10_bytes(dataset))
    s3.put_object(Bucket=bucket, Key="site a/notes.txt", Body=b"not an image")
    whole = corpus.to_part10_bytes(corpus.synthetic_ct_series(1, rows=16, columns=16)[0])
    s3.put_object(Bucket=bucket, Key="site a/cut.dcm", Body=whole[:-30])
    report = tmp_path / "report.jsonl"

    summary = _watch(config, queue, s3_endpoint_session, report, "--after", after)
    assert "stored 3," in summary
    assert "refused 1" in summary
    assert "skipped 1" in summary
    assert _instances(config) == 3

    left = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    stored = {f"site a/{number}" for number in range(3)}
    if after == "delete":
        assert left == {"site a/notes.txt", "site a/cut.dcm"}
    else:
        assert left == {*stored, "site a/notes.txt", "site a/cut.dcm"}
        assert all(_tags(s3, bucket, key) == {"openpacs-import": "stored"} for key in stored)
    assert _tags(s3, bucket, "site a/notes.txt") == {"openpacs-import": "skipped"}
    assert _tags(s3, bucket, "site a/cut.dcm") == {"openpacs-import": "refused"}
    lines = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    assert {line["file"]: line["outcome"] for line in lines} == {
        f"s3://{bucket}/site a/notes.txt": "skipped",
        f"s3://{bucket}/site a/cut.dcm": "refused",
    }
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []


def test_an_object_that_cannot_be_fetched_keeps_its_message(
    tmp_path: Path, s3_endpoint_session: str
) -> None:
    config = write_config(tmp_path, {})
    sqs = client(s3_endpoint_session, "sqs")
    queue = f"intake-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=queue, Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
    record = {
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "no-such-bucket"}, "object": {"key": "a/b.dcm", "size": 9}},
    }
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"Records": [record]}))
    report = tmp_path / "report.jsonl"

    summary = _watch(config, queue, s3_endpoint_session, report)
    assert "failed 1" in summary
    line = json.loads(report.read_text(encoding="utf-8"))
    assert line["file"] == "s3://no-such-bucket/a/b.dcm"
    assert line["outcome"] == "failed"
    # Not deleted: SQS delivers it again once its visibility timeout has run out.
    again = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10).get("Messages", [])
    assert len(again) == 1
    assert _instances(config) == 0

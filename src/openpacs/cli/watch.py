"""`openpacs import --watch sqs://queue`: objects imported as they land in an intake bucket.

Stored objects (and those already stored) are deleted from the intake bucket, or tagged
``openpacs-import=stored`` with ``--after tag``; refused and skipped ones are tagged
``refused`` or ``skipped`` and left there, and written to the report. An object the archive
could not store for now (store or index unavailable) keeps its message, which SQS delivers
again. Stops on SIGTERM or SIGINT after the message in hand, or after `idle_exit` seconds
without a message.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Literal

from openpacs.archive.importing import ImportResult, import_file
from openpacs.archive.service import Archive
from openpacs.cli.importer import S3Access, Tally, write_report_line
from openpacs.errors import require_extra
from openpacs.storage.intake import IntakeQueue, Notice
from openpacs.storage.sources import Fetcher, SourceItem

log = logging.getLogger(__name__)

After = Literal["delete", "tag"]
_DONE = frozenset({"stored", "already stored", "duplicate"})
_GONE = "no longer in the intake bucket"


def watch(
    config_file: Path | None,
    queue_url: str,
    *,
    s3: S3Access,
    sqs_endpoint: str | None,
    after: After,
    report_path: Path,
    idle_exit: float | None,
) -> Tally:
    from openpacs.compose import build_archive, configure_libraries
    from openpacs.config import load_settings

    # Long polls (at most 20 s for SQS) bounded by the idle time allowed.
    wait_seconds = 20 if idle_exit is None else max(1, min(20, int(idle_exit)))
    s3_client = s3.client()
    sqs = _sqs_client(sqs_endpoint, s3.region)
    queue = IntakeQueue(sqs, s3_client, queue_url)
    archive = build_archive(load_settings(config_file))
    configure_libraries(archive.staging_dir())
    fetcher = Fetcher(archive.staging_dir(), s3_client)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, _stopper(stop)) for sig in (signal.SIGTERM, signal.SIGINT)}
    tally = Tally()
    started = time.monotonic()
    idle_since = time.monotonic()
    files = size = 0
    try:
        with report_path.open("a", encoding="utf-8") as report:
            while not stop.is_set():
                notices = queue.receive(wait_seconds)
                if not notices:
                    if idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
                        break
                    continue
                for notice in notices:
                    results = _handle(archive, fetcher, queue, notice, after)
                    for result in results:
                        tally.counts[result.outcome] += 1
                        files += 1
                        size += result.size
                        if result.outcome not in _DONE:
                            write_report_line(report, result)
                    report.flush()
                idle_since = time.monotonic()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        fetcher.close()
        archive.close()
    seconds = max(time.monotonic() - started, 1e-9)
    tally.rates = f"{files} files, {size / 1e6:.1f} MB in {seconds:.1f} s"
    return tally


def _handle(
    archive: Archive, fetcher: Fetcher, queue: IntakeQueue, notice: Notice, after: After
) -> list[ImportResult]:
    results = []
    retry = False
    for item in notice.items:
        result = _import(archive, fetcher, item)
        results.append(result)
        try:
            if result.outcome in _DONE:
                if after == "delete":
                    queue.remove(item)
                else:
                    queue.tag(item, "stored")
            elif result.reason == _GONE:
                pass  # nothing left to tag
            elif result.outcome in ("refused", "skipped"):
                queue.tag(item, result.outcome)
            else:
                retry = True
        except Exception as exc:  # botocore's errors: stored, but the object stays
            log.warning("intake object not cleaned up object=%s reason=%s", item.label, exc)
            retry = True
    if not retry:
        queue.done(notice)
    return results


def _import(archive: Archive, fetcher: Fetcher, item: SourceItem) -> ImportResult:
    try:
        fetched = fetcher.fetch(item)
    except Exception as exc:  # gone meanwhile, no access
        if "NoSuchKey" in str(exc) or "404" in str(exc):
            return ImportResult(item.label, "skipped", 0, _GONE)
        return ImportResult(item.label, "failed", item.size, f"cannot fetch: {exc}")
    return import_file(archive, fetched.path, label=item.label, consume=fetched.owned)


def _sqs_client(endpoint: str | None, region: str | None) -> object:
    require_extra("s3", "boto3", "watching an SQS queue")
    import boto3

    return boto3.client("sqs", endpoint_url=endpoint or None, region_name=region or None)


def _stopper(stop: threading.Event) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    return handler

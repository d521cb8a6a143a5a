"""Keyset paging of the REST listings on SQLite and PostgreSQL: walking a sorted listing by
its cursors visits every row that was there at the start exactly once, in order, while rows
are inserted on both sides of the reader's position; previous cursors walk back over the same
pages; a cursor page seeks (no OFFSET in its SQL); bad or foreign cursors are refused."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import Engine, event

from openpacs.archive.records import Page
from openpacs.dicom.header import Header, index_columns
from openpacs.dicom.levels import Level
from openpacs.errors import InvalidQuery
from openpacs.index import migrate
from openpacs.index.browse import SqlBrowser
from openpacs.index.catalog import Catalog
from openpacs.index.engine import create_index_engine
from openpacs.index.keyset import Cursor
from tests.support import postgres

DATES = ["20240101", "20230615", "20230615", "19991231", "", "20240101", "20100505"]


def _header(number: int, date: str) -> Header:
    study_uid, series_uid, sop_uid = generate_uid(), generate_uid(), generate_uid()

    def element(vr: str, value: Any) -> dict[str, Any]:
        return {"vr": vr, "Value": [value]} if value != "" else {"vr": vr}

    header_json = {
        "00080016": element("UI", "1.2.840.10008.5.1.4.1.1.7"),
        "00080018": element("UI", sop_uid),
        "00080020": element("DA", date),
        "00080060": element("CS", "OT"),
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": f"NAME^{number % 9}"}]},
        "00100020": element("LO", f"PID{number % 13}"),
        "0020000D": element("UI", study_uid),
        "0020000E": element("UI", series_uid),
    }
    return Header(
        sop_class_uid="1.2.840.10008.5.1.4.1.1.7",
        sop_uid=sop_uid,
        study_uid=study_uid,
        series_uid=series_uid,
        transfer_syntax="1.2.840.10008.1.2.1",
        columns=index_columns(header_json),
        json=header_json,
    )


class Listing:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.catalog = Catalog(engine)
        self.browser = SqlBrowser(engine)
        self.added = 0

    def add(self, date: str) -> None:
        self.added += 1
        self.catalog.add_instance(
            _header(self.added, date),
            blob_key=f"k/{self.added}",
            blob_size=1,
            blob_sha256="0" * 64,
            policy="keep",
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def listing(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Listing]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'index.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        postgres.truncate(url)
    engine = create_index_engine(url)
    migrate.upgrade(engine)
    listing = Listing(engine)
    for number in range(45):
        listing.add(DATES[number % len(DATES)])
    yield listing
    listing.catalog.close()


def _uids(page: Page) -> list[str]:
    return [item["StudyInstanceUID"] for item in page.items]


def _in_order(dates: list[str | None], descending: bool) -> bool:
    """NULLs last ascending, first descending."""
    keys = [(d is None, d or "") for d in dates]
    return keys == sorted(keys, reverse=descending)


@pytest.mark.parametrize("descending", [True, False])
def test_cursor_walk_sees_every_row_once_while_rows_arrive(
    listing: Listing, descending: bool
) -> None:
    browser = listing.browser
    before = browser.page(Level.STUDY, [], sort="StudyDate", descending=descending, limit=1000)
    assert before.total == 45
    expected = set(_uids(before))
    chooser = random.Random(11)

    def walk(cursor_of: str) -> list[tuple[str, str | None]]:
        """Rows met walking from one end by the `cursor_of` cursors, in listing order;
        three studies (dated before, at and after the reader's position) arrive per page."""
        start = None if cursor_of == "next" else Cursor("StudyDate", descending, True).encode()
        page = browser.page(
            Level.STUDY, [], sort="StudyDate", descending=descending, limit=7, cursor=start
        )
        met: list[list[tuple[str, str | None]]] = []
        while True:
            met.append([(i["StudyInstanceUID"], i.get("StudyDate")) for i in page.items])
            for _ in range(3):
                listing.add(chooser.choice([*DATES, "20991231", "19000101"]))
            cursor = page.next if cursor_of == "next" else page.previous
            if cursor is None:
                break
            page = browser.page(
                Level.STUDY, [], sort="StudyDate", descending=descending, limit=7, cursor=cursor
            )
        ordered = met if cursor_of == "next" else list(reversed(met))
        return [row for rows in ordered for row in rows]

    for direction in ("next", "previous"):
        rows = walk(direction)
        uids = [uid for uid, _ in rows]
        assert len(uids) == len(set(uids)), f"a row was listed twice ({direction})"
        assert expected <= set(uids), f"a row there at the start was skipped ({direction})"
        assert _in_order([date for _, date in rows], descending), direction


def test_next_and_previous_round_trip_on_a_still_listing(listing: Listing) -> None:
    browser = listing.browser
    pages = [browser.page(Level.STUDY, [], sort="PatientName", limit=6)]
    while pages[-1].next is not None:
        pages.append(
            browser.page(Level.STUDY, [], sort="PatientName", limit=6, cursor=pages[-1].next)
        )
    assert [p.offset for p in pages] == list(range(0, 45, 6))
    assert pages[0].previous is None
    everything = [u for p in pages for u in _uids(p)]
    assert everything == _uids(browser.page(Level.STUDY, [], sort="PatientName", limit=1000))
    for index in range(len(pages) - 1, 0, -1):
        back = browser.page(
            Level.STUDY, [], sort="PatientName", limit=6, cursor=pages[index].previous
        )
        assert _uids(back) == _uids(pages[index - 1])
        assert back.offset == pages[index - 1].offset
    # With no sort, the primary key orders.
    unsorted = browser.page(Level.STUDY, [], limit=40)
    tail = browser.page(Level.STUDY, [], limit=40, cursor=unsorted.next)
    assert _uids(unsorted) + _uids(tail) == _uids(browser.page(Level.STUDY, [], limit=1000))
    assert tail.next is None
    assert tail.offset == 40


def test_a_cursor_page_seeks_instead_of_counting_past(listing: Listing) -> None:
    browser = listing.browser
    first = browser.page(Level.STUDY, [], sort="StudyDate", descending=True, limit=10)
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append((statement.upper(), parameters))

    event.listen(listing.engine, "before_cursor_execute", record)
    try:
        second = browser.page(
            Level.STUDY, [], sort="StudyDate", descending=True, limit=10, cursor=first.next
        )
    finally:
        event.remove(listing.engine, "before_cursor_execute", record)
    assert len(second.items) == 10
    pages = [(s, p) for s, p in statements if "LIMIT" in s]
    assert len(pages) == 1
    statement, parameters = pages[0]
    assert "STUDIES.PK <" in statement  # the seek to the boundary row
    # No rows skipped by offset: PostgreSQL renders none, SQLite always binds one (0).
    assert "OFFSET" not in statement or list(parameters)[-1] == 0, statement
    offset_page = browser.page(
        Level.STUDY, [], sort="StudyDate", descending=True, limit=10, offset=10
    )
    assert _uids(offset_page) == _uids(second)


def test_bad_and_foreign_cursors_are_refused(listing: Listing) -> None:
    browser = listing.browser
    page = browser.page(Level.STUDY, [], sort="StudyDate", limit=5)
    assert page.next is not None
    for bad in ["not-a-cursor", "e30", "W10", "eyJzIjoxfQ", "x" * 600]:
        with pytest.raises(InvalidQuery):
            browser.page(Level.STUDY, [], sort="StudyDate", limit=5, cursor=bad)
    with pytest.raises(InvalidQuery, match="another sort"):
        browser.page(Level.STUDY, [], sort="PatientName", limit=5, cursor=page.next)
    with pytest.raises(InvalidQuery, match="offset"):
        browser.page(Level.STUDY, [], sort="StudyDate", limit=5, offset=5, cursor=page.next)

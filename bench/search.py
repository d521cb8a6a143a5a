"""`python -m bench.search [--studies N] [--padding N] [--database NAME] [--ingest N]`: deep
paging, any-attribute and free-text search on PostgreSQL at 100,000 studies (one instance
each), and what the search indexes cost each index write.

The index is seeded with synthetic rows in bulk (the ingest path is measured elsewhere), then
each figure is the median of a few runs, in-process against the index classes the servers use:
a REST study listing (sort -StudyDate, 50 a page) at offset 0, at a deep offset and at the same
depth by cursor; a study-level C-FIND/QIDO query on a non-indexed attribute (InstitutionName,
equality through the jsonb GIN index, and a wildcard), and the REST search on it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, insert, select

from bench import services

RUNS = 5
CHUNK = 5000
INSTITUTIONS = 100
# Words of the padding elements (--padding): no digits, so that they add no match to the
# searches timed here, only the size a stored header has.
FILLER = [
    *("axial", "chest", "contrast", "helical", "brain", "spine", "routine", "abdomen"),
    *("pelvis", "siemens", "philips", "somatom", "lightspeed", "standard", "sharp", "soft"),
    *("tissue", "bone", "lung", "window", "reconstruction", "kernel", "filter"),
]


def _padding(n: int, count: int) -> dict[str, Any]:
    """`count` more elements for study `n`: two in three text (three filler words), one in
    three a number, as a stored CT header's few hundred elements are."""
    elements: dict[str, Any] = {}
    for e in range(count):
        tag = f"0019{0x1000 + e:04X}"
        if e % 3 == 2:
            elements[tag] = {"vr": "DS", "Value": [(n * 7 + e) % 1000 / 10]}
        else:
            picked = [FILLER[(n * 31 + e * k) % len(FILLER)] for k in (1, 3, 7)]
            elements[tag] = {"vr": "LO", "Value": [" ".join(picked)]}
    return elements


def _rows(studies: int, padding: int = 0) -> dict[str, list[dict[str, Any]]]:
    now = "2026-01-01T00:00:00+00:00"
    tables: dict[str, list[dict[str, Any]]] = {k: [] for k in ("p", "st", "se", "i")}
    for n in range(1, studies + 1):
        date = f"{2000 + n % 25:04d}{1 + n % 12:02d}{1 + n % 28:02d}"
        institution = f"Hospital {n % INSTITUTIONS}"
        header = {
            "00080020": {"vr": "DA", "Value": [date]},
            "00080080": {"vr": "LO", "Value": [institution]},
            "00081030": {"vr": "LO", "Value": [f"Study {n}"]},
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": f"PATIENT^{n}"}]},
            "00100020": {"vr": "LO", "Value": [f"P{n}"]},
            "0020000D": {"vr": "UI", "Value": [f"1.2.3.{n}"]},
            "0020000E": {"vr": "UI", "Value": [f"1.2.3.{n}.1"]},
            "00080018": {"vr": "UI", "Value": [f"1.2.3.{n}.1.1"]},
            "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
            **_padding(n, padding),
        }
        tables["p"].append(
            {"pk": n, "patient_id": f"P{n}", "patient_name": f"PATIENT^{n}",
             "patient_name_norm": f"PATIENT^{n}", "created_at": now}
        )  # fmt: skip
        tables["st"].append(
            {"pk": n, "patient_pk": n, "study_uid": f"1.2.3.{n}", "study_date": date,
             "referring_physician_name": "", "referring_physician_name_norm": "",
             "study_description": f"Study {n}", "created_at": now}
        )  # fmt: skip
        tables["se"].append(
            {"pk": n, "study_pk": n, "series_uid": f"1.2.3.{n}.1", "modality": "CT",
             "series_number": 1, "created_at": now}
        )  # fmt: skip
        tables["i"].append(
            {"pk": n, "series_pk": n, "sop_uid": f"1.2.3.{n}.1.1",
             "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2", "instance_number": 1,
             "transfer_syntax": "1.2.840.10008.1.2.1", "blob_key": f"k/{n}", "blob_size": 1,
             "blob_sha256": "0" * 64, "created_at": now, "header": json.dumps(header)}
        )  # fmt: skip
    return tables


def _median_ms(work: Callable[[], Any]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _ingest(count: int, revisions: list[str]) -> None:
    """Instances indexed per second, one transaction each (the C-STORE path's index write),
    at each of `revisions` (by default before search, 0003, and at head with its indexes)."""
    from openpacs.dicom.header import Header, index_columns
    from openpacs.index import migrate
    from openpacs.index.catalog import Catalog
    from openpacs.index.engine import create_index_engine

    rows = _rows(count)["i"]
    for revision in revisions:
        name = services.create_database("bench_ingest")
        try:
            engine = create_index_engine(services.database_url(name))
            migrate.upgrade(engine, revision)
            catalog = Catalog(engine)
            started = time.perf_counter()
            for row in rows:
                header_json = json.loads(row["header"])
                header = Header(
                    sop_class_uid=row["sop_class_uid"],
                    sop_uid=row["sop_uid"],
                    study_uid=header_json["0020000D"]["Value"][0],
                    series_uid=header_json["0020000E"]["Value"][0],
                    transfer_syntax=row["transfer_syntax"],
                    columns=index_columns(header_json),
                    json=header_json,
                )
                catalog.add_instance(
                    header, blob_key=row["blob_key"], blob_size=1, blob_sha256="0" * 64,
                    policy="keep",
                )  # fmt: skip
            rate = count / (time.perf_counter() - started)
            catalog.close()
            print(f"{'index writes at ' + revision + ' (instances/s)':<70} {rate:8.1f}")
        finally:
            services.drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.search")
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument(
        "--ingest", type=int, default=0, help="also: index N instances one by one at 0003 and head"
    )
    parser.add_argument(
        "--ingest-at",
        default="0003,head",
        help="the schema revisions --ingest compares, comma-separated (default: 0003,head)",
    )
    parser.add_argument(
        "--no-vacuum",
        dest="vacuum",
        action="store_false",
        help="ANALYZE only after seeding: search right after a bulk load, before autovacuum",
    )
    parser.add_argument(
        "--padding",
        type=int,
        default=0,
        help="N more elements in each seeded header (about 65 bytes of JSON each; a CT "
        "header holds a few hundred elements)",
    )
    parser.add_argument(
        "--database",
        help="keep the index in this database (created if missing), seeded only when it has no "
        "studies yet and migrated to head, so that runs before and after a change read the "
        "same rows; dropped by hand afterwards",
    )
    args = parser.parse_args()
    if args.ingest:
        _ingest(args.ingest, args.ingest_at.split(","))
    from sqlalchemy import text

    from openpacs.dicom.levels import Level
    from openpacs.dicom.query import Query, condition_for, tag_of
    from openpacs.index import migrate, schema
    from openpacs.index.browse import SqlBrowser
    from openpacs.index.catalog import Catalog
    from openpacs.index.engine import create_index_engine

    name = args.database or services.create_database("bench_search")
    if args.database and not services.database_exists(name):
        services.create_database(name, exact=True)
    try:
        engine = create_index_engine(services.database_url(name))
        started = time.perf_counter()
        migrate.upgrade(engine)
        with engine.connect() as conn:
            seeded = conn.execute(select(func.count()).select_from(schema.studies)).scalar_one()
        if seeded:
            print(f"{seeded} studies kept, migrated in {time.perf_counter() - started:.1f} s")
        else:
            rows = _rows(args.studies, args.padding)
            with engine.begin() as conn:
                for table, key in ((schema.patients, "p"), (schema.studies, "st"),
                                   (schema.series, "se"), (schema.instances, "i")):  # fmt: skip
                    for start in range(0, len(rows[key]), CHUNK):
                        conn.execute(insert(table), rows[key][start : start + CHUNK])
        # Out of any transaction: statistics an ANALYZE gathers inside a transaction that is
        # rolled back are lost, and the planner then plans on guesses. VACUUM, as autovacuum
        # does soon after a bulk load, also moves the GIN indexes' pending entries (which
        # every search reads through) into the indexes.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE" if args.vacuum else "ANALYZE"))
        if not seeded:
            print(f"seeded {args.studies} studies in {time.perf_counter() - started:.1f} s")
        browser, catalog = SqlBrowser(engine), Catalog(engine)
        deep = max(50, (seeded or args.studies) - 10_000)

        def page(**kw: Any) -> Any:
            return browser.page(Level.STUDY, [], sort="StudyDate", descending=True, limit=50, **kw)

        cursor = page(offset=deep - 50).next
        equal = condition_for(tag_of("InstitutionName"), "Hospital 7")
        pattern = condition_for(tag_of("InstitutionName"), "Hospital 7*")
        returned = (int(tag_of("InstitutionName")), int(tag_of("StudyDescription")))
        figures = {
            "REST studies page, offset 0 (ms)": lambda: page(),
            f"REST studies page, offset {deep:,} (ms)": lambda: page(offset=deep),
            f"REST studies page, cursor at {deep:,} (ms)": lambda: page(cursor=cursor),
            "C-FIND/QIDO study InstitutionName=Hospital 7, limit 100 (ms)": lambda: catalog.find(
                Query(Level.STUDY, (equal,), return_tags=returned, limit=100)
            ),
            "C-FIND/QIDO study InstitutionName=Hospital 7*, limit 100 (ms)": lambda: catalog.find(
                Query(Level.STUDY, (pattern,), return_tags=returned, limit=100)
            ),
            "REST studies InstitutionName=Hospital 7, total + page (ms)": lambda: browser.page(
                Level.STUDY, [equal], limit=50
            ),
            "REST studies q=hospital 7, total + page (ms)": lambda: browser.page(
                Level.STUDY, [], text="hospital 7", limit=50
            ),
            "REST studies q=patient 12345, total + page (ms)": lambda: browser.page(
                Level.STUDY, [], text="patient 12345", limit=50
            ),
        }
        assert page(offset=deep).items == page(cursor=cursor).items
        for label, work in figures.items():
            print(f"{label:<70} {_median_ms(work):8.1f}")
        catalog.close()
        engine.dispose()
    finally:
        if not args.database:
            services.drop_database(name)


if __name__ == "__main__":
    main()

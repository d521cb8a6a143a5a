"""PostgreSQL goes away during ingest: C-STOREs fail cleanly, nothing half-stored stays,
and storing works again once the database is back."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from openpacs.errors import StoreUnavailable
from tests.support import corpus, scu
from tests.support.node import running_node
from tests.support.postgres import truncate
from tests.support.tcp_proxy import tcp_proxy


def test_a_database_outage_fails_stores_cleanly_and_recovers(
    tmp_path: Path, postgres_url: str
) -> None:
    truncate(postgres_url)
    url = make_url(postgres_url)
    series = corpus.synthetic_ct_series(6, rows=32, columns=32)
    with tcp_proxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        through_proxy = url.set(host="127.0.0.1", port=proxy.port)
        database = {"url": through_proxy.render_as_string(hide_password=False)}
        with running_node(tmp_path, database=database) as node:
            assert {s.Status for s in scu.store(node.port, series[:2])} == {0x0000}

            proxy.cut()
            refused = scu.store(node.port, series[2:4])
            assert {s.Status for s in refused} == {StoreUnavailable.dimse_status}
            assert all("index is unavailable" in s.ErrorComment for s in refused)

            proxy.restore()
            assert {s.Status for s in scu.store(node.port, series[4:])} == {0x0000}
            assert node.instance_count() == 4
            stored = {node.archive.instance(str(d.SOPInstanceUID)) for d in series}
            assert None in stored  # the refused ones are not there...
            keys = {i.blob_key for i in stored if i is not None}
            assert set(node.archive.store.iterate()) == keys  # ...and left no blob behind

"""Remote AEs kept in the database (the configured ones are merged in by the archive)."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from openpacs.archive.records import RemoteNode
from openpacs.index import schema
from openpacs.index.transaction import Transactions, now_iso

_remotes = schema.remote_aes


class SqlRemotes:
    def __init__(self, engine: Engine) -> None:
        self._tx = Transactions(engine)

    def list(self) -> list[RemoteNode]:
        statement = select(_remotes).order_by(_remotes.c.aet)
        return self._tx.read(
            lambda conn: [
                RemoteNode(r.aet, r.host, r.port, bool(r.tls)) for r in conn.execute(statement)
            ]
        )

    def get(self, aet: str) -> RemoteNode | None:
        def work(conn: Connection) -> RemoteNode | None:
            r = conn.execute(select(_remotes).where(_remotes.c.aet == aet)).first()
            return RemoteNode(r.aet, r.host, r.port, bool(r.tls)) if r is not None else None

        return self._tx.read(work)

    def add(self, remote: RemoteNode) -> bool:
        row = {
            "aet": remote.aet,
            "host": remote.host,
            "port": remote.port,
            "tls": remote.tls,
            "created_at": now_iso(),
        }
        try:
            self._tx.write(lambda conn: conn.execute(_remotes.insert().values(row)))
        except IntegrityError:
            return False
        return True

    def update(self, remote: RemoteNode) -> bool:
        statement = (
            update(_remotes)
            .where(_remotes.c.aet == remote.aet)
            .values(host=remote.host, port=remote.port, tls=remote.tls)
        )
        return self._tx.write(lambda conn: bool(conn.execute(statement).rowcount))

    def remove(self, aet: str) -> bool:
        statement = delete(_remotes).where(_remotes.c.aet == aet)
        return self._tx.write(lambda conn: bool(conn.execute(statement).rowcount))

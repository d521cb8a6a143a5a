"""The servers sharing the database, each alive while its lease runs (`servers` table).

A server registers when it starts serving and renews its lease well before it runs out; a
server that stops cleanly removes its row, one that crashed leaves a lease that runs out.
Times are seconds since the epoch from each server's clock, so servers sharing a database
need clocks that agree to well within a lease (NTP).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update

from openpacs.archive.records import Server
from openpacs.index import schema
from openpacs.index.transaction import Transactions

_servers = schema.servers


def _server(row: Any) -> Server:
    return Server(row.server_id, row.host, row.pid, row.started_at, row.lease_until)


class SqlServers:
    def __init__(self, engine: Engine) -> None:
        self._tx = Transactions(engine, what="database")

    def register(self, server: Server) -> None:
        self._tx.write(lambda conn: conn.execute(insert(_servers).values(**_values(server))))

    def renew(self, server_id: str, lease_until: float) -> bool:
        """Extend the lease; False when the row is gone (removed as expired long ago)."""
        statement = (
            update(_servers)
            .where(_servers.c.server_id == server_id)
            .values(lease_until=lease_until)
        )
        return bool(self._tx.write(lambda conn: conn.execute(statement).rowcount) == 1)

    def remove(self, server_id: str) -> None:
        statement = delete(_servers).where(_servers.c.server_id == server_id)
        self._tx.write(lambda conn: conn.execute(statement))

    def servers(self) -> list[Server]:
        def work(conn: Connection) -> list[Server]:
            rows = conn.execute(select(_servers).order_by(_servers.c.started_at)).all()
            return [_server(row) for row in rows]

        return self._tx.read(work)

    def forget_expired(self, before: float) -> int:
        """Remove rows whose lease ended before `before` (crashed servers, long gone)."""
        statement = delete(_servers).where(_servers.c.lease_until < before)
        return int(self._tx.write(lambda conn: conn.execute(statement).rowcount))


def _values(server: Server) -> dict[str, Any]:
    return {
        "server_id": server.server_id,
        "host": server.host,
        "pid": server.pid,
        "started_at": server.started_at,
        "lease_until": server.lease_until,
    }

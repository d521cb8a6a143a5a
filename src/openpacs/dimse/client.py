"""openpacs as an SCU: C-ECHO a remote, C-STORE instances to it, ask it to C-MOVE a study to
us. Used by jobs of the HTTP door through the archive's `DicomClient` port; the datasets to
send and their transfer syntaxes come from the same code C-MOVE uses (`dimse.retrieve`)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.events import Event
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from openpacs.archive.records import RemoteNode, StoredInstance
from openpacs.archive.service import Archive
from openpacs.config import DicomSettings
from openpacs.dimse.retrieve import accepted_syntaxes, dataset_for, move_contexts
from openpacs.errors import RemoteUnavailable
from openpacs.tls import client_context

log = logging.getLogger("openpacs.dimse")

_PENDING = (0xFF00, 0xFF01)


def set_nodelay(event: Event) -> None:
    """TCP_NODELAY on an association's socket, so small messages go at once."""
    sock = event.assoc.dul.socket.socket if event.assoc.dul.socket else None
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class DicomClient:
    def __init__(self, archive: Archive, settings: DicomSettings) -> None:
        self._archive = archive
        self._settings = settings

    def _ae(self) -> AE:
        ae = AE(ae_title=self._settings.aet)
        ae.acse_timeout = self._settings.acse_timeout
        ae.dimse_timeout = self._settings.dimse_timeout
        ae.network_timeout = self._settings.network_timeout
        return ae

    def _associate(self, ae: AE, remote: RemoteNode, **kwargs: Any) -> Association:
        if remote.tls:
            settings = self._settings
            context = client_context(
                ca=Path(settings.tls_ca) if settings.tls_ca else None,
                cert=Path(settings.tls_cert) if settings.tls_cert else None,
                key=Path(settings.tls_key) if settings.tls_key else None,
                check_hostname=False,
            )
            kwargs["tls_args"] = (context, remote.host)
        assoc = ae.associate(
            remote.host,
            remote.port,
            ae_title=remote.aet,
            max_pdu=self._settings.max_pdu,
            evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay)],
            **kwargs,
        )
        if not assoc.is_established:
            # pynetdicom leaves the socket of a refused or failed association open.
            if assoc.dul.socket is not None:
                assoc.dul.socket.close()
            raise RemoteUnavailable(
                f"no association with {remote.aet} at {remote.host}:{remote.port}"
            )
        return assoc

    def echo(self, remote: RemoteNode) -> int:
        """The C-ECHO status; raises RemoteUnavailable."""
        ae = self._ae()
        ae.add_requested_context(Verification)
        assoc = self._associate(ae, remote)
        try:
            status = assoc.send_c_echo()
        finally:
            assoc.release()
        if not status or "Status" not in status:
            raise RemoteUnavailable(f"{remote.aet} did not answer the C-ECHO")
        return int(status.Status)

    def send(
        self,
        remote: RemoteNode,
        instances: Sequence[StoredInstance],
        progress: Callable[[int, int], None],
    ) -> tuple[int, int]:
        """C-STORE each instance; `progress(done, failed)` after each. Returns (done, failed)."""
        ae = self._ae()
        assoc = self._associate(ae, remote, contexts=move_contexts(instances))
        done = failed = 0
        try:
            accepted = accepted_syntaxes(assoc.accepted_contexts)
            for instance in instances:
                dataset = dataset_for(
                    self._archive, instance, accepted.get(instance.sop_class_uid, set())
                )
                try:
                    status = assoc.send_c_store(dataset)
                except (ValueError, RuntimeError) as exc:  # no context fits this dataset
                    log.warning("send failed sop=%s reason=%s", instance.sop_uid, exc)
                    status = None
                if status is not None and status.get("Status", 0xC000) in (
                    0x0000,
                    0xB000,
                    0xB007,
                    0xB006,
                ):
                    done += 1
                else:
                    failed += 1
                progress(done, failed)
                if not assoc.is_established:
                    raise RemoteUnavailable(f"{remote.aet} ended the association")
        finally:
            if assoc.is_established:
                assoc.release()
        return done, failed

    def move(
        self, remote: RemoteNode, study_uid: str, progress: Callable[[int, int, int], None]
    ) -> tuple[int, int]:
        """Ask `remote` to C-MOVE a study to our AE title; `progress(done, total, failed)` on
        each pending response. Returns (completed, failed)."""
        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
        assoc = self._associate(ae, remote)
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "STUDY"
        identifier.StudyInstanceUID = study_uid
        final: Dataset | None = None
        try:
            responses = assoc.send_c_move(
                identifier, self._settings.aet, StudyRootQueryRetrieveInformationModelMove
            )
            for status, _identifier in responses:
                if not status:
                    break
                final = status
                done = int(status.get("NumberOfCompletedSuboperations", 0))
                failed = int(status.get("NumberOfFailedSuboperations", 0))
                remaining = int(status.get("NumberOfRemainingSuboperations", 0))
                progress(done, done + failed + remaining, failed)
        finally:
            if assoc.is_established:
                assoc.release()
        if final is None:
            raise RemoteUnavailable(f"{remote.aet} did not answer the C-MOVE")
        code = int(final.Status)
        if code not in (0x0000, 0xB000) and code not in _PENDING:
            raise RemoteUnavailable(f"{remote.aet} answered the C-MOVE with 0x{code:04X}")
        return (
            int(final.get("NumberOfCompletedSuboperations", 0)),
            int(final.get("NumberOfFailedSuboperations", 0)),
        )

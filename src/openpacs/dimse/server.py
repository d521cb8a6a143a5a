"""The DICOM server: Verification, Storage and Query/Retrieve on the asyncio engine.

`listener.py` serves the associations on one event loop thread; each association gets its
own `Services` (`services.py`), which run blocking work in one shared thread pool. C-MOVE
sub-associations are requested on the same loop (`move.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from openpacs.archive.service import Archive
from openpacs.config import DicomSettings
from openpacs.dimse import handlers
from openpacs.dimse.association import Association
from openpacs.dimse.handlers import DimseContext, Remote
from openpacs.dimse.listener import Listener
from openpacs.dimse.negotiation import Capabilities
from openpacs.dimse.peer_policy import PeerPolicy
from openpacs.dimse.services import Services, peer_of
from openpacs.errors import ConfigError
from openpacs.tls import client_context

log = logging.getLogger("openpacs.dimse")

QUERY_RETRIEVE_MODELS = (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)
_WORKERS = 32  # stores, queries and file reads of every association at once


def transfer_syntaxes() -> list[str]:
    """The syntaxes we accept, in our order of preference when a peer proposes several in one
    presentation context: Explicit VR Little Endian first (it keeps private elements' VRs and
    never asks a sender to compress), Implicit VR and Big Endian last."""
    last = [ImplicitVRLittleEndian, ExplicitVRBigEndian]
    ordered = [ExplicitVRLittleEndian]
    ordered += [ts for ts in ALL_TRANSFER_SYNTAXES if ts not in ordered and ts not in last]
    return ordered + last


def capabilities(settings: DicomSettings) -> Capabilities:
    """What we accept: every storage SOP class (the requestor may be its SCP, for C-GET),
    Verification and the Query/Retrieve models, in every transfer syntax we know."""
    syntaxes = tuple(transfer_syntaxes())
    storage = {str(context.abstract_syntax) for context in AllStoragePresentationContexts}
    accepted = {sop: syntaxes for sop in sorted(storage)}
    accepted[str(Verification)] = syntaxes
    for model in QUERY_RETRIEVE_MODELS:
        accepted[str(model)] = syntaxes
    accept_calling = None
    if not settings.accept_unknown_aets:
        if not settings.remotes and not settings.peers:
            raise ConfigError(
                "dicom.accept_unknown_aets: false with no [[dicom.remotes]] or "
                "[[dicom.peers]] refuses every peer; list the AEs that may associate"
            )
        allowed = frozenset(PeerPolicy(settings).association_aets)
        accept_calling = allowed.__contains__
    return Capabilities(
        ae_title=settings.aet,
        transfer_syntaxes=accepted,
        max_pdu=settings.max_pdu,
        scp_roles=frozenset(storage),
        accept_calling=accept_calling,
        prefer_ours=True,
    )


class DicomServer:
    def __init__(
        self,
        archive: Archive,
        settings: DicomSettings,
        *,
        host: str = "",
        share_ports: bool = False,
    ) -> None:
        """`share_ports`: other processes listen on the same ports (SO_REUSEPORT)."""
        self._caps = capabilities(settings)
        self._served: set[Association] = set()
        self._started: dict[Association, float] = {}
        tls_client = None
        if any(r.tls for r in settings.remotes) or settings.tls_ca or settings.tls_cert:
            tls_client = client_context(
                ca=_path(settings.tls_ca),
                cert=_path(settings.tls_cert),
                key=_path(settings.tls_key),
                check_hostname=False,
            )
        self.context = DimseContext(
            archive=archive,
            aet=settings.aet,
            remotes=_KnownRemotes(archive),
            move_associations=settings.move_associations,
            policy=PeerPolicy(settings),
            dimse_timeout=settings.dimse_timeout,
            acse_timeout=settings.acse_timeout,
            network_timeout=settings.network_timeout,
            max_pdu=settings.max_pdu,
            tls_client=tls_client,
        )
        self._executor: ThreadPoolExecutor | None = None
        self._listener = Listener(
            settings,
            self._caps,
            self._services,
            host=host,
            share_ports=share_ports,
            on_association=self._on_association,
        )

    def _services(self, assoc: Association) -> Services:
        return Services(self.context, assoc, self._executor)

    def start(self, *, ports: dict[str, int] | None = None) -> None:
        """Open the enabled listeners; `ports` overrides their port numbers by name
        ("dicom", "dicom-tls"), e.g. 0 for any free port."""
        self._executor = ThreadPoolExecutor(_WORKERS, thread_name_prefix="dimse-work")
        self._listener.start(ports=ports)

    @property
    def active_associations(self) -> int:
        """Associations served now (C-MOVE's own are awaited by the C-MOVE they serve)."""
        return len(self._served)

    def port_of(self, name: str) -> int:
        return self._listener.port_of(name)

    def stop(self, grace_seconds: float = 30.0) -> None:
        """Refuse new associations, let running ones finish for up to `grace_seconds`,
        then abort what is left."""
        self._listener.stop(grace_seconds)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def _on_association(self, event: str, assoc: Association, detail: str) -> None:
        """One log line per association event (the closing one with the duration); the
        served set; rejections audited."""
        duration = ""
        if event == "accepted":
            self._served.add(assoc)
            self._started[assoc] = time.monotonic()
        else:
            self._served.discard(assoc)
            if (started := self._started.pop(assoc, None)) is not None:
                duration = f" duration_ms={(time.monotonic() - started) * 1000:.0f}"
        what = "aborted" if event == "lost" else event
        log.info(
            "association %s calling=%s called=%s peer=%s:%s%s",
            what,
            assoc.calling_aet,
            assoc.called_aet,
            assoc.peer_host,
            assoc.peer_port,
            duration,
        )
        if event == "rejected":
            try:
                handlers.audit_rejected(peer_of(assoc), self.context)
            except Exception:
                log.exception("audit of a rejected association failed")


class _KnownRemotes(Mapping[str, Remote]):
    """C-MOVE destinations: the archive's remotes (configured and kept in the database), read
    at each look-up so a remote added on any server is known here at once."""

    def __init__(self, archive: Archive) -> None:
        self._archive = archive

    def __getitem__(self, aet: str) -> Remote:
        node = self._archive.remotes.get(aet)
        if node is None:
            raise KeyError(aet)
        return Remote(node.aet, node.host, node.port, node.tls)

    def __iter__(self) -> Iterator[str]:
        return iter([r.aet for r in self._archive.remotes.list()])

    def __len__(self) -> int:
        return len(self._archive.remotes.list())


def _path(value: str) -> Path | None:
    return Path(value) if value else None

"""What each calling AE may ask of us (`[[dicom.peers]]`): one decision per DIMSE request.

A peer listed in `[[dicom.peers]]` may do only what its entry allows, from its addresses (if
any are listed), with its TLS client certificate (if one is named), and C-MOVE only to its
destinations (none listed: to itself). An AE listed nowhere may do everything while `[dicom]
accept_unknown_aets` is true (as before peers could be listed); when it is false such an AE
cannot even associate, and is refused here too should it get that far. Every refusal carries
its reason, which the handlers log, audit and send back as the ErrorComment.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from openpacs.config import DicomSettings, DimseOperation, PeerPermissions

NOT_AUTHORIZED = 0x0124
"""PS3.7 C.4 general status: Refused: Not Authorized."""


@dataclass(frozen=True)
class Caller:
    """Who sent a request: calling AE title, address, TLS client certificate's common name
    (None: plain connection or no certificate)."""

    aet: str
    address: str
    tls_subject: str | None = None


class PeerPolicy:
    def __init__(self, settings: DicomSettings) -> None:
        self._peers: dict[str, PeerPermissions] = {peer.aet: peer for peer in settings.peers}
        self._configured = {remote.aet for remote in settings.remotes}
        self._accept_unknown = settings.accept_unknown_aets

    @property
    def association_aets(self) -> list[str]:
        """The AE titles that may associate when unknown AEs may not."""
        return sorted(self._configured | set(self._peers))

    def refusal(
        self, caller: Caller, operation: DimseOperation, destination: str | None = None
    ) -> str | None:
        """Why `caller` may not do `operation` (to `destination`), or None when it may."""
        peer = self._peers.get(caller.aet)
        if peer is None:
            if self._accept_unknown or caller.aet in self._configured:
                return None
            return f"calling AE title {caller.aet!r} is not known here"
        if peer.addresses and not _within(caller.address, peer.addresses):
            return f"{peer.aet} may not call from {caller.address}"
        if peer.tls_subject and caller.tls_subject != peer.tls_subject:
            return f"{peer.aet} must present the TLS client certificate of {peer.tls_subject}"
        if operation not in peer.allow:
            return f"{peer.aet} may not {operation}"
        if operation == "move" and destination is not None:
            allowed = peer.move_destinations or (peer.aet,)
            if "*" not in allowed and destination not in allowed:
                return f"{peer.aet} may not move to {destination}"
        return None


def _within(address: str, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network) for network in networks)

"""Association negotiation as the acceptor (PS3.8 9.3.2-9.3.4, PS3.7 Annex D.3.3).

`negotiate` turns an A-ASSOCIATE-RQ and what this server supports into the A-ASSOCIATE-AC it
answers with, or the A-ASSOCIATE-RJ with the result, source and reason the standard gives.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from openpacs import __version__
from openpacs.dimse.pdu import (
    ABSTRACT_SYNTAX_NOT_SUPPORTED,
    ACCEPTANCE,
    APPLICATION_CONTEXT,
    TRANSFER_SYNTAXES_NOT_SUPPORTED,
    AssociateAc,
    AssociateRj,
    AssociateRq,
    PresentationContextAc,
    RoleSelection,
    UserInfo,
)

# A UID under 2.25 (derived from a fixed UUID, PS3.5 B.2), stable across versions.
IMPLEMENTATION_CLASS_UID = f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'openpacs').int}"
IMPLEMENTATION_VERSION = f"OPENPACS_{__version__}"[:16]

# A-ASSOCIATE-RJ (result, source, reason), PS3.8 table 9-21.
RJ_NO_REASON = AssociateRj(1, 1, 1)
RJ_APPLICATION_CONTEXT = AssociateRj(1, 1, 2)
RJ_CALLING_AET = AssociateRj(1, 1, 3)
RJ_CALLED_AET = AssociateRj(1, 1, 7)
RJ_PROTOCOL_VERSION = AssociateRj(1, 2, 2)
RJ_CONGESTION = AssociateRj(2, 3, 1)
RJ_LOCAL_LIMIT = AssociateRj(2, 3, 2)


@dataclass(frozen=True)
class AcceptedContext:
    id: int
    abstract_syntax: str
    transfer_syntax: str
    scu_role: bool  # the requestor may be SCU for this SOP class (default True)
    scp_role: bool  # the requestor may be SCP (C-GET: we send it C-STOREs)


@dataclass(frozen=True)
class Capabilities:
    """What this AE accepts.

    `transfer_syntaxes`: abstract syntax -> the transfer syntaxes accepted for it, in our order
    of preference; the requestor's order decides unless `prefer_ours`. `scp_roles`: SOP classes
    for which the requestor may take the SCP role (the storage classes C-GET sends).
    `accept_calling(calling_aet)`: False rejects with "calling AE title not recognized".
    """

    ae_title: str
    transfer_syntaxes: Mapping[str, Sequence[str]]
    max_pdu: int = 1048576
    scp_roles: frozenset[str] = frozenset()
    require_called_aet: bool = False
    accept_calling: Callable[[str], bool] | None = None
    prefer_ours: bool = False
    implementation_class_uid: str = IMPLEMENTATION_CLASS_UID
    implementation_version: str = IMPLEMENTATION_VERSION
    _sets: dict[str, frozenset[str]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def accepted_syntaxes(self, abstract_syntax: str) -> frozenset[str]:
        found = self._sets.get(abstract_syntax)
        if found is None:
            found = frozenset(self.transfer_syntaxes.get(abstract_syntax, ()))
            self._sets[abstract_syntax] = found
        return found


@dataclass(frozen=True)
class Outcome:
    """The answer to an A-ASSOCIATE-RQ: `reply` to send; `contexts` accepted (empty on RJ)."""

    reply: AssociateAc | AssociateRj
    contexts: Mapping[int, AcceptedContext]
    reason: str = ""


def negotiate(rq: AssociateRq, caps: Capabilities, *, over_limit: bool = False) -> Outcome:
    """The AC or RJ for `rq`; `over_limit`: refuse as local limit exceeded (transient)."""
    if not rq.protocol_version & 1:
        return Outcome(RJ_PROTOCOL_VERSION, {}, "protocol version not supported")
    if rq.application_context != APPLICATION_CONTEXT:
        return Outcome(RJ_APPLICATION_CONTEXT, {}, "application context name not supported")
    if caps.require_called_aet and rq.called_aet != caps.ae_title:
        return Outcome(RJ_CALLED_AET, {}, f"called AE title {rq.called_aet!r} not recognized")
    if caps.accept_calling is not None and not caps.accept_calling(rq.calling_aet):
        return Outcome(RJ_CALLING_AET, {}, f"calling AE title {rq.calling_aet!r} not recognized")
    if over_limit:
        return Outcome(RJ_LOCAL_LIMIT, {}, "local limit exceeded")

    proposed_roles = {role.sop_class: role for role in rq.user_info.roles}
    results: list[PresentationContextAc] = []
    accepted: dict[int, AcceptedContext] = {}
    role_replies: dict[str, RoleSelection] = {}
    for context in rq.contexts:
        ours = caps.accepted_syntaxes(context.abstract_syntax)
        if not ours:
            results.append(PresentationContextAc(context.id, ABSTRACT_SYNTAX_NOT_SUPPORTED, ""))
            continue
        choice = _choose(context.transfer_syntaxes, ours, caps, context.abstract_syntax)
        if choice is None:
            results.append(PresentationContextAc(context.id, TRANSFER_SYNTAXES_NOT_SUPPORTED, ""))
            continue
        scu, scp = True, False
        role = proposed_roles.get(context.abstract_syntax)
        if role is not None:
            # PS3.7 D.3.3.4: we may only accept a role the requestor proposed.
            scu = role.scu
            scp = role.scp and context.abstract_syntax in caps.scp_roles
            if not scu and not scp:
                scu = True  # declining every proposed role leaves the default
            role_replies[context.abstract_syntax] = RoleSelection(context.abstract_syntax, scu, scp)
        results.append(PresentationContextAc(context.id, ACCEPTANCE, choice))
        accepted[context.id] = AcceptedContext(
            context.id, context.abstract_syntax, choice, scu, scp
        )

    info = rq.user_info
    identity = info.user_identity
    reply_info = UserInfo(
        max_pdu=caps.max_pdu,
        implementation_class_uid=caps.implementation_class_uid,
        implementation_version=caps.implementation_version,
        async_ops=(1, 1) if info.async_ops is not None else None,
        roles=tuple(role_replies.values()),
        # PS3.7 D.3.3.7.2: a response only when asked; empty for username (and password).
        user_identity_response=b"" if identity and identity.response_requested else None,
    )
    ac = AssociateAc(rq.called_aet, rq.calling_aet, tuple(results), reply_info)
    return Outcome(ac, accepted)


def _choose(
    proposed: Sequence[str], ours: frozenset[str], caps: Capabilities, abstract: str
) -> str | None:
    if caps.prefer_ours:
        return next((ts for ts in caps.transfer_syntaxes[abstract] if ts in proposed), None)
    return next((ts for ts in proposed if ts in ours), None)

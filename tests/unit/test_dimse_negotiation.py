"""Acceptor negotiation (PS3.8 9.3.2-9.3.4, PS3.7 D.3.3) and the state table's shape."""

from __future__ import annotations

from pynetdicom.fsm import TRANSITION_TABLE

from openpacs.dimse import pdu, states
from openpacs.dimse.negotiation import (
    RJ_APPLICATION_CONTEXT,
    RJ_CALLED_AET,
    RJ_CALLING_AET,
    RJ_LOCAL_LIMIT,
    RJ_PROTOCOL_VERSION,
    Capabilities,
    negotiate,
)
from openpacs.dimse.pdu import AssociateAc, AssociateRq, PresentationContextRq, UserInfo

VERIFICATION, CT, MR = "1.2.840.10008.1.1", "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"
IMPLICIT, EXPLICIT, JPEG = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.50"
CAPS = Capabilities(
    "OPENPACS",
    {VERIFICATION: [IMPLICIT], CT: [EXPLICIT, IMPLICIT, JPEG]},
    max_pdu=65536,
    scp_roles=frozenset({CT}),
)


def _rq(*contexts: PresentationContextRq, **info: object) -> AssociateRq:
    return AssociateRq("OPENPACS", "PEER", contexts, UserInfo(max_pdu=16384, **info))  # type: ignore[arg-type]


def test_the_table_is_ps38_table_9_10() -> None:
    ours = {
        (event.name.replace("EVT", "Evt"), state.name.replace("STA", "Sta")): action
        for (event, state), action in states.TABLE.items()
    }
    assert ours == TRANSITION_TABLE
    assert set(states.TABLE.values()) == set(states.ACTIONS)


def test_contexts_get_their_result_and_the_requestors_first_supported_syntax() -> None:
    outcome = negotiate(
        _rq(
            PresentationContextRq(1, VERIFICATION, (IMPLICIT,)),
            PresentationContextRq(3, CT, (JPEG, EXPLICIT)),
            PresentationContextRq(5, MR, (IMPLICIT,)),
            PresentationContextRq(7, CT, ("1.2.3",)),
        ),
        CAPS,
    )
    reply = outcome.reply
    assert isinstance(reply, AssociateAc)
    assert [(c.id, c.result, c.transfer_syntax) for c in reply.contexts] == [
        (1, pdu.ACCEPTANCE, IMPLICIT),
        (3, pdu.ACCEPTANCE, JPEG),
        (5, pdu.ABSTRACT_SYNTAX_NOT_SUPPORTED, ""),
        (7, pdu.TRANSFER_SYNTAXES_NOT_SUPPORTED, ""),
    ]
    assert sorted(outcome.contexts) == [1, 3]
    assert reply.user_info.max_pdu == 65536
    assert reply.user_info.implementation_class_uid.startswith("2.25.")
    assert reply.user_info.async_ops is None
    assert reply.user_info.user_identity_response is None


def test_our_preference_when_asked() -> None:
    caps = Capabilities("OPENPACS", CAPS.transfer_syntaxes, prefer_ours=True)
    outcome = negotiate(_rq(PresentationContextRq(1, CT, (JPEG, IMPLICIT, EXPLICIT))), caps)
    assert outcome.contexts[1].transfer_syntax == EXPLICIT


def test_roles_async_window_and_user_identity() -> None:
    outcome = negotiate(
        _rq(
            PresentationContextRq(1, CT, (EXPLICIT,)),
            PresentationContextRq(3, VERIFICATION, (IMPLICIT,)),
            roles=(pdu.RoleSelection(CT, False, True), pdu.RoleSelection(VERIFICATION, True, True)),
            async_ops=(5, 5),
            user_identity=pdu.UserIdentityRq(1, True, b"user", b""),
        ),
        CAPS,
    )
    reply = outcome.reply
    assert isinstance(reply, AssociateAc)
    assert outcome.contexts[1].scu_role is False
    assert outcome.contexts[1].scp_role is True
    assert outcome.contexts[3].scp_role is False  # not ours to give for Verification
    assert set(reply.user_info.roles) == {
        pdu.RoleSelection(CT, False, True),
        pdu.RoleSelection(VERIFICATION, True, False),
    }
    assert reply.user_info.async_ops == (1, 1)
    assert reply.user_info.user_identity_response == b""


def test_rejections_carry_the_standard_result_source_and_reason() -> None:
    context = PresentationContextRq(1, VERIFICATION, (IMPLICIT,))
    strict = Capabilities(
        "OPENPACS",
        CAPS.transfer_syntaxes,
        require_called_aet=True,
        accept_calling=lambda aet: aet == "KNOWN",
    )
    cases = [
        (
            AssociateRq("OPENPACS", "PEER", (context,), protocol_version=2),
            CAPS,
            RJ_PROTOCOL_VERSION,
        ),
        (
            AssociateRq("OPENPACS", "PEER", (context,), application_context="1.2.3"),
            CAPS,
            RJ_APPLICATION_CONTEXT,
        ),
        (AssociateRq("OTHER", "KNOWN", (context,)), strict, RJ_CALLED_AET),
        (AssociateRq("OPENPACS", "PEER", (context,)), strict, RJ_CALLING_AET),
    ]
    for rq, caps, expected in cases:
        outcome = negotiate(rq, caps)
        assert outcome.reply == expected
        assert outcome.reason
    assert (
        negotiate(AssociateRq("OPENPACS", "KNOWN", (context,)), strict, over_limit=True).reply
        == RJ_LOCAL_LIMIT
    )

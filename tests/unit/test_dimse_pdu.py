"""PDU codec (PS3.8 9.3): round trips, known bytes from pynetdicom, and fuzzed malformations."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pynetdicom.pdu import A_ASSOCIATE_RQ as PynetdicomRq
from pynetdicom.pdu_primitives import A_ASSOCIATE, MaximumLengthNotification

from openpacs.dimse import pdu
from openpacs.dimse.pdu import (
    Abort,
    AssociateAc,
    AssociateRj,
    AssociateRq,
    CommonExtendedNegotiation,
    ExtendedNegotiation,
    PData,
    PduError,
    Pdv,
    PresentationContextAc,
    PresentationContextRq,
    ReleaseRp,
    ReleaseRq,
    RoleSelection,
    UserIdentityRq,
    UserInfo,
)

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT, EXPLICIT = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"


def _roundtrip(value: pdu.Pdu) -> pdu.Pdu:
    data = pdu.encode(value)
    kind, length = pdu.HEADER.unpack_from(data)
    assert length == len(data) - 6
    return pdu.decode(kind, memoryview(data)[6:])


FULL_INFO = UserInfo(
    max_pdu=16384,
    implementation_class_uid="1.2.3.4",
    implementation_version="OPENPACS_1",
    async_ops=(1, 1),
    roles=(RoleSelection(CT, True, True),),
    extended=(ExtendedNegotiation(CT, b"\x01\x00\x01"),),
    common_extended=(CommonExtendedNegotiation(CT, "1.2.840.10008.4.2", ("1.2.3", "1.2.4")),),
    user_identity=UserIdentityRq(2, True, b"user", b"secret"),
)


def test_associate_rq_round_trips_every_item() -> None:
    rq = AssociateRq(
        "OPENPACS",
        "MODALITY",
        (
            PresentationContextRq(1, VERIFICATION, (IMPLICIT,)),
            PresentationContextRq(3, CT, (EXPLICIT, IMPLICIT)),
        ),
        FULL_INFO,
    )
    assert _roundtrip(rq) == rq


def test_associate_ac_rj_release_abort_round_trip() -> None:
    ac = AssociateAc(
        "OPENPACS",
        "MODALITY",
        (PresentationContextAc(1, 0, IMPLICIT), PresentationContextAc(3, 3, "")),
        UserInfo(max_pdu=0, implementation_class_uid="1.2.3", user_identity_response=b"ok"),
    )
    decoded = _roundtrip(ac)
    assert isinstance(decoded, AssociateAc)
    assert decoded.contexts == ac.contexts
    assert decoded.user_info == ac.user_info
    for value in (AssociateRj(1, 1, 7), ReleaseRq(), ReleaseRp(), Abort(2, 6)):
        assert _roundtrip(value) == value


def test_pdata_round_trip_keeps_the_flags() -> None:
    value = PData((Pdv(1, True, True, memoryview(b"ab")), Pdv(3, False, False, memoryview(b""))))
    decoded = _roundtrip(value)
    assert isinstance(decoded, PData)
    assert [(p.context_id, p.is_command, p.is_last, bytes(p.data)) for p in decoded.pdvs] == [
        (1, True, True, b"ab"),
        (3, False, False, b""),
    ]


def test_decodes_what_pynetdicom_encodes() -> None:
    primitive = A_ASSOCIATE()
    primitive.application_context_name = pdu.APPLICATION_CONTEXT
    primitive.calling_ae_title = "STORESCU"
    primitive.called_ae_title = "ANY-SCP"
    from pynetdicom.presentation import build_context

    context = build_context(CT, [EXPLICIT, IMPLICIT])
    context.context_id = 1
    primitive.presentation_context_definition_list = [context]
    length = MaximumLengthNotification()
    length.maximum_length_received = 32768
    primitive.user_information = [length]
    raw = PynetdicomRq()
    raw.from_primitive(primitive)
    data = raw.encode()
    decoded = pdu.decode(data[0], memoryview(data)[6:])
    assert isinstance(decoded, AssociateRq)
    assert (decoded.called_aet, decoded.calling_aet) == ("ANY-SCP", "STORESCU")
    assert decoded.contexts == (PresentationContextRq(1, CT, (EXPLICIT, IMPLICIT)),)
    assert decoded.user_info.max_pdu == 32768


@pytest.mark.parametrize(
    ("kind", "body", "reason"),
    [
        (0x08, b"\0\0\0\0", pdu.REASON_UNRECOGNIZED_PDU),
        (pdu.RELEASE_RQ, b"\0\0\0", pdu.REASON_INVALID_PARAMETER),
        (pdu.P_DATA_TF, b"", pdu.REASON_INVALID_PARAMETER),
        (pdu.P_DATA_TF, b"\0\0\0\x09\x01\x03ab", pdu.REASON_INVALID_PARAMETER),
        (pdu.ASSOCIATE_RQ, b"\0\x01" + bytes(60), pdu.REASON_INVALID_PARAMETER),
    ],
)
def test_malformed_pdus_raise_pdu_error_with_a_reason(kind: int, body: bytes, reason: int) -> None:
    with pytest.raises(PduError) as caught:
        pdu.decode(kind, memoryview(body))
    assert caught.value.reason == reason


def test_an_item_announcing_more_than_its_parent_is_refused() -> None:
    good = pdu.encode(AssociateRq("A", "B", (PresentationContextRq(1, CT, (IMPLICIT,)),)))
    body = bytearray(good[6:])
    body[68 + 2 : 68 + 4] = struct.pack(">H", 0xFFFF)  # the application context item
    with pytest.raises(PduError, match="past its parent"):
        pdu.decode(pdu.ASSOCIATE_RQ, memoryview(body))


def _valid_rq_bodies() -> st.SearchStrategy[bytes]:
    uid = st.from_regex(r"\A1\.2(\.[1-9][0-9]{0,5}){1,6}\Z")
    context = st.builds(
        PresentationContextRq,
        st.integers(0, 127).map(lambda n: 2 * n + 1),
        uid,
        st.lists(uid, min_size=1, max_size=3).map(tuple),
    )
    rq = st.builds(
        AssociateRq,
        st.just("OPENPACS"),
        st.just("PEER"),
        st.lists(context, min_size=1, max_size=4).map(tuple),
        st.just(FULL_INFO),
    )
    return rq.map(lambda value: pdu.encode(value)[6:])


@settings(max_examples=400, deadline=None)
@given(
    kind=st.integers(0, 9),
    body=st.one_of(st.binary(max_size=300), _valid_rq_bodies()),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 10_000),
)
def test_fuzzed_pdus_decode_or_raise_pdu_error_only(
    kind: int, body: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(body)
    for at, value in flips:
        if data:
            data[at % len(data)] = value
    data = data[: max(cut, len(data) // 2)]
    frozen = bytes(data)
    try:
        decoded = pdu.decode(kind, memoryview(frozen))
    except PduError as error:
        message = str(error)
        decoded = None
    if decoded is None:
        assert message  # every refusal says why
        return
    # What decodes never carries more than it was given.
    if isinstance(decoded, PData):
        assert sum(len(p.data) for p in decoded.pdvs) <= len(frozen)

"""Upper layer PDUs and their items (PS3.8 9.3): encode, and decode within announced lengths.

A PDU is a 6-byte header (type, reserved, 32-bit big-endian length) and a body. `decode`
takes the type and the body the association has already read (at most the length it allows)
and never reads past an item's announced length or allocates beyond it: every malformation
raises `PduError` with the A-ABORT reason-diag (PS3.8 9.3.8) it deserves.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

HEADER = struct.Struct(">BxL")
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"

ASSOCIATE_RQ, ASSOCIATE_AC, ASSOCIATE_RJ, P_DATA_TF = 0x01, 0x02, 0x03, 0x04
RELEASE_RQ, RELEASE_RP, ABORT = 0x05, 0x06, 0x07

# A-ABORT reason-diag (PS3.8 table 9-26), with source 2 (service provider).
REASON_NOT_SPECIFIED = 0
REASON_UNRECOGNIZED_PDU = 1
REASON_UNEXPECTED_PDU = 2
REASON_UNRECOGNIZED_PARAMETER = 4
REASON_UNEXPECTED_PARAMETER = 5
REASON_INVALID_PARAMETER = 6

# Presentation context results (PS3.8 table 9-18).
ACCEPTANCE = 0
USER_REJECTION = 1
NO_REASON = 2
ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
TRANSFER_SYNTAXES_NOT_SUPPORTED = 4


class PduError(Exception):
    """A malformed or unexpected PDU; `reason` is the A-ABORT reason-diag to send."""

    def __init__(self, message: str, reason: int = REASON_INVALID_PARAMETER) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class PresentationContextRq:
    id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True)
class PresentationContextAc:
    id: int
    result: int
    transfer_syntax: str


@dataclass(frozen=True)
class RoleSelection:
    sop_class: str
    scu: bool
    scp: bool


@dataclass(frozen=True)
class ExtendedNegotiation:
    sop_class: str
    info: bytes


@dataclass(frozen=True)
class CommonExtendedNegotiation:
    sop_class: str
    service_class: str
    related: tuple[str, ...]


@dataclass(frozen=True)
class UserIdentityRq:
    type: int
    response_requested: bool
    primary: bytes
    secondary: bytes


@dataclass(frozen=True)
class UserInfo:
    max_pdu: int | None = None
    implementation_class_uid: str = ""
    implementation_version: str = ""
    async_ops: tuple[int, int] | None = None
    roles: tuple[RoleSelection, ...] = ()
    extended: tuple[ExtendedNegotiation, ...] = ()
    common_extended: tuple[CommonExtendedNegotiation, ...] = ()
    user_identity: UserIdentityRq | None = None
    user_identity_response: bytes | None = None


@dataclass(frozen=True)
class AssociateRq:
    called_aet: str
    calling_aet: str
    contexts: tuple[PresentationContextRq, ...]
    user_info: UserInfo = field(default_factory=UserInfo)
    application_context: str = APPLICATION_CONTEXT
    protocol_version: int = 1


@dataclass(frozen=True)
class AssociateAc:
    called_aet: str
    calling_aet: str
    contexts: tuple[PresentationContextAc, ...]
    user_info: UserInfo = field(default_factory=UserInfo)
    application_context: str = APPLICATION_CONTEXT
    protocol_version: int = 1


@dataclass(frozen=True)
class AssociateRj:
    result: int  # 1 permanent, 2 transient
    source: int  # 1 service user, 2 provider (ACSE), 3 provider (presentation)
    reason: int


@dataclass(frozen=True)
class Pdv:
    context_id: int
    is_command: bool
    is_last: bool
    data: memoryview


@dataclass(frozen=True)
class PData:
    pdvs: tuple[Pdv, ...]


@dataclass(frozen=True)
class ReleaseRq:
    pass


@dataclass(frozen=True)
class ReleaseRp:
    pass


@dataclass(frozen=True)
class Abort:
    source: int = 0  # 0 service user, 2 service provider
    reason: int = 0


Pdu = AssociateRq | AssociateAc | AssociateRj | PData | ReleaseRq | ReleaseRp | Abort


# ---- decoding -------------------------------------------------------------------------------


def _uid(data: memoryview, what: str) -> str:
    raw = bytes(data).rstrip(b"\0 ")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise PduError(f"{what} is not ASCII") from None
    # Lenient past the length: a malformed UID only fails to match in negotiation.
    if len(raw) > 64 or not text.isprintable():
        raise PduError(f"{what} is not a UID: {text[:64]!r}")
    return text


def _aet(data: memoryview, what: str) -> str:
    try:
        text = bytes(data).decode("ascii").strip(" \0")
    except UnicodeDecodeError:
        raise PduError(f"{what} is not ASCII") from None
    if not text or not text.isprintable() or "\\" in text:
        raise PduError(f"{what} is not a valid AE title: {text!r}")
    return text


def _items(data: memoryview, length_size: int = 2) -> list[tuple[int, memoryview]]:
    """Split `data` into (type, value) items: type(1) reserved(1) length(2) value."""
    items = []
    at, end = 0, len(data)
    while at < end:
        if end - at < 2 + length_size:
            raise PduError("item header truncated")
        kind = data[at]
        length = int.from_bytes(data[at + 2 : at + 2 + length_size], "big")
        start = at + 2 + length_size
        if start + length > end:
            raise PduError(f"item 0x{kind:02x} announces {length} bytes past its parent")
        items.append((kind, data[start : start + length]))
        at = start + length
    return items


def _field(data: memoryview, at: int, what: str) -> tuple[memoryview, int]:
    """A 2-byte-length-prefixed field at `at`: (value, offset after it)."""
    if at + 2 > len(data):
        raise PduError(f"{what} length truncated")
    length = int.from_bytes(data[at : at + 2], "big")
    if at + 2 + length > len(data):
        raise PduError(f"{what} announces {length} bytes past its item")
    return data[at + 2 : at + 2 + length], at + 2 + length


def _user_info(data: memoryview) -> UserInfo:
    values: dict[str, object] = {}
    roles, extended, common = [], [], []
    for kind, value in _items(data):
        if kind == 0x51:
            if len(value) != 4:
                raise PduError("maximum length item is not 4 bytes")
            values["max_pdu"] = int.from_bytes(value, "big")
        elif kind == 0x52:
            values["implementation_class_uid"] = _uid(value, "implementation class UID")
        elif kind == 0x55:
            if len(value) > 16:
                raise PduError("implementation version name longer than 16")
            values["implementation_version"] = bytes(value).decode("ascii", "replace")
        elif kind == 0x53:
            if len(value) != 4:
                raise PduError("asynchronous operations window item is not 4 bytes")
            ops = struct.unpack(">HH", value)
            values["async_ops"] = (ops[0], ops[1])
        elif kind == 0x54:
            uid, at = _field(value, 0, "role selection SOP class")
            if len(value) != at + 2:
                raise PduError("role selection item has the wrong length")
            roles.append(
                RoleSelection(_uid(uid, "role SOP class"), value[at] == 1, value[at + 1] == 1)
            )
        elif kind == 0x56:
            uid, at = _field(value, 0, "extended negotiation SOP class")
            extended.append(ExtendedNegotiation(_uid(uid, "SOP class"), bytes(value[at:])))
        elif kind == 0x57:
            uid, at = _field(value, 0, "common extended negotiation SOP class")
            service, at = _field(value, at, "service class")
            related_data, at = _field(value, at, "related general SOP classes")
            related, rat = [], 0
            while rat < len(related_data):
                one, rat = _field(related_data, rat, "related SOP class")
                related.append(_uid(one, "related SOP class"))
            common.append(
                CommonExtendedNegotiation(
                    _uid(uid, "SOP class"), _uid(service, "service class"), tuple(related)
                )
            )
        elif kind == 0x58:
            if len(value) < 2:
                raise PduError("user identity item truncated")
            primary, at = _field(value, 2, "user identity primary field")
            secondary, at = _field(value, at, "user identity secondary field")
            if value[0] not in (1, 2, 3, 4, 5):
                raise PduError(f"user identity type {value[0]} unknown")
            values["user_identity"] = UserIdentityRq(
                value[0], value[1] == 1, bytes(primary), bytes(secondary)
            )
        elif kind == 0x59:
            response, _ = _field(value, 0, "user identity server response")
            values["user_identity_response"] = bytes(response)
        # PS3.7 D.3.3: unknown user information sub-items are ignored.
    return UserInfo(
        roles=tuple(roles),
        extended=tuple(extended),
        common_extended=tuple(common),
        **values,  # type: ignore[arg-type]
    )


def _associate(kind: int, body: memoryview) -> AssociateRq | AssociateAc:
    if len(body) < 68:
        raise PduError("A-ASSOCIATE PDU shorter than its fixed fields")
    version = int.from_bytes(body[0:2], "big")
    called = _aet(body[4:20], "called AE title") if kind == ASSOCIATE_RQ else ""
    calling = _aet(body[20:36], "calling AE title") if kind == ASSOCIATE_RQ else ""
    if kind == ASSOCIATE_AC:  # PS3.8 9.3.3.2: the AC echoes them, not to be tested
        called = bytes(body[4:20]).decode("ascii", "replace").strip()
        calling = bytes(body[20:36]).decode("ascii", "replace").strip()
    app_context = ""
    rq_contexts: list[PresentationContextRq] = []
    ac_contexts: list[PresentationContextAc] = []
    user_info: UserInfo | None = None
    for item, value in _items(body[68:]):
        if item == 0x10:
            app_context = _uid(value, "application context")
        elif item == 0x20 and kind == ASSOCIATE_RQ:
            rq_contexts.append(_context_rq(value))
        elif item == 0x21 and kind == ASSOCIATE_AC:
            ac_contexts.append(_context_ac(value))
        elif item == 0x50:
            user_info = _user_info(value)
        else:
            raise PduError(f"unexpected item 0x{item:02x}", REASON_UNEXPECTED_PARAMETER)
    if not app_context:
        raise PduError("no application context item")
    if user_info is None:
        raise PduError("no user information item")
    if kind == ASSOCIATE_RQ:
        if not rq_contexts:
            raise PduError("no presentation context item")
        return AssociateRq(called, calling, tuple(rq_contexts), user_info, app_context, version)
    return AssociateAc(called, calling, tuple(ac_contexts), user_info, app_context, version)


def _context_rq(value: memoryview) -> PresentationContextRq:
    if len(value) < 4:
        raise PduError("presentation context item truncated")
    abstract = ""
    transfers = []
    for sub, data in _items(value[4:]):
        if sub == 0x30:
            if abstract:
                raise PduError("two abstract syntaxes in one presentation context")
            abstract = _uid(data, "abstract syntax")
        elif sub == 0x40:
            transfers.append(_uid(data, "transfer syntax"))
        else:
            raise PduError(f"unexpected presentation context sub-item 0x{sub:02x}")
    if not abstract or not transfers:
        raise PduError("presentation context without abstract or transfer syntax")
    if value[0] % 2 == 0:
        raise PduError(f"presentation context ID {value[0]} is even")
    return PresentationContextRq(value[0], abstract, tuple(transfers))


def _context_ac(value: memoryview) -> PresentationContextAc:
    if len(value) < 4:
        raise PduError("presentation context item truncated")
    transfer = ""
    for sub, data in _items(value[4:]):
        if sub != 0x40:
            raise PduError(f"unexpected presentation context sub-item 0x{sub:02x}")
        transfer = _uid(data, "transfer syntax") if len(data) else ""
    if value[2] > 4:
        raise PduError(f"presentation context result {value[2]} unknown")
    return PresentationContextAc(value[0], value[2], transfer)


def _pdata(body: memoryview) -> PData:
    pdvs = []
    at, end = 0, len(body)
    while at < end:
        if end - at < 6:
            raise PduError("PDV header truncated")
        length = int.from_bytes(body[at : at + 4], "big")
        if length < 2 or at + 4 + length > end:
            raise PduError(f"PDV length {length} does not fit its P-DATA-TF")
        control = body[at + 5]
        if control > 3:
            raise PduError(f"PDV message control header 0x{control:02x} invalid")
        context_id = body[at + 4]
        pdvs.append(
            Pdv(context_id, bool(control & 1), bool(control & 2), body[at + 6 : at + 4 + length])
        )
        at += 4 + length
    if not pdvs:
        raise PduError("P-DATA-TF without a PDV")
    return PData(tuple(pdvs))


def decode(kind: int, body: memoryview) -> Pdu:
    """Decode one PDU body of type `kind`; raises `PduError` on any malformation."""
    if kind in (ASSOCIATE_RQ, ASSOCIATE_AC):
        return _associate(kind, body)
    if kind == P_DATA_TF:
        return _pdata(body)
    if kind in (ASSOCIATE_RJ, RELEASE_RQ, RELEASE_RP, ABORT):
        if len(body) != 4:
            raise PduError(f"PDU type 0x{kind:02x} must have a 4-byte body, not {len(body)}")
        if kind == ASSOCIATE_RJ:
            return AssociateRj(body[1], body[2], body[3])
        if kind == ABORT:
            return Abort(body[2], body[3])
        return ReleaseRq() if kind == RELEASE_RQ else ReleaseRp()
    raise PduError(f"unrecognized PDU type 0x{kind:02x}", REASON_UNRECOGNIZED_PDU)


# ---- encoding -------------------------------------------------------------------------------


def _item(kind: int, value: bytes) -> bytes:
    return struct.pack(">BxH", kind, len(value)) + value


def _lv(value: bytes) -> bytes:
    return struct.pack(">H", len(value)) + value


def _ae16(title: str) -> bytes:
    return title.encode("ascii").ljust(16)[:16]


def _encode_user_info(info: UserInfo) -> bytes:
    parts = []
    if info.max_pdu is not None:
        parts.append(_item(0x51, struct.pack(">L", info.max_pdu)))
    if info.implementation_class_uid:
        parts.append(_item(0x52, info.implementation_class_uid.encode()))
    if info.async_ops is not None:
        parts.append(_item(0x53, struct.pack(">HH", *info.async_ops)))
    for role in info.roles:
        parts.append(_item(0x54, _lv(role.sop_class.encode()) + bytes((role.scu, role.scp))))
    if info.implementation_version:
        parts.append(_item(0x55, info.implementation_version.encode("ascii")))
    for ext in info.extended:
        parts.append(_item(0x56, _lv(ext.sop_class.encode()) + ext.info))
    for com in info.common_extended:
        related = b"".join(_lv(uid.encode()) for uid in com.related)
        value = _lv(com.sop_class.encode()) + _lv(com.service_class.encode()) + _lv(related)
        parts.append(_item(0x57, value))
    if info.user_identity is not None:
        uid = info.user_identity
        value = bytes((uid.type, uid.response_requested)) + _lv(uid.primary) + _lv(uid.secondary)
        parts.append(_item(0x58, value))
    if info.user_identity_response is not None:
        parts.append(_item(0x59, _lv(info.user_identity_response)))
    return _item(0x50, b"".join(parts))


def encode(pdu: Pdu) -> bytes:
    """The PDU's bytes, header included (P-DATA-TF: see `messages.fragments` for the hot path)."""
    if isinstance(pdu, (AssociateRq, AssociateAc)):
        parts = [
            struct.pack(">HH", pdu.protocol_version, 0),
            _ae16(pdu.called_aet),
            _ae16(pdu.calling_aet),
            bytes(32),
            _item(0x10, pdu.application_context.encode()),
        ]
        if isinstance(pdu, AssociateRq):
            for rq in pdu.contexts:
                subs = _item(0x30, rq.abstract_syntax.encode()) + b"".join(
                    _item(0x40, ts.encode()) for ts in rq.transfer_syntaxes
                )
                parts.append(_item(0x20, bytes((rq.id, 0, 0, 0)) + subs))
            kind = ASSOCIATE_RQ
        else:
            for ac in pdu.contexts:
                subs = _item(0x40, ac.transfer_syntax.encode())
                parts.append(_item(0x21, bytes((ac.id, 0, ac.result, 0)) + subs))
            kind = ASSOCIATE_AC
        parts.append(_encode_user_info(pdu.user_info))
        body = b"".join(parts)
    elif isinstance(pdu, AssociateRj):
        kind, body = ASSOCIATE_RJ, bytes((0, pdu.result, pdu.source, pdu.reason))
    elif isinstance(pdu, Abort):
        kind, body = ABORT, bytes((0, 0, pdu.source, pdu.reason))
    elif isinstance(pdu, ReleaseRq):
        kind, body = RELEASE_RQ, bytes(4)
    elif isinstance(pdu, ReleaseRp):
        kind, body = RELEASE_RP, bytes(4)
    else:
        body = b"".join(
            struct.pack(">LBB", len(p.data) + 2, p.context_id, p.is_command | (p.is_last << 1))
            + bytes(p.data)
            for p in pdu.pdvs
        )
        kind = P_DATA_TF
    return HEADER.pack(kind, len(body)) + body

"""One DICOM association on one connection: an asyncio protocol driven by `states.TABLE`.

PDUs are read in place (`framing.PduReader`); every one becomes a PS3.8 event, for which
`states.action_for` names the action and the next state, and the methods `_ae_6`, `_dt_2`,
... do what the action says. PDVs become messages in `reassembly.Reassembly`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Mapping
from typing import Protocol

from openpacs.dimse import pdu
from openpacs.dimse.framing import PduReader
from openpacs.dimse.messages import HAS_DATASET, NO_DATASET, Command, encode_command
from openpacs.dimse.negotiation import AcceptedContext, Capabilities, Outcome, negotiate
from openpacs.dimse.outgoing import AssociationClosed, Dataset, FileSlice, Outgoing
from openpacs.dimse.reassembly import MEMORY_CAP, DataSink, Message, Reassembly
from openpacs.dimse.states import ACTIONS, TABLE, Event, State, StateError, action_for

__all__ = [  # the engine's API for the services, wherever each part lives
    "AcceptedContext",
    "Association",
    "AssociationClosed",
    "AssociationRejected",
    "DataSink",
    "FileSlice",
    "Message",
    "MessageHandler",
    "OnAssociation",
]

log = logging.getLogger(__name__)

_EVENT_OF = {
    pdu.AssociateAc: Event.EVT3,
    pdu.AssociateRj: Event.EVT4,
    pdu.AssociateRq: Event.EVT6,
    pdu.PData: Event.EVT10,
    pdu.ReleaseRq: Event.EVT12,
    pdu.ReleaseRp: Event.EVT13,
    pdu.Abort: Event.EVT16,
}


class AssociationRejected(Exception):
    def __init__(self, rj: pdu.AssociateRj) -> None:
        super().__init__(
            f"association rejected: result {rj.result} source {rj.source} reason {rj.reason}"
        )
        self.rj = rj


class MessageHandler(Protocol):
    def data_sink(
        self, assoc: Association, context_id: int, command: Command
    ) -> DataSink | None: ...

    def message_received(self, assoc: Association, message: Message) -> None: ...

    def association_ended(self, assoc: Association, how: str) -> None: ...


OnAssociation = Callable[[str, "Association", str], None]


class Association(asyncio.BufferedProtocol):
    """An association, acceptor or requestor (`request` given: we send it once connected)."""

    def __init__(
        self,
        caps: Capabilities,
        handler_factory: Callable[[Association], MessageHandler],
        *,
        acse_timeout: float = 30.0,
        network_timeout: float = 60.0,
        on_association: OnAssociation | None = None,
        over_limit: Callable[[], bool] = lambda: False,
        request: pdu.AssociateRq | None = None,
        memory_cap: int = MEMORY_CAP,
    ) -> None:
        self.caps = caps
        self._handler_factory = handler_factory
        self._handler: MessageHandler | None = None
        self._acse_timeout = acse_timeout
        self._network_timeout = network_timeout
        self._on_association = on_association
        self._over_limit = over_limit
        self._request = request
        self.is_requestor = request is not None
        self.state = State.STA1
        self.calling_aet = request.calling_aet if request else ""
        self.called_aet = request.called_aet if request else ""
        self.peer_host, self.peer_port = "", 0
        self.peer_certificate: dict[str, object] | None = None
        self.user_identity: tuple[int, bytes, bytes] | None = None
        self.contexts: Mapping[int, AcceptedContext] = {}
        self.peer_max_pdu = 0
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.closed: asyncio.Future[str] = loop.create_future()
        self.established: asyncio.Future[None] = loop.create_future()
        self.disconnected: asyncio.Future[None] = loop.create_future()
        self._transport: asyncio.Transport | None = None
        self._artim: asyncio.TimerHandle | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._last_activity = loop.time()
        self._out = Outgoing(loop, self._may_send)
        self._outcome: Outcome | None = None  # of negotiation, for AE-7 or AE-8 to send
        self._abort_source, self._abort_reason = 0, pdu.REASON_NOT_SPECIFIED
        self._reader = PduReader(caps.max_pdu)
        self._reassembly = Reassembly(memory_cap)
        if request is not None:
            self._event(Event.EVT1)  # the caller is connecting: AE-1, Sta4

    # ---- transport callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = self._out.transport = transport
        peer = transport.get_extra_info("peername") or ("", 0)
        self.peer_host, self.peer_port = str(peer[0]), int(peer[1])
        self.peer_certificate = transport.get_extra_info("peercert")
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=4 << 20, low=1 << 20)
        self._idle = self._loop.call_later(self._network_timeout, self._idle_check)
        if self.is_requestor:
            self._event(Event.EVT2)
        else:
            self._event(Event.EVT5)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._reader.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self._reader.received(nbytes)
        self._last_activity = self._loop.time()
        try:
            self._parse()
        except Exception:  # a bug of ours or a handler's: abort rather than hang
            log.exception("association %s: unexpected error, aborting", self._who())
            self._abort_now(2, pdu.REASON_NOT_SPECIFIED)

    def eof_received(self) -> bool | None:
        return None  # close our side too: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = self._out.transport = None
        if not self.disconnected.done():
            self.disconnected.set_result(None)
        self._out.resume()  # a writer waiting for the peer learns the connection is gone
        for handle in (self._artim, self._idle):
            if handle is not None:
                handle.cancel()
        if self.state is not State.STA1:
            self._event(Event.EVT17)
        self._end("lost")

    def pause_writing(self) -> None:
        self._out.pause()

    def resume_writing(self) -> None:
        self._out.resume()

    # ---- reading ------------------------------------------------------------------------

    def _parse(self) -> None:
        while self.state is not State.STA1 and self._transport is not None:
            try:
                frame = self._reader.next_pdu()
                if frame is None:
                    return
                decoded = pdu.decode(*frame)
            except pdu.PduError as error:
                self._invalid(error)
                return
            self._event(_EVENT_OF[type(decoded)], decoded)

    def _invalid(self, error: pdu.PduError) -> None:
        log.warning("association %s: invalid PDU: %s", self._who(), error)
        self._abort_reason = error.reason
        self._event(Event.EVT19)

    # ---- the state machine --------------------------------------------------------------

    def _event(self, event: Event, received: pdu.Pdu | None = None) -> None:
        action = action_for(event, self.state)
        if action in ("AA-1", "AA-8") and event is not Event.EVT15:
            # a PDU the state does not allow: we abort as the provider, saying why
            self._abort_source = 2
            if event is not Event.EVT19:
                self._abort_reason = pdu.REASON_UNEXPECTED_PDU
        next_state = ACTIONS[action][1]
        if next_state is not None:
            self.state = next_state
        getattr(self, "_" + action.lower().replace("-", "_"))(received)

    def _ae_1(self, _: object) -> None:
        pass  # the transport connection is being made by whoever made this protocol

    def _ae_2(self, _: object) -> None:
        assert self._request is not None
        self._send(pdu.encode(self._request))
        self._start_artim()  # bounds the wait for the AC (acse_timeout)

    def _ae_3(self, ac: object) -> None:
        assert isinstance(ac, pdu.AssociateAc)
        assert self._request is not None
        self._stop_artim()
        proposed = {c.id: c for c in self._request.contexts}
        roles = {r.sop_class: r for r in ac.user_info.roles}
        contexts = {}
        for result in ac.contexts:
            asked = proposed.get(result.id)
            if result.result != pdu.ACCEPTANCE or asked is None:
                continue
            role = roles.get(asked.abstract_syntax)
            contexts[result.id] = AcceptedContext(
                result.id,
                asked.abstract_syntax,
                result.transfer_syntax,
                role.scu if role else True,
                role.scp if role else False,
            )
        self.contexts = contexts
        self.peer_max_pdu = ac.user_info.max_pdu or 0
        self._handler = self._handler_factory(self)
        self.established.set_result(None)

    def _ae_4(self, rj: object) -> None:
        assert isinstance(rj, pdu.AssociateRj)
        if not self.established.done():
            self.established.set_exception(AssociationRejected(rj))
        self._close()
        self._end("rejected")

    def _ae_5(self, _: object) -> None:
        self._start_artim()

    def _ae_6(self, rq: object) -> None:
        assert isinstance(rq, pdu.AssociateRq)
        self._stop_artim()
        self.calling_aet, self.called_aet = rq.calling_aet, rq.called_aet
        identity = rq.user_info.user_identity
        if identity is not None:
            self.user_identity = (identity.type, identity.primary, identity.secondary)
        self.peer_max_pdu = rq.user_info.max_pdu or 0
        self._outcome = negotiate(rq, self.caps, over_limit=self._over_limit())
        self.state = State.STA3  # the A-ASSOCIATE indication; our answer follows at once
        if isinstance(self._outcome.reply, pdu.AssociateRj):
            self._event(Event.EVT8)
            return
        self.contexts = self._outcome.contexts
        self._handler = self._handler_factory(self)
        self._event(Event.EVT7)

    def _ae_7(self, _: object) -> None:
        assert self._outcome is not None
        self._send(pdu.encode(self._outcome.reply))
        self._notify("accepted", f"contexts={len(self.contexts)}")
        self.established.set_result(None)

    def _ae_8(self, _: object) -> None:
        assert self._outcome is not None
        self._send(pdu.encode(self._outcome.reply))
        self._start_artim()
        self._notify("rejected", self._outcome.reason)
        self._end("rejected")

    def _dt_1(self, _: object) -> None:
        pass  # the P-DATA-TF is written by send_message once the table allowed it

    _ar_7 = _dt_1

    def _dt_2(self, data: object) -> None:
        assert isinstance(data, pdu.PData)
        for pdv in data.pdvs:
            if self.state not in (State.STA6, State.STA7):
                return  # the handler aborted
            try:
                message = self._reassembly.add(pdv, self.contexts, self._sink_for)
            except pdu.PduError as error:
                self._invalid(error)
                return
            if message is not None:
                assert self._handler is not None
                self._handler.message_received(self, message)

    def _sink_for(self, context_id: int, command: Command) -> DataSink | None:
        assert self._handler is not None
        return self._handler.data_sink(self, context_id, command)

    _ar_6 = _dt_2

    def _ar_1(self, _: object) -> None:
        self._send(pdu.encode(pdu.ReleaseRq()))
        self._start_artim()

    def _ar_2(self, _: object) -> None:
        self._event(Event.EVT14)  # we always agree to release

    def _ar_3(self, _: object) -> None:
        self._stop_artim()
        self._close()
        self._end("released")

    def _ar_4(self, _: object) -> None:
        self._send(pdu.encode(pdu.ReleaseRp()))
        self._start_artim()
        self._end("released")

    def _ar_5(self, _: object) -> None:
        self._stop_artim()

    def _ar_8(self, _: object) -> None:
        self.state = State.STA9 if self.is_requestor else State.STA10
        if self.is_requestor:
            self._event(Event.EVT14)

    def _ar_9(self, _: object) -> None:
        self._send(pdu.encode(pdu.ReleaseRp()))

    def _ar_10(self, _: object) -> None:
        self._event(Event.EVT14)

    def _aa_1(self, _: object) -> None:
        self._send(pdu.encode(pdu.Abort(self._abort_source, self._abort_reason)))
        self._start_artim()
        self._end("aborted")

    def _aa_2(self, _: object) -> None:
        self._stop_artim()
        self._close()
        self._end("aborted")

    def _aa_3(self, received: object) -> None:
        detail = ""
        if isinstance(received, pdu.Abort):
            detail = f"by peer source={received.source} reason={received.reason}"
        self._close()
        self._end("aborted", detail)

    def _aa_4(self, _: object) -> None:
        self._end("lost")

    def _aa_5(self, _: object) -> None:
        self._stop_artim()
        self._end("lost")

    def _aa_6(self, _: object) -> None:
        pass  # PDUs after our A-ABORT or A-RELEASE-RP are ignored

    def _aa_7(self, _: object) -> None:
        self._send(pdu.encode(pdu.Abort(2, self._abort_reason)))

    def _aa_8(self, _: object) -> None:
        self._send(pdu.encode(pdu.Abort(2, self._abort_reason)))
        self._start_artim()
        self._end("aborted", f"reason={self._abort_reason}")

    # ---- sending ------------------------------------------------------------------------

    async def send_message(
        self,
        context_id: int,
        command: Mapping[str, object],
        dataset: Dataset | None = None,
    ) -> None:
        """Send one message: command PDV(s), then the data set's, in PDUs the peer accepts.

        Returns once the transport has taken it all (back-pressure awaited); a mutable data
        set (bytearray) must stay unchanged until the association ends, as a TLS transport
        may still hold views of it.
        """
        if context_id not in self.contexts:
            raise ValueError(f"presentation context {context_id} was not accepted")
        fields = dict(command)
        fields["CommandDataSetType"] = NO_DATASET if dataset is None else HAS_DATASET
        encoded = encode_command(fields)
        await self._out.message(context_id, encoded, dataset, self.peer_max_pdu)

    def _may_send(self) -> None:
        try:
            action_for(Event.EVT9, self.state)
        except StateError:
            raise AssociationClosed(f"association is {self.state.name}, not sending") from None

    def _send(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    @property
    def buffered(self) -> int:
        """Bytes received and not yet consumed as whole PDUs."""
        return self._reader.buffered

    @property
    def buffer_size(self) -> int:
        """The read buffer's size: at most twice what a PDU has brought, plus a slice."""
        return self._reader.buffer_size

    @property
    def handler(self) -> MessageHandler | None:
        """The handler made for this association once it was established."""
        return self._handler

    def pause_reading(self) -> None:
        """Stop reading from the peer (a handler with too much queued); TCP pushes back."""
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    # ---- local requests -----------------------------------------------------------------

    def abort(self, source: int = 0, reason: int = 0) -> None:
        """Send A-ABORT now (PS3.8 AA-1); the association ends as "aborted"."""
        if self.state in (State.STA1, State.STA13):
            return
        if (Event.EVT15, self.state) not in TABLE:  # Sta2: nothing to abort, just close
            self._close()
            return
        self._abort_source, self._abort_reason = source, reason
        self._event(Event.EVT15)

    async def release(self) -> None:
        """Ask the peer to release (A-RELEASE-RQ) and wait for the end, up to acse_timeout."""
        self._event(Event.EVT11)
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), self._acse_timeout)
        except TimeoutError:
            self.abort()

    def _abort_now(self, source: int, reason: int) -> None:
        """Abort whatever the state (after an unexpected error); close if none applies."""
        self._abort_source, self._abort_reason = source, reason
        try:
            self._event(Event.EVT19)
        except StateError:
            self._close()

    # ---- timers and endings -------------------------------------------------------------

    def _start_artim(self) -> None:
        self._stop_artim()
        self._artim = self._loop.call_later(self._acse_timeout, self._artim_expired)

    def _stop_artim(self) -> None:
        if self._artim is not None:
            self._artim.cancel()
            self._artim = None

    def _artim_expired(self) -> None:
        self._artim = None
        if self.state in (State.STA2, State.STA13):
            self._event(Event.EVT18)
        elif self.state not in (State.STA1,):
            log.warning("association %s: no answer within %ss", self._who(), self._acse_timeout)
            if not self.established.done():
                self.established.set_exception(TimeoutError("no A-ASSOCIATE answer"))
            self.abort(2, pdu.REASON_NOT_SPECIFIED)

    def _idle_check(self) -> None:
        idle = self._loop.time() - max(self._last_activity, self._out.last_write)
        if idle < self._network_timeout:
            self._idle = self._loop.call_later(self._network_timeout - idle, self._idle_check)
            return
        self._idle = None
        if self.state is State.STA6:
            log.warning("association %s: idle for %ss, aborting", self._who(), idle)
            self.abort(2, pdu.REASON_NOT_SPECIFIED)
        self._close()

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def drop(self) -> None:
        """Close the connection at once, unsent data discarded (a peer that will not close)."""
        if self._transport is not None:
            self._transport.abort()

    def _end(self, how: str, detail: str = "") -> None:
        """Tell the handler and the hook once; resolve `closed`."""
        if self.closed.done():
            return
        self._reassembly.discard()
        if not self.established.done():
            self.established.set_exception(AssociationClosed(how))
            self.established.exception()  # retrieved: a failed attempt is not an error to log
        self.closed.set_result(how)
        if self._handler is None:
            return  # never accepted: nothing to tell
        try:
            self._handler.association_ended(self, how)
        except Exception:
            log.exception("association %s: handler failed on %s", self._who(), how)
        self._notify(how, detail)

    def _notify(self, event: str, detail: str) -> None:
        if self._on_association is not None:
            try:
                self._on_association(event, self, detail)
            except Exception:
                log.exception("association %s: hook failed on %s", self._who(), event)

    def _who(self) -> str:
        return f"{self.calling_aet or '?'}@{self.peer_host}:{self.peer_port}"

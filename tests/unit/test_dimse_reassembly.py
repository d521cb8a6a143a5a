"""Messages put back together from PDVs; a failing sink gives a message with its error."""

from __future__ import annotations

from pathlib import Path

import pytest

from openpacs.dimse import messages
from openpacs.dimse.messages import Command
from openpacs.dimse.pdu import PduError, Pdv
from openpacs.dimse.reassembly import DataSink, Message, Reassembly

STORE = messages.encode_command(
    {
        "AffectedSOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
        "CommandField": messages.C_STORE_RQ,
        "MessageID": 1,
        "Priority": 0,
        "CommandDataSetType": messages.HAS_DATASET,
        "AffectedSOPInstanceUID": "1.2.3",
    }
)


def _pdvs(context: int, data: bytes, step: int, *, command: bool) -> list[Pdv]:
    chunks = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
    return [
        Pdv(context, command, i == len(chunks) - 1, memoryview(chunk))
        for i, chunk in enumerate(chunks)
    ]


class FailingSink:
    def __init__(self, folder: Path, fail_after: int) -> None:
        self.path = folder / "spool"
        self.file = self.path.open("wb")
        self.left = fail_after
        self.discarded = False

    def write(self, fragment: memoryview) -> None:
        if self.left <= 0:
            raise OSError(28, "No space left on device")
        self.left -= 1
        self.file.write(fragment)

    def close(self) -> Path:
        self.file.close()
        return self.path

    def discard(self) -> None:
        self.file.close()
        self.path.unlink()
        self.discarded = True


def _feed(reassembly: Reassembly, pdvs: list[Pdv], sink: DataSink | None = None) -> list[Message]:
    out = []
    for pdv in pdvs:
        message = reassembly.add(pdv, {1, 3}, lambda context, command: sink)
        if message is not None:
            out.append(message)
    return out


def test_fragments_make_one_message_in_memory() -> None:
    data = bytes(range(256)) * 40
    (message,) = _feed(
        Reassembly(), _pdvs(3, STORE, 10, command=True) + _pdvs(3, data, 1000, command=False)
    )
    assert message.context_id == 3
    assert isinstance(message.command, Command)
    assert message.dataset == data
    assert message.error is None


def test_a_failing_sink_is_discarded_and_the_message_says_why(tmp_path: Path) -> None:
    sink = FailingSink(tmp_path, fail_after=2)
    reassembly = Reassembly()
    pdvs = _pdvs(1, STORE, 1000, command=True) + _pdvs(1, bytes(10_000), 1000, command=False)
    (message,) = _feed(reassembly, pdvs, sink)
    assert message.dataset is None
    assert message.error is not None
    assert "No space left" in message.error
    assert sink.discarded
    assert not sink.path.exists()
    # the next message is unaffected
    (echo,) = _feed(
        reassembly, _pdvs(1, STORE, 1000, command=True) + _pdvs(1, b"ok", 10, command=False)
    )
    assert echo.dataset == b"ok"


@pytest.mark.parametrize(
    "pdvs",
    [
        _pdvs(5, STORE, 100, command=True),  # context not accepted
        _pdvs(1, b"data", 10, command=False),  # data set before its command
        _pdvs(1, STORE[:20], 100, command=True)[:1] + _pdvs(3, STORE[20:], 100, command=True),
        _pdvs(1, STORE, 100, command=True) + _pdvs(3, b"x", 10, command=False),
        _pdvs(1, STORE, 100, command=True) + _pdvs(1, STORE, 100, command=True),
    ],
    ids=["context", "data-first", "command-two-contexts", "data-other-context", "command-again"],
)
def test_out_of_order_pdvs_are_pdu_errors(pdvs: list[Pdv]) -> None:
    with pytest.raises(PduError):
        _feed(Reassembly(), pdvs)


def test_the_in_memory_cap_is_an_error() -> None:
    pdvs = _pdvs(1, STORE, 1000, command=True) + _pdvs(1, bytes(5000), 1000, command=False)
    with pytest.raises(PduError, match="cap"):
        _feed(Reassembly(memory_cap=4000), pdvs)

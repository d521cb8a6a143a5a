"""The upper layer state machine (PS3.8 9.2, tables 9-6 to 9-10), as the standard gives it.

`TABLE` maps (event, state) to an action; `ACTIONS` gives each action's meaning and the state
that follows it. Two actions choose between two states (AE-6: accepted or rejected; AR-8:
requestor or acceptor in a release collision): the association tells which. A pair missing
from the table is not a transition the standard defines.
"""

from __future__ import annotations

from enum import Enum


class State(Enum):
    STA1 = "Idle"
    STA2 = "Transport connection open (awaiting A-ASSOCIATE-RQ PDU)"
    STA3 = "Awaiting local A-ASSOCIATE response primitive"
    STA4 = "Awaiting transport connection opening to complete"
    STA5 = "Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU"
    STA6 = "Association established and ready for data transfer"
    STA7 = "Awaiting A-RELEASE-RP PDU"
    STA8 = "Awaiting local A-RELEASE response primitive"
    STA9 = "Release collision requestor side; awaiting A-RELEASE response primitive"
    STA10 = "Release collision acceptor side; awaiting A-RELEASE-RP PDU"
    STA11 = "Release collision requestor side; awaiting A-RELEASE-RP PDU"
    STA12 = "Release collision acceptor side; awaiting A-RELEASE response primitive"
    STA13 = "Awaiting Transport Connection Close Indication"


class Event(Enum):
    EVT1 = "A-ASSOCIATE request (local user)"
    EVT2 = "Transport connect confirmation (local transport service)"
    EVT3 = "A-ASSOCIATE-AC PDU received"
    EVT4 = "A-ASSOCIATE-RJ PDU received"
    EVT5 = "Transport connection indication (local transport service)"
    EVT6 = "A-ASSOCIATE-RQ PDU received"
    EVT7 = "A-ASSOCIATE response primitive (accept)"
    EVT8 = "A-ASSOCIATE response primitive (reject)"
    EVT9 = "P-DATA request primitive"
    EVT10 = "P-DATA-TF PDU received"
    EVT11 = "A-RELEASE request primitive"
    EVT12 = "A-RELEASE-RQ PDU received"
    EVT13 = "A-RELEASE-RP PDU received"
    EVT14 = "A-RELEASE response primitive"
    EVT15 = "A-ABORT request primitive"
    EVT16 = "A-ABORT PDU received"
    EVT17 = "Transport connection closed indication"
    EVT18 = "ARTIM timer expired"
    EVT19 = "Unrecognized or invalid PDU received"


S = State
# action -> (what it does, next state; None: AE-6 and AR-8 decide between two)
ACTIONS: dict[str, tuple[str, State | None]] = {
    "AE-1": ("Issue TRANSPORT CONNECT request primitive to local transport service", S.STA4),
    "AE-2": ("Send A-ASSOCIATE-RQ-PDU", S.STA5),
    "AE-3": ("Issue A-ASSOCIATE confirmation (accept) primitive", S.STA6),
    "AE-4": ("Issue A-ASSOCIATE confirmation (reject) primitive, close connection", S.STA1),
    "AE-5": ("Issue Transport connection response primitive; start ARTIM timer", S.STA2),
    "AE-6": ("Stop ARTIM; accept: A-ASSOCIATE indication (Sta3), else RJ + ARTIM (Sta13)", None),
    "AE-7": ("Send A-ASSOCIATE-AC PDU", S.STA6),
    "AE-8": ("Send A-ASSOCIATE-RJ PDU and start ARTIM timer", S.STA13),
    "DT-1": ("Send P-DATA-TF PDU", S.STA6),
    "DT-2": ("Send P-DATA indication primitive", S.STA6),
    "AR-1": ("Send A-RELEASE-RQ PDU", S.STA7),
    "AR-2": ("Issue A-RELEASE indication primitive", S.STA8),
    "AR-3": ("Issue A-RELEASE confirmation primitive, close transport connection", S.STA1),
    "AR-4": ("Issue A-RELEASE-RP PDU and start ARTIM timer", S.STA13),
    "AR-5": ("Stop ARTIM timer", S.STA1),
    "AR-6": ("Issue P-DATA indication", S.STA7),
    "AR-7": ("Issue P-DATA-TF PDU", S.STA8),
    "AR-8": ("A-RELEASE indication (collision): requestor Sta9, acceptor Sta10", None),
    "AR-9": ("Send A-RELEASE-RP PDU", S.STA11),
    "AR-10": ("Issue A-RELEASE confirmation primitive", S.STA12),
    "AA-1": ("Send A-ABORT PDU (service-user source), (re)start ARTIM timer", S.STA13),
    "AA-2": ("Stop ARTIM timer if running; close transport connection", S.STA1),
    "AA-3": ("Issue A-ABORT or A-P-ABORT indication, close transport connection", S.STA1),
    "AA-4": ("Issue A-P-ABORT indication primitive", S.STA1),
    "AA-5": ("Stop ARTIM timer", S.STA1),
    "AA-6": ("Ignore PDU", S.STA13),
    "AA-7": ("Send A-ABORT PDU", S.STA13),
    "AA-8": ("Send A-ABORT PDU (service-provider source), A-P-ABORT indication, ARTIM", S.STA13),
}


def _row(event: int, actions: str) -> dict[tuple[Event, State], str]:
    """One row of table 9-10: 13 cells, Sta1..Sta13, '-' where the standard leaves it empty."""
    cells = actions.split()
    if len(cells) != 13:
        raise ValueError(f"Evt{event}: {len(cells)} cells")
    return {
        (Event[f"EVT{event}"], State[f"STA{index}"]): action
        for index, action in enumerate(cells, start=1)
        if action != "-"
    }


# PS3.8 table 9-10. Columns: Sta1 Sta2 Sta3 Sta4 Sta5 Sta6 Sta7 Sta8 Sta9 Sta10 Sta11 Sta12 Sta13
TABLE: dict[tuple[Event, State], str] = {
    **_row(1, "AE-1 -    -    -    -    -    -    -    -    -    -    -    -"),
    **_row(2, "-    -    -    AE-2 -    -    -    -    -    -    -    -    -"),
    **_row(3, "-    AA-1 AA-8 -    AE-3 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-6"),
    **_row(4, "-    AA-1 AA-8 -    AE-4 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-6"),
    **_row(5, "AE-5 -    -    -    -    -    -    -    -    -    -    -    -"),
    **_row(6, "-    AE-6 AA-8 -    AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-7"),
    **_row(7, "-    -    AE-7 -    -    -    -    -    -    -    -    -    -"),
    **_row(8, "-    -    AE-8 -    -    -    -    -    -    -    -    -    -"),
    **_row(9, "-    -    -    -    -    DT-1 -    AR-7 -    -    -    -    -"),
    **_row(10, "-   AA-1 AA-8 -    AA-8 DT-2 AR-6 AA-8 AA-8 AA-8 AA-8 AA-8 AA-6"),
    **_row(11, "-   -    -    -    -    AR-1 -    -    -    -    -    -    -"),
    **_row(12, "-   AA-1 AA-8 -    AA-8 AR-2 AR-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-6"),
    **_row(13, "-   AA-1 AA-8 -    AA-8 AA-8 AR-3 AA-8 AA-8 AR-10 AR-3 AA-8 AA-6"),
    **_row(14, "-   -    -    -    -    -    -    AR-4 AR-9 -    -    AR-4 -"),
    **_row(15, "-   -    AA-1 AA-2 AA-1 AA-1 AA-1 AA-1 AA-1 AA-1 AA-1 AA-1 -"),
    **_row(16, "-   AA-2 AA-3 -    AA-3 AA-3 AA-3 AA-3 AA-3 AA-3 AA-3 AA-3 AA-2"),
    **_row(17, "-   AA-5 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AR-5"),
    **_row(18, "-   AA-2 -    -    -    -    -    -    -    -    -    -    AA-2"),
    **_row(19, "-   AA-1 AA-8 -    AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-7"),
}


class StateError(Exception):
    """An event the table does not define in the current state (a local programming error)."""


def action_for(event: Event, state: State) -> str:
    """The action PS3.8 table 9-10 prescribes, or `StateError`."""
    try:
        return TABLE[(event, state)]
    except KeyError:
        raise StateError(f"{event.name} ({event.value}) is not defined in {state.name}") from None

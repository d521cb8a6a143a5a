"""python -m bench.pynetdicom_scp PORT FOLDER: a bare pynetdicom storage SCP, the ceiling of the
DICOM library openpacs is built on.

One process, every storage SOP class (and C-ECHO), 1 MB maximum PDU, each C-STORE spooled
to a file (in TMPDIR) by pynetdicom's chunked receive and renamed into FOLDER: no header
parsing, no index, no fsync.
Whatever openpacs does per instance comes on top of this, so the gap between the two is
openpacs's own cost and the gap between this and storescp is the library's.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from pynetdicom import AE, AllStoragePresentationContexts, _config, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

_config.STORE_RECV_CHUNKED_DATASET = True
MAX_PDU = 1 << 20


def main(argv: list[str]) -> None:
    port, folder = int(argv[0]), Path(argv[1])

    def store(event: Any) -> int:
        spooled = Path(event.dataset_path)
        os.replace(spooled, folder / f"{event.request.AffectedSOPInstanceUID}.dcm")
        return 0x0000

    ae = AE("PYNETDICOM")
    ae.maximum_pdu_size = MAX_PDU
    ae.supported_contexts = AllStoragePresentationContexts
    ae.add_supported_context(Verification)  # the benchmark's readiness check
    ae.require_called_aet = False
    ae.start_server(("127.0.0.1", port), evt_handlers=[(evt.EVT_C_STORE, store)], block=True)


if __name__ == "__main__":
    main(sys.argv[1:])

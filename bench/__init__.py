"""Benchmarks of openpacs side by side with Orthanc and DCMTK's storescp (issue 6), and the
PostgreSQL scale figures of issue 3. Run with ``python -m bench``; see ``bench/__main__.py``.

The harness reuses the test corpus generators (``tests/support/corpus.py``), so the repository
root must be importable: it is put on ``sys.path`` here.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / "bench"
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

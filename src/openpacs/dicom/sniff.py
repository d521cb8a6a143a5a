"""Tell DICOM files from other files by their first bytes, whatever their name.

A Part 10 file (PS3.10 7.1) has a 128-byte preamble then ``DICM``; a DICOMDIR is a Part 10
file whose Media Storage SOP Class is the Media Storage Directory Storage class (PS3.10 8.2).
Files that some writers save without the preamble begin with the file meta group (0002,0000)
or (0002,0001) in explicit VR little endian: they are Part 10 files too.
"""

from __future__ import annotations

from typing import Literal

HEAD_BYTES = 1024
"""How much of a file `sniff` needs: the preamble, the prefix and the start of the file meta."""

MEDIA_DIRECTORY_CLASS = b"1.2.840.10008.1.3.10"
_PREFIX = b"DICM"
_META_GROUP_STARTS = (b"\x02\x00\x00\x00UL", b"\x02\x00\x01\x00OB")

Kind = Literal["part10", "dicomdir", "other"]


def sniff(head: bytes) -> Kind:
    """The kind of file whose first `HEAD_BYTES` bytes (or all, if shorter) are `head`."""
    if head[128:132] == _PREFIX:
        meta = head[132:]
    elif head.startswith(_META_GROUP_STARTS):
        meta = head
    else:
        return "other"
    # The Media Storage SOP Class UID (0002,0002) follows the group length and the version.
    start = meta.find(b"\x02\x00\x02\x00UI")
    if start >= 0:
        length = int.from_bytes(meta[start + 6 : start + 8], "little")
        uid = meta[start + 8 : start + 8 + length].rstrip(b"\x00 ")
        if uid == MEDIA_DIRECTORY_CLASS:
            return "dicomdir"
    return "part10"

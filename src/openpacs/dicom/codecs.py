"""What this installation can decode: pydicom's pixel decoders and the plugins behind them.

Storing never needs a decoder (instances are kept as received); converting to another transfer
syntax and rendering do. `openpacs check` reports this, so a missing plugin is seen at set-up
and not at the first C-GET of a JPEG-LS study.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydicom.pixels import get_decoder
from pydicom.uid import UID


@dataclass(frozen=True)
class SyntaxSupport:
    uid: str
    name: str
    compressed: bool
    decodable: bool
    plugins: tuple[str, ...]
    """Decoder plugins available for a compressed syntax (empty for native ones)."""


def syntax_support(uids: Iterable[str]) -> list[SyntaxSupport]:
    """For each transfer syntax, whether its pixel data can be decoded here, and by what."""
    support = []
    for value in uids:
        uid = UID(value)
        plugins: tuple[str, ...]
        try:
            decoder = get_decoder(uid)
        except NotImplementedError:  # pydicom has no decoder for the syntax at all
            decodable, plugins = False, ()
        else:
            decodable, plugins = decoder.is_available, tuple(decoder.available_plugins)
        support.append(SyntaxSupport(str(uid), uid.name, uid.is_compressed, decodable, plugins))
    return support

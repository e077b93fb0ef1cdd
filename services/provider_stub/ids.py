"""A set of message ids in bounded memory."""

_CHUNK_BITS = 16
_CHUNK_MASK = (1 << _CHUNK_BITS) - 1


class IdSet:
    """A sparse bitmap of int64 ids: 8 KiB per 65,536 neighbouring ids.

    A mailing's message ids are consecutive, so a million of them take 128 KiB here, where a
    Python ``set`` of ints would take some 60 MB.
    """

    def __init__(self) -> None:
        self._chunks: dict[int, bytearray] = {}
        self.count = 0

    def add(self, item: int) -> bool:
        """Add ``item``; True if it was not there before."""
        chunk = self._chunks.get(item >> _CHUNK_BITS)
        if chunk is None:
            chunk = self._chunks[item >> _CHUNK_BITS] = bytearray(1 << (_CHUNK_BITS - 3))
        bit = item & _CHUNK_MASK
        byte, mask = bit >> 3, 1 << (bit & 7)
        if chunk[byte] & mask:
            return False
        chunk[byte] |= mask
        self.count += 1
        return True

    def __contains__(self, item: int) -> bool:
        chunk = self._chunks.get(item >> _CHUNK_BITS)
        bit = item & _CHUNK_MASK
        return chunk is not None and bool(chunk[bit >> 3] & (1 << (bit & 7)))

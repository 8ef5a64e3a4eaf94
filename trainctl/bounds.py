"""Size checks shared by the readers: a header that claims a huge size never makes us allocate it.

Every reader compares what a file *declares* (an IDX or ``.npy`` shape, a zip member's size, an
image's pixel count) with what is actually there, or with a documented budget, before it
allocates anything of that size; bytes are then read in bounded pieces, so even a lying
compressed stream costs at most what it really holds. Torch-free and numpy-free, so any module
may import it.
"""

from __future__ import annotations

from typing import IO

from trainctl.errors import TrainctlError

# The largest piece a reader allocates ahead of the bytes arriving; bigger requests are read
# piece by piece into a growing buffer, so a truncated stream stops the growth.
PIECE_BYTES = 64 * 2**20
# A Fortran-order (column-major) array's rows are strided, so it is read whole: up to this size.
MAX_FORTRAN_BYTES = 1024 * 2**20
# Pixels in one input image (Pillow's own bomb limit is 89 million; 64 million is 8000x8000).
MAX_IMAGE_PIXELS = 64_000_000
# A ``.keras`` member larger than this, and expanding more than MAX_ZIP_RATIO times its compressed
# size, is a zip bomb: saved Keras weights are float arrays that barely compress.
ZIP_RATIO_FLOOR_BYTES = 64 * 2**20
MAX_ZIP_RATIO = 100


def human(n: int | float) -> str:
    """``1.5 GB`` style sizes for messages."""
    value = float(n)
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} PB"  # pragma: no cover


def check_declared(declared: int, available: int, name: str, what: str, error: type[TrainctlError]) -> None:
    """Refuse a header whose declared payload is larger than the bytes the file holds."""
    if declared > available:
        raise error(
            f"{name}: the header declares {what} ({human(declared)}), but the file holds only "
            f"{human(available)} after it (file truncated or header corrupt)"
        )


def read_exact(fh: IO[bytes], nbytes: int) -> bytearray:
    """Up to ``nbytes`` from ``fh``; allocation grows only as bytes arrive (a short result means EOF)."""
    if nbytes <= PIECE_BYTES:
        buf = bytearray(nbytes)
        view = memoryview(buf)
        got = 0
        while got < nbytes:
            more = fh.readinto(view[got:])  # type: ignore[attr-defined]
            if not more:
                break
            got += more
        del view
        if got < nbytes:
            del buf[got:]
        return buf
    out = bytearray()
    while len(out) < nbytes:
        piece = fh.read(min(PIECE_BYTES, nbytes - len(out)))
        if not piece:
            break
        out += piece
    return out


def check_pixels(width: int, height: int, name: str, error: type[TrainctlError]) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise error(
            f"{name}: the image declares {width}x{height} = {width * height:,} pixels; expected at most "
            f"{MAX_IMAGE_PIXELS:,} (a decompression bomb, or resize it first)"
        )


def check_zip_member(file_size: int, compress_size: int, name: str, error: type[TrainctlError]) -> None:
    """Refuse a member that declares an expansion no saved model has (see :data:`MAX_ZIP_RATIO`)."""
    if file_size > ZIP_RATIO_FLOOR_BYTES and file_size > MAX_ZIP_RATIO * max(compress_size, 1):
        raise error(
            f"{name}: the member declares {human(file_size)} from {human(compress_size)} compressed "
            f"(more than {MAX_ZIP_RATIO}x): refusing a zip bomb"
        )

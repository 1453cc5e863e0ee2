"""The media folder: photos and files people send, stored by content hash,
readable by the service's user only; what is sent as a photo must be a
picture by its content, whatever the channel."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

MAX_BYTES = 20 * 1024 * 1024
# Attachments the channels send as documents (a printable PDF); anything else goes as a photo.
DOCUMENT_SUFFIXES = frozenset({".pdf", ".doc", ".docx", ".xls", ".xlsx", ".csv", ".txt", ".zip"})


# The brands of an ISO media file (`ftyp`) that hold a HEIC / HEIF picture.
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
)
_HEAD = 16


class MediaError(Exception):
    """The file cannot be taken (missing, unreadable, too large)."""


class NotAnImage(MediaError):
    """A file claimed to be a photo whose content is no picture."""


def is_document(path: str) -> bool:
    return Path(path).suffix.lower() in DOCUMENT_SUFFIXES


def is_image(head: bytes) -> bool:
    """Whether a file's first bytes are a JPEG, PNG, GIF, WebP or HEIC picture's."""
    return (
        head.startswith((b"\xff\xd8", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a"))
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or (head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS)
    )


def store_file(media_dir: Path, source: Path, *, image: bool = False) -> str:
    """Copy `source` into the media folder under its SHA-256; return the path
    relative to the folder. The same content is stored once. With `image` (it
    was sent as a photo) content that is no picture is refused."""
    try:
        size = source.stat().st_size
        if not source.is_file():
            raise MediaError("not a file")
        if size > MAX_BYTES:
            raise MediaError("too large")
        digest = hashlib.sha256()
        with source.open("rb") as handle:
            if image and not is_image(handle.read(_HEAD)):
                raise NotAnImage("not a picture")
            handle.seek(0)
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise MediaError(str(exc)) from None
    name = digest.hexdigest()
    relative = Path(name[:2]) / (name + source.suffix.lower()[:10])
    write_once(media_dir, relative, lambda temporary: shutil.copyfile(source, temporary))
    return relative.as_posix()


def store_bytes(media_dir: Path, content: bytes, suffix: str, *, image: bool = False) -> str:
    """Keep `content` in the media folder under its SHA-256, like `store_file`."""
    if len(content) > MAX_BYTES:
        raise MediaError("too large")
    if image and not is_image(content[:_HEAD]):
        raise NotAnImage("not a picture")
    name = hashlib.sha256(content).hexdigest()
    relative = Path(name[:2]) / (name + suffix.lower()[:10])
    write_once(media_dir, relative, lambda temporary: temporary.write_bytes(content))
    return relative.as_posix()


def write_once(media_dir: Path, relative: Path, fill: Callable[[Path], object]) -> None:
    """Create `media_dir / relative` once, readable by its owner only: `fill`
    writes a temporary file beside it, which then takes its name."""
    target = media_dir / relative
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(media_dir, 0o700)
    temporary = target.with_name(target.name + ".part")
    fill(temporary)
    os.chmod(temporary, 0o600)
    os.replace(temporary, target)

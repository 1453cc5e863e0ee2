"""The media folder: a file claimed to be a photo is one by its content."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.media import NotAnImage, store_bytes, store_file

PICTURES = {
    "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF",
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "gif": b"GIF89a\x01\x00\x01\x00",
    "webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    "heic": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
}


@pytest.mark.parametrize("kind", sorted(PICTURES))
def test_pictures_are_stored_as_photos(tmp_path: Path, kind: str) -> None:
    source = tmp_path / f"p.{kind}"
    source.write_bytes(PICTURES[kind] + b"rest of the picture")
    stored = store_file(tmp_path / "media", source, image=True)
    assert (tmp_path / "media" / stored).read_bytes() == source.read_bytes()
    assert store_bytes(tmp_path / "media", PICTURES[kind], ".jpg", image=True)


@pytest.mark.parametrize(
    "content", [b"just some notes\n", b"%PDF-1.7\n", b"", b"\xef\xbb\xbf\xe9\x9a\x90\xe6\x82\xa3"]
)
def test_other_files_claimed_as_photos_are_refused_and_not_kept(
    tmp_path: Path, content: bytes
) -> None:
    source = tmp_path / "photo.jpg"
    source.write_bytes(content)
    with pytest.raises(NotAnImage):
        store_file(tmp_path / "media", source, image=True)
    with pytest.raises(NotAnImage):
        store_bytes(tmp_path / "media", content, ".jpg", image=True)
    assert not (tmp_path / "media").exists() or not any((tmp_path / "media").rglob("*.*"))


def test_files_not_claimed_as_photos_are_taken_as_they_are(tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_bytes(b"just some notes\n")
    assert store_file(tmp_path / "media", source).endswith(".txt")

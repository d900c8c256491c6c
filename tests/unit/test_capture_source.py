"""capture.source: a file is mapped and walked in place, other inputs are read whole, and the
messages found are the same either way."""

from __future__ import annotations

import mmap
from pathlib import Path

import pytest

from siptool.capture import RawMessage, iter_input
from siptool.capture.source import open_source
from tests.support.paths import CAPTURES

CAPTURE_FILES = sorted(CAPTURES.glob("*.pcap*"))


def summary(items: list[object]) -> list[tuple[str, int, bytes]]:
    return [
        (f"{m.frame} {m.src}>{m.dst}", m.offset, m.data) for m in items if isinstance(m, RawMessage)
    ]


@pytest.mark.parametrize("path", CAPTURE_FILES, ids=lambda p: p.name)
def test_a_mapped_capture_gives_what_its_bytes_give(path: Path) -> None:
    with open_source(str(path)) as source:
        assert isinstance(source.data, mmap.mmap)
        mapped = list(iter_input(source.data, release=source.release))
    whole = list(iter_input(path.read_bytes()))
    assert summary(mapped) == summary(whole)
    assert [str(p) for p in mapped if not isinstance(p, RawMessage)] == [
        str(p) for p in whole if not isinstance(p, RawMessage)
    ]
    assert summary(mapped)  # every shipped capture holds messages


def test_text_in_a_mapped_file_is_split_as_text(tmp_path: Path) -> None:
    path = tmp_path / "one.txt"
    path.write_bytes(b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n")
    with open_source(str(path)) as source:
        items = list(iter_input(source.data))
    assert [m.data.split(b"\r\n")[0] for m in items if isinstance(m, RawMessage)] == [
        b"OPTIONS sip:a@b SIP/2.0"
    ]


def test_an_empty_file_is_read_not_mapped(tmp_path: Path) -> None:
    path = tmp_path / "empty.pcap"
    path.write_bytes(b"")
    with open_source(str(path)) as source:
        assert source.data == b""
        source.release(1 << 30)  # nothing mapped: nothing to drop, no error


def test_release_drops_only_whole_steps_behind_the_walk(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"\0" * (40 << 20))
    with open_source(str(path)) as source:
        source.release(1 << 20)  # under one step: kept
        assert source._released == 0
        source.release((20 << 20) + 5)
        assert source._released == 20 << 20  # page-aligned, below the offset
        assert source.data[:4] == b"\0\0\0\0"  # a dropped page of a file mapping reads back


def test_a_missing_file_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError), open_source(str(tmp_path / "nope.pcap")):
        pass

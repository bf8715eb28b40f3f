"""The marker in an uploaded file's notes, and when a marked file is the recording a job holds."""

from __future__ import annotations

from recstore.clients.dracoon_rooms import StoredFile
from recstore.clients.s3 import ObjectInfo
from recstore.transfer.transferer import MAX_NOTES, marker_for, same_recording, with_etag

ETAG = '"9b2cf535f27731c974343645a3985328-12"'


def source(etag: str = ETAG, size: int = 100) -> ObjectInfo:
    return ObjectInfo("recordings", "rec/talk.mp4", size, etag)


def stored(notes: str, size: int = 100) -> StoredFile:
    return StoredFile(1, "talk.mp4", size, notes)


def test_a_marker_names_job_and_source_and_fits_dracoons_notes() -> None:
    marker = marker_for("acme.example/42", "recordings", "rec/talk.mp4")
    assert marker == "recstore job=acme.example/42 source=s3://recordings/rec/talk.mp4"
    assert with_etag(marker, ETAG) == marker + " etag=9b2cf535f27731c974343645a3985328-12"
    long_key = "rec/" + "x" * 1000 + ".mp4"
    long = marker_for("acme.example/42", "recordings", long_key)
    assert len(with_etag(long, ETAG)) <= MAX_NOTES
    assert long == marker_for("acme.example/42", "recordings", long_key)  # stable
    assert long != marker_for("acme.example/42", "recordings", long_key + "2")


def test_the_same_recording_is_the_same_etag_while_the_source_exists() -> None:
    marker = marker_for("acme.example/42", "recordings", "rec/talk.mp4")
    held = stored(with_etag(marker, ETAG))
    assert same_recording(held, marker, source())
    assert not same_recording(held, marker, source(etag='"0123"'))  # a new recording
    assert same_recording(held, marker, None)  # gone: removed after an earlier, complete run


def test_a_marker_without_etag_counts_only_once_the_source_is_gone() -> None:
    marker = marker_for("acme.example/42", "recordings", "rec/talk.mp4")
    assert not same_recording(stored(marker), marker, source())  # uploaded again, not lost
    assert same_recording(stored(marker), marker, None)


def test_a_longer_key_with_the_same_start_is_another_source() -> None:
    marker = marker_for("acme.example/42", "recordings", "rec/talk.mp4")
    other = marker_for("acme.example/42", "recordings", "rec/talk.mp4.bak")
    assert not same_recording(stored(with_etag(other, ETAG)), marker, source())
    assert not same_recording(stored(with_etag(other, ETAG)), marker, None)

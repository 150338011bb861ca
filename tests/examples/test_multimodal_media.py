"""The demo's media and analysis: real files in, correct answers out, field changes stay separate."""

from __future__ import annotations

import hashlib
import wave
from pathlib import Path

import numpy as np
import pytest

from metaxy._demo.analysis import decode_audio, detect_faces, loudness_dbfs, split_chunks, transcribe
from metaxy._demo.media import CHANNELS, FRAME_SIZE, FRAMES, MediaLibrary, read_png, read_wav, scan, write_png


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def library(tmp_path: Path) -> MediaLibrary:
    lib = MediaLibrary.open(tmp_path / "media", seed=11)
    lib.add(12)
    return lib


def test_generated_files_are_standard_wav_and_png(library: MediaLibrary) -> None:
    clip = library.clips["clip_0005"]
    folder = clip.directory(library.root)
    assert folder == library.root / CHANNELS[5 % 4] / "clip_0005"
    with wave.open(str(folder / "audio.wav"), "rb") as src:  # the standard library can read it
        assert (src.getnchannels(), src.getsampwidth(), src.getframerate()) == (1, 2, 8000)
        assert 1.0 < src.getnframes() / src.getframerate() < 3.5
    png = (folder / "frames.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png.endswith(b"IEND\xaeB`\x82")
    assert read_png(folder / "frames.png").shape == (FRAME_SIZE, FRAME_SIZE * FRAMES)


def test_png_round_trip(tmp_path: Path) -> None:
    image = np.random.default_rng(0).integers(0, 256, (7, 13), dtype=np.uint8)
    write_png(tmp_path / "x.png", image)
    assert np.array_equal(read_png(tmp_path / "x.png"), image)


def test_png_reader_rejects_other_files(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"GIF89a....")
    with pytest.raises(ValueError, match="not a PNG"):
        read_png(tmp_path / "x.png")


def test_wav_reader_rejects_stereo(tmp_path: Path) -> None:
    with wave.open(str(tmp_path / "s.wav"), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 20)
    with pytest.raises(ValueError, match="mono 16-bit"):
        read_wav(tmp_path / "s.wav")


@pytest.mark.parametrize("decoder", ["1", "2"])
def test_transcripts_recover_the_sung_syllables(library: MediaLibrary, decoder: str) -> None:
    for vid, clip in library.clips.items():
        pcm, rate = read_wav(clip.directory(library.root) / "audio.wav")
        result = transcribe(decode_audio(pcm, decoder), rate)
        assert result["text"].split() == library.expected_words(vid), vid


def test_decoder_versions_differ_and_unknown_is_rejected(library: MediaLibrary) -> None:
    pcm, _ = read_wav(library.clips["clip_0000"].directory(library.root) / "audio.wav")
    v1, v2 = decode_audio(pcm, "1"), decode_audio(pcm, "2")
    assert abs(float(v2.mean())) < 1e-9 < abs(float(v1.mean()))  # v2 removes the DC offset
    assert float(np.abs(v2).max()) == pytest.approx(0.9)  # and peak-normalises
    with pytest.raises(ValueError, match="Unknown audio decoder version '3'"):
        decode_audio(pcm, "3")


def test_faces_are_found_exactly_where_they_were_drawn(library: MediaLibrary) -> None:
    for vid, clip in library.clips.items():
        frames = detect_faces(read_png(clip.directory(library.root) / "frames.png"))
        assert [f["face"] is not None for f in frames] == library.expected_faces(vid), vid


def test_chunks_cover_the_clip_and_report_loudness() -> None:
    signal = np.concatenate([np.zeros(4000), 0.5 * np.ones(4000), np.zeros(1000)])
    chunks = split_chunks(signal, 8000, chunk_s=0.5)
    assert [start for start, _ in chunks] == [0.0, 0.5, 1.0]
    assert sum(len(c) for _, c in chunks) == len(signal)
    assert loudness_dbfs(chunks[0][1]) == -120.0
    assert loudness_dbfs(chunks[1][1]) == pytest.approx(-6.02, abs=0.01)


def test_audio_and_frame_changes_touch_only_their_own_file(library: MediaLibrary) -> None:
    before = _provenance(library)
    library.change_audio(["clip_0001"])
    library.change_frames(["clip_0002"])
    after = _provenance(library)
    assert after["clip_0001"]["audio"] != before["clip_0001"]["audio"]
    assert after["clip_0001"]["frames"] == before["clip_0001"]["frames"]
    assert after["clip_0002"]["frames"] != before["clip_0002"]["frames"]
    assert after["clip_0002"]["audio"] == before["clip_0002"]["audio"]
    untouched = set(before) - {"clip_0001", "clip_0002"}
    assert all(after[v] == before[v] for v in untouched)


def test_scan_hashes_file_contents_and_follows_deletes_and_adds(library: MediaLibrary) -> None:
    library.delete(["clip_0003"])
    library.add(2)
    frame = scan(library.root)
    assert frame["video_id"].to_list() == sorted({*library.clips})
    row = frame.filter(frame["video_id"] == "clip_0012").to_dicts()[0]
    assert row["channel"] == CHANNELS[12 % 4]
    assert row["metaxy_provenance_by_field"]["audio"] == _sha(Path(row["audio_path"]))[:16]
    assert row["metaxy_provenance_by_field"]["frames"] == _sha(Path(row["frames_path"]))[:16]


def test_library_state_survives_reopening(library: MediaLibrary) -> None:
    library.change_audio(["clip_0004"])
    reopened = MediaLibrary.open(library.root)
    assert reopened.seed == 11 and reopened.next_index == 12
    assert reopened.clips["clip_0004"].audio_revision == 1
    assert reopened.expected_words("clip_0004") == library.expected_words("clip_0004")


def _provenance(library: MediaLibrary) -> dict[str, dict[str, str]]:
    frame = scan(library.root)
    return dict(zip(frame["video_id"].to_list(), frame["metaxy_provenance_by_field"].to_list(), strict=True))

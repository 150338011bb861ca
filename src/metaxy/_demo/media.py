"""Synthetic media for the demo: short WAV clips and PNG frame strips, generated with numpy.

Every clip is a directory ``<media>/<channel>/<video_id>/`` holding ``audio.wav`` (mono 16-bit PCM:
a few sung syllables such as "do re mi" separated by silence) and ``frames.png`` (an 8-bit grayscale
strip of ``FRAMES`` frames, some showing a bright square "face"). The audio and the frames come from
independent random streams keyed by ``(seed, video_id, revision)``, so re-rendering one of them
leaves the other byte-identical — exactly what field-level versioning needs to be demonstrated.

The WAV codec is the standard library's ``wave``; the PNG codec is ``zlib`` + ``struct``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import wave
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

__all__ = [
    "CHANNELS",
    "FRAMES",
    "FRAME_SIZE",
    "SAMPLE_RATE",
    "SYLLABLES",
    "Clip",
    "MediaLibrary",
    "iter_clip_dirs",
    "read_png",
    "read_wav",
    "scan",
    "synthesize_audio",
    "synthesize_frames",
    "write_png",
    "write_wav",
]

SAMPLE_RATE = 8_000
"""Samples per second of every clip."""
FRAMES = 8
"""Frames per strip."""
FRAME_SIZE = 32
"""Frames are ``FRAME_SIZE`` x ``FRAME_SIZE`` pixels."""
CHANNELS = ("news", "sports", "music", "vlog")
"""Clip ``i`` belongs to channel ``CHANNELS[i % 4]``."""
SYLLABLES = {"do": 262.0, "re": 294.0, "mi": 330.0, "fa": 349.0, "so": 392.0, "la": 440.0, "ti": 494.0}
"""The "words" of the clips: one sine tone each (Hz)."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_STATE_FILE = "library.json"


# --- codecs ------------------------------------------------------------------------------------
def write_wav(path: Path, samples: npt.NDArray[np.int16], sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono 16-bit PCM."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples.astype("<i2").tobytes())


def read_wav(path: Path) -> tuple[npt.NDArray[np.int16], int]:
    """Read mono 16-bit PCM: ``(samples, sample_rate)``.

    Raises:
        ValueError: the file is not mono 16-bit PCM.
    """
    with wave.open(str(path), "rb") as src:
        if src.getnchannels() != 1 or src.getsampwidth() != 2:
            raise ValueError(
                f"{path}: expected mono 16-bit PCM, got {src.getnchannels()} channel(s) of "
                f"{8 * src.getsampwidth()} bits. Hint: the demo reads the clips it generates."
            )
        data = src.readframes(src.getnframes())
        return np.frombuffer(data, dtype="<i2").astype(np.int16), src.getframerate()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def write_png(path: Path, image: npt.NDArray[np.uint8]) -> None:
    """Write an 8-bit grayscale image (2-D array) as PNG."""
    height, width = image.shape
    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(height))  # filter type 0 per row
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit, grayscale
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw, 6))
        + _png_chunk(b"IEND", b"")
    )


def read_png(path: Path) -> npt.NDArray[np.uint8]:
    """Read an 8-bit grayscale, non-interlaced PNG whose rows use filter type 0 (what ``write_png`` writes).

    Raises:
        ValueError: not such a PNG.
    """
    data = path.read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError(f"{path}: not a PNG file (bad signature).")
    pos, idat, width, height = len(_PNG_SIGNATURE), b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, payload = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", payload)
            if (depth, color, interlace) != (8, 0, 0):
                raise ValueError(f"{path}: only 8-bit grayscale non-interlaced PNGs are supported.")
        elif kind == b"IDAT":
            idat += payload
    rows = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, width + 1)
    if rows[:, 0].any():
        raise ValueError(f"{path}: PNG row filters other than 'none' are not supported.")
    return rows[:, 1:].copy()


# --- synthesis ---------------------------------------------------------------------------------
def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def synthesize_audio(seed: int, video_id: str, revision: int) -> tuple[npt.NDArray[np.int16], list[str]]:
    """A clip of 3-6 sung syllables with silence between them: ``(pcm, words)``."""
    rng = _rng(seed, video_id, "audio", revision)
    words = [str(w) for w in rng.choice(list(SYLLABLES), size=int(rng.integers(3, 7)))]
    gain = float(rng.uniform(0.2, 0.8))  # clips differ in loudness...
    offset = float(rng.uniform(-0.05, 0.05))  # ...and carry a small DC offset (decoder v2 removes it)
    parts = [np.zeros(int(0.1 * SAMPLE_RATE))]
    for word in words:
        n = int(rng.uniform(0.15, 0.3) * SAMPLE_RATE)
        t = np.arange(n) / SAMPLE_RATE
        envelope = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)  # 20 ms fade in/out
        parts.append(envelope * np.sin(2 * np.pi * SYLLABLES[word] * t))
        parts.append(np.zeros(int(rng.uniform(0.08, 0.15) * SAMPLE_RATE)))
    signal = gain * np.concatenate(parts) + offset + rng.normal(0.0, 0.005, sum(len(p) for p in parts))
    return (np.clip(signal, -1.0, 1.0) * 32767).astype(np.int16), words


def reencode(pcm: npt.NDArray[np.int16], seed: int, video_id: str, encoding: int) -> npt.NDArray[np.int16]:
    """A lossy re-encoding of the same sound: requantised with a fresh +-2 LSB dither (every sample may
    change by a few parts in 32768, far below what the transcriber hears)."""
    rng = _rng(seed, video_id, "encoding", encoding)
    dither = rng.integers(-2, 3, len(pcm))
    return np.clip(pcm.astype(np.int32) + dither, -32768, 32767).astype(np.int16)


def synthesize_frames(seed: int, video_id: str, revision: int) -> tuple[npt.NDArray[np.uint8], list[bool]]:
    """A strip of ``FRAMES`` frames side by side: ``(image, face_visible_per_frame)``."""
    rng = _rng(seed, video_id, "frames", revision)
    size = FRAME_SIZE
    gradient = np.linspace(20, 80, size)[None, :] * np.ones((size, 1))
    frames, visible = [], []
    for _ in range(FRAMES):
        frame = gradient + rng.normal(0, 6, (size, size))
        face = bool(rng.random() < 0.6)
        if face:
            side = int(rng.integers(6, 12))
            y, x = (int(v) for v in rng.integers(0, size - side, 2))
            frame[y : y + side, x : x + side] = 230 + rng.normal(0, 4, (side, side))
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
        visible.append(face)
    return np.concatenate(frames, axis=1), visible


# --- the library on disk -----------------------------------------------------------------------
@dataclass
class Clip:
    """One clip of the library and the revisions its audio and frames were rendered from."""

    video_id: str
    channel: str
    audio_revision: int = 0
    frames_revision: int = 0
    audio_encoding: int = 0  # re-encodings of the same sound (other bytes, the same words)

    def directory(self, root: Path) -> Path:
        return root / self.channel / self.video_id


@dataclass
class MediaLibrary:
    """The clips under ``root`` (``<root>/<channel>/<video_id>/{audio.wav,frames.png}``).

    The library remembers, in ``library.json``, the seed and each clip's revisions, so later
    mutations continue from the files on disk.
    """

    root: Path
    seed: int = 0
    clips: dict[str, Clip] = field(default_factory=dict)
    next_index: int = 0

    # persistence
    @classmethod
    def open(cls, root: Path, seed: int = 0) -> MediaLibrary:
        """The library under ``root`` (an empty one with ``seed`` when there is none yet)."""
        state = root / _STATE_FILE
        if not state.exists():
            return cls(root=root, seed=seed)
        data = json.loads(state.read_text())
        clips = {c["video_id"]: Clip(**c) for c in data["clips"]}
        return cls(root=root, seed=data["seed"], clips=clips, next_index=data["next_index"])

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        clips = [vars(c) for c in sorted(self.clips.values(), key=lambda c: c.video_id)]
        state = {"seed": self.seed, "next_index": self.next_index, "clips": clips}
        (self.root / _STATE_FILE).write_text(json.dumps(state, indent=1))

    # rendering
    def render_audio(self, clip: Clip) -> list[str]:
        pcm, words = synthesize_audio(self.seed, clip.video_id, clip.audio_revision)
        if clip.audio_encoding:
            pcm = reencode(pcm, self.seed, clip.video_id, clip.audio_encoding)
        write_wav(clip.directory(self.root) / "audio.wav", pcm)
        return words

    def render_frames(self, clip: Clip) -> list[bool]:
        image, visible = synthesize_frames(self.seed, clip.video_id, clip.frames_revision)
        write_png(clip.directory(self.root) / "frames.png", image)
        return visible

    # mutations (each returns the affected video ids, sorted)
    def add(self, count: int, progress: Callable[[], None] | None = None) -> list[str]:
        """Render ``count`` new clips."""
        added = []
        for _ in range(count):
            index = self.next_index
            self.next_index += 1
            clip = Clip(video_id=f"clip_{index:04d}", channel=CHANNELS[index % len(CHANNELS)])
            self.clips[clip.video_id] = clip
            self.render_audio(clip)
            self.render_frames(clip)
            added.append(clip.video_id)
            if progress is not None:
                progress()
        self.save()
        return sorted(added)

    def change_audio(self, video_ids: list[str]) -> list[str]:
        """Re-render the audio of these clips (their frames stay byte-identical)."""
        for vid in video_ids:
            clip = self.clips[vid]
            clip.audio_revision += 1
            self.render_audio(clip)
        self.save()
        return sorted(video_ids)

    def reencode_audio(self, video_ids: list[str]) -> list[str]:
        """Re-encode the audio of these clips: other bytes, the same sound (the same words are sung)."""
        for vid in video_ids:
            clip = self.clips[vid]
            clip.audio_encoding += 1
            self.render_audio(clip)
        self.save()
        return sorted(video_ids)

    def change_frames(self, video_ids: list[str]) -> list[str]:
        """Re-render the frames of these clips (their audio stays byte-identical)."""
        for vid in video_ids:
            clip = self.clips[vid]
            clip.frames_revision += 1
            self.render_frames(clip)
        self.save()
        return sorted(video_ids)

    def delete(self, video_ids: list[str]) -> list[str]:
        """Remove these clips from disk."""
        for vid in video_ids:
            shutil.rmtree(self.clips.pop(vid).directory(self.root))
        self.save()
        return sorted(video_ids)

    def expected_words(self, video_id: str) -> list[str]:
        """The syllables clip ``video_id`` sings (ground truth for the transcript)."""
        clip = self.clips[video_id]
        return synthesize_audio(self.seed, clip.video_id, clip.audio_revision)[1]

    def expected_faces(self, video_id: str) -> list[bool]:
        """Whether each frame of clip ``video_id`` shows a face (ground truth for face detection)."""
        clip = self.clips[video_id]
        return synthesize_frames(self.seed, clip.video_id, clip.frames_revision)[1]


# --- scanning ----------------------------------------------------------------------------------
def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def iter_clip_dirs(root: Path) -> Iterator[Path]:
    """Clip directories under ``root`` (those holding both media files), sorted by video id."""
    found = [d for d in root.glob("*/*") if (d / "audio.wav").is_file() and (d / "frames.png").is_file()]
    yield from sorted(found, key=lambda d: d.name)


def scan(root: Path) -> pl.DataFrame:
    """One row per clip on disk with a content hash per field as its provenance.

    Columns: ``video_id``, ``channel``, ``audio_path``, ``frames_path``, ``duration_s`` and
    ``metaxy_provenance_by_field`` = ``{"audio": sha256(audio.wav), "frames": sha256(frames.png)}``.
    """
    rows = []
    for d in iter_clip_dirs(root):
        audio, frames = d / "audio.wav", d / "frames.png"
        try:
            with wave.open(str(audio), "rb") as src:
                duration = src.getnframes() / src.getframerate()
        except (wave.Error, EOFError) as exc:
            raise ValueError(
                f"{audio}: not a readable WAV file ({exc}). Hint: delete the clip directory or regenerate it."
            ) from exc
        rows.append(
            {
                "video_id": d.name,
                "channel": d.parent.name,
                "audio_path": str(audio),
                "frames_path": str(frames),
                "duration_s": round(duration, 3),
                "metaxy_provenance_by_field": {"audio": _digest(audio), "frames": _digest(frames)},
            }
        )
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        "video_id": pl.String,
        "channel": pl.String,
        "audio_path": pl.String,
        "frames_path": pl.String,
        "duration_s": pl.Float64,
        "metaxy_provenance_by_field": pl.Struct({"audio": pl.String, "frames": pl.String}),
    }
    return pl.DataFrame(rows, schema=schema)

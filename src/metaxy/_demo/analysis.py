"""The work the demo's assets do on the media files: cheap, deterministic, and real.

* ``decode_audio``: PCM to floats; the *audio decoder version* is the code version of the
  ``video/raw`` field ``audio`` (version 2 removes the DC offset and peak-normalises).
* ``split_chunks``: fixed-length audio chunks with their loudness (RMS in dBFS).
* ``transcribe``: voice-activity segments from the RMS envelope, each labelled with the syllable
  whose pitch is nearest to the segment's spectral peak ("do re mi").
* ``detect_faces``: per frame, mean brightness, contrast and the bounding box of bright pixels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from metaxy._demo.media import FRAME_SIZE, SYLLABLES

__all__ = ["AUDIO_DECODERS", "decode_audio", "detect_faces", "loudness_dbfs", "split_chunks", "transcribe"]

Signal = npt.NDArray[np.float64]

AUDIO_DECODERS = {"1": "plain PCM", "2": "DC offset removed, peak-normalised"}
"""Known code versions of the ``audio`` field and what each decoder does."""


def decode_audio(pcm: npt.NDArray[np.int16], version: str) -> Signal:
    """PCM samples as floats in [-1, 1], decoded the way ``version`` of the audio code does it.

    Raises:
        ValueError: unknown decoder version.
    """
    signal = pcm.astype(np.float64) / 32768.0
    if version == "1":
        return signal
    if version == "2":
        centred = signal - signal.mean()
        peak = float(np.abs(centred).max()) or 1.0
        return centred * (0.9 / peak)
    raise ValueError(
        f"Unknown audio decoder version {version!r}. Hint: use one of {', '.join(sorted(AUDIO_DECODERS))}."
    )


def loudness_dbfs(signal: Signal) -> float:
    """RMS level in dB relative to full scale (-120 for silence)."""
    rms = math.sqrt(float(np.mean(signal**2))) if len(signal) else 0.0
    return round(20 * math.log10(rms), 2) if rms > 1e-6 else -120.0


def split_chunks(signal: Signal, sample_rate: int, chunk_s: float = 0.5) -> list[tuple[float, Signal]]:
    """Consecutive chunks of ``chunk_s`` seconds (the last one may be shorter): ``[(start_s, chunk)]``."""
    step = int(chunk_s * sample_rate)
    return [(round(i / sample_rate, 3), signal[i : i + step]) for i in range(0, len(signal), step)]


def _frame_rms(signal: Signal, hop: int) -> Signal:
    usable = len(signal) // hop * hop
    frames = (signal[:usable] - signal[:usable].mean()).reshape(-1, hop)
    return np.sqrt((frames**2).mean(axis=1))


def transcribe(signal: Signal, sample_rate: int) -> dict[str, Any]:
    """Segment voiced regions and name each by its pitch.

    Returns:
        ``{"text": "do mi la", "segments": [{"start_s", "end_s", "word", "pitch_hz"}], "loudness_dbfs"}``.
    """
    hop = sample_rate // 100  # 10 ms
    rms = _frame_rms(signal, hop)
    threshold = 0.3 * float(np.percentile(rms, 95)) if len(rms) else 0.0
    voiced = np.concatenate([[False], rms > threshold, [False]])
    edges = np.flatnonzero(voiced[1:] != voiced[:-1]).reshape(-1, 2)
    names, pitches = list(SYLLABLES), np.array(list(SYLLABLES.values()))
    segments = []
    for start, end in edges:
        if end - start < 5:  # shorter than 50 ms: a click, not a syllable
            continue
        chunk = signal[start * hop : end * hop]
        spectrum = np.abs(np.fft.rfft((chunk - chunk.mean()) * np.hanning(len(chunk))))
        peak = float(np.fft.rfftfreq(len(chunk), 1 / sample_rate)[int(spectrum.argmax())])
        word = names[int(np.abs(pitches - peak).argmin())]
        segments.append(
            {"start_s": start * hop / sample_rate, "end_s": end * hop / sample_rate, "word": word, "pitch_hz": peak}
        )
    return {
        "text": " ".join(s["word"] for s in segments),
        "segments": segments,
        "loudness_dbfs": loudness_dbfs(signal),
    }


def detect_faces(strip: npt.NDArray[np.uint8], threshold: int = 200, min_pixels: int = 16) -> list[dict[str, Any]]:
    """Per frame of a strip: brightness, contrast and the box ``[x0, y0, x1, y1]`` of a bright region.

    A frame "shows a face" when at least ``min_pixels`` pixels exceed ``threshold``.
    """
    size = strip.shape[0]
    if size != FRAME_SIZE or strip.shape[1] % size:
        raise ValueError(f"Expected a strip of {FRAME_SIZE}x{FRAME_SIZE} frames, got an image of shape {strip.shape}.")
    out = []
    for i in range(strip.shape[1] // size):
        frame = strip[:, i * size : (i + 1) * size]
        ys, xs = np.nonzero(frame > threshold)
        box = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1] if len(xs) >= min_pixels else None
        out.append(
            {
                "frame": i,
                "brightness": round(float(frame.mean()), 2),
                "contrast": round(float(frame.std()), 2),
                "face": box,
            }
        )
    return out

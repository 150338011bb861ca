"""Hash primitives: the static SHA-256 used for definitions and the row-level algorithms."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from enum import StrEnum

__all__ = ["DEFAULT_TRUNCATION_LENGTH", "HashAlgorithm", "hash_string", "sha256_hex", "truncation_length"]

DEFAULT_TRUNCATION_LENGTH = 8


class HashAlgorithm(StrEnum):
    """Row-level hash algorithms. md5/sha256 render as lower-case hex; xxhash32/xxhash64/wyhash as
    the unsigned integer in decimal (seed 0).

    Only algorithms some store computes are members: the published ``farmhash`` is not (no
    backend computes it; docs/differences.md). An unknown name raises
    :class:`~metaxy.errors.HashAlgorithmNotSupportedError` (a ``ValueError``).
    """

    XXHASH64 = "xxhash64"
    XXHASH32 = "xxhash32"
    WYHASH = "wyhash"
    SHA256 = "sha256"
    MD5 = "md5"

    @classmethod
    def _missing_(cls, value: object) -> HashAlgorithm:
        from metaxy.errors import HashAlgorithmNotSupportedError

        raise HashAlgorithmNotSupportedError(
            f"Hash algorithm {value!r} is not supported. Supported: {', '.join(m.value for m in cls)}. "
            "Hint: set hash_algorithm to one of them (md5, the default, works on every store)."
        )


def truncation_length() -> int:
    """The configured hash prefix length (``hash_truncation_length``, default 8), as provided by the
    configuration layer (see :mod:`metaxy.models.settings`)."""
    from metaxy.models.settings import current_settings

    return current_settings().hash_truncation_length


def sha256_hex(parts: Iterable[str], length: int | None = None) -> str:
    """SHA-256 over the UTF-8 bytes of ``parts`` fed one after another (no separators), truncated."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
    return h.hexdigest()[: length or truncation_length()]


def hash_string(algorithm: HashAlgorithm | str, text: str, length: int | None = None) -> str:
    """Hash one string with a row-level algorithm, rendered and truncated as metaxy stores it.

    This is the reference used by tests and small in-Python computations; stores hash in bulk.
    """
    algorithm = HashAlgorithm(algorithm)
    data = text.encode("utf-8")
    if algorithm is HashAlgorithm.MD5:
        out = hashlib.md5(data).hexdigest()
    elif algorithm is HashAlgorithm.SHA256:
        out = hashlib.sha256(data).hexdigest()
    elif algorithm is HashAlgorithm.XXHASH64:
        import xxhash

        out = str(xxhash.xxh64_intdigest(data))
    elif algorithm is HashAlgorithm.XXHASH32:
        import xxhash

        out = str(xxhash.xxh32_intdigest(data))
    else:
        from metaxy.errors import HashAlgorithmNotSupportedError

        raise HashAlgorithmNotSupportedError(
            f"Hash algorithm '{algorithm.value}' has no pure-Python reference. "
            "Hint: use md5, sha256, xxhash32 or xxhash64."
        )
    return out[: length or truncation_length()]

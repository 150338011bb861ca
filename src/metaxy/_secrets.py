"""Secret masking: the one place that decides what a credential looks like and hides it.

Everything metaxy shows a person — ``mx config print``, ``repr``/``str`` of configs and stores,
``MetadataStore.display()``, error and warning messages, Dagster metadata and log lines — passes
through this module. Three rules find a secret:

* a **credential-like key** (``password``, ``token``, ``secret``, ``AWS_SECRET_ACCESS_KEY``,
  ``sas_token``, ``account_key``, ``api_key``, ``access_key`` ...): its value is masked in mappings
  (:func:`mask_mapping`) and in text where it is written as ``key=value``, ``key: value``,
  ``'key': 'value'`` or ``"key": "value"`` (:func:`mask_text`);
* the **password of a URI** (``postgresql://user:PASSWORD@host/db``, ``s3://KEY:SECRET@bucket``):
  masked wherever a URI appears in text;
* a **registered value**: a credential-like config value seen once (:func:`register_secret`, called
  when configs are validated) is masked wherever it appears later, even bare inside a driver's
  message.

The mask is :data:`MASK`. Nothing here imports a driver or pydantic at module level, so
``metaxy.errors`` can use it.

Example:
    >>> mask_text("postgresql://alice:hunter22@db:5432/meta?sslmode=require&password=hunter22")
    'postgresql://alice:***@db:5432/meta?sslmode=require&password=***'
    >>> mask_mapping({"AWS_REGION": "eu-west-1", "AWS_SECRET_ACCESS_KEY": "abc123xyz"})
    {'AWS_REGION': 'eu-west-1', 'AWS_SECRET_ACCESS_KEY': '***'}
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MASK",
    "REVEAL_SECRETS_CONTEXT_KEY",
    "is_secret_key",
    "mask_mapping",
    "mask_text",
    "mask_value",
    "register_secret",
    "register_secrets_in",
]

MASK = "***"
"""What a masked secret is replaced with."""

REVEAL_SECRETS_CONTEXT_KEY = "metaxy_reveal_secrets"
"""Pydantic serialisation context key: ``model_dump(mode="json", context={KEY: True})`` keeps secrets."""

# Substrings of a key (lower-cased, without separators) that make its value a credential.
_SECRET_KEY_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "credential",
    "apikey",
    "accesskey",
    "accountkey",
    "privatekey",
    "masterkey",
    "sharedkey",
    "signature",
    "authorization",
    "cookie",
    "sessionkey",
    "sas",
)
# Keys that contain a part above but are not credentials.
_NOT_SECRET_KEYS = frozenset({"tokenizer", "maxtokens", "tokenurl", "tokenendpoint", "pwdpath"})
# Registered values shorter than this are not masked in free text (too many false hits).
_MIN_REGISTERED_LENGTH = 6

_registered: set[str] = set()
_registered_lock = threading.Lock()
_registered_pattern: re.Pattern[str] | None = None

# A key made of word characters, dots and dashes (``AWS_SECRET_ACCESS_KEY``, ``azure.sas-token``).
_KEY = r"(?<![A-Za-z0-9_.\-])[A-Za-z_][A-Za-z0-9_.\-]*"
# ``key = value`` / ``key: value`` / ``key=value`` (TOML, query strings, DSNs, YAML, logs). The
# value sits in a lookahead so that a match of a harmless key (``md:`` of ``md:db?token=x``) does
# not swallow a credential-like key written inside its value.
_ASSIGNMENT = re.compile(
    rf"(?P<key>{_KEY})\s*[=:]\s*(?=(?P<quote>[\"'])?(?P<value>(?(quote)(?:(?!(?P=quote)).)*|[^\s&;,'\"}}\])]+)))"
)
# ``'key': 'value'`` / ``"key": "value"`` (Python reprs, JSON).
_QUOTED_PAIR = re.compile(
    rf"(?P<kq>[\"'])(?P<key>{_KEY})(?P=kq)(?P<sep>\s*[:=]\s*)(?P<quote>[\"'])(?P<value>(?:\\.|(?!(?P=quote)).)*)(?P=quote)"
)
# ``scheme://user:password@host``: the password (which may hold ``/``, as AWS secret keys do) ends at
# the last ``@`` before a host.
_URI_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@'\"]*:)(?P<password>[^\s'\"]*)(?=@[^\s@'\"/]+)")


def _normalised(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def is_secret_key(key: object) -> bool:
    """Whether a setting named ``key`` holds a credential.

    Args:
        key: A mapping key or setting name, e.g. ``"AWS_SECRET_ACCESS_KEY"`` or ``"password"``.

    Returns:
        True for names containing password/secret/token/credential/api key/access key/... parts.

    Example:
        >>> is_secret_key("aws_session_token"), is_secret_key("AWS_REGION")
        (True, False)
    """
    if not isinstance(key, str):
        return False
    norm = _normalised(key)
    if norm in _NOT_SECRET_KEYS:
        return False
    if norm == "sas" or norm.endswith("sastoken") or norm.startswith("sas"):
        return True
    return any(part in norm for part in _SECRET_KEY_PARTS if part != "sas")


def register_secret(value: object) -> None:
    """Remember a credential so that :func:`mask_text` hides it wherever it appears later.

    Args:
        value: The secret. Non-strings and strings shorter than 6 characters are ignored.
    """
    global _registered_pattern
    if not isinstance(value, str):
        value = getattr(value, "get_secret_value", lambda: None)()
        if not isinstance(value, str):
            return
    value = value.strip()
    if len(value) < _MIN_REGISTERED_LENGTH or value == MASK:
        return
    with _registered_lock:
        if value in _registered:
            return
        _registered.add(value)
        # Longest first, so that a secret containing another is masked whole.
        alternatives = sorted(_registered, key=len, reverse=True)
        _registered_pattern = re.compile("|".join(re.escape(v) for v in alternatives))


def register_secrets_in(value: object, *, key: object = None) -> None:
    """Register every credential found in a (nested) config value.

    Values under credential-like keys are registered, and so are passwords inside URIs.

    Args:
        value: A mapping, sequence or scalar from a configuration.
        key: The key ``value`` was found under, if any.
    """
    if isinstance(value, Mapping):
        for k, v in value.items():
            register_secrets_in(v, key=k)
    elif callable(dump := getattr(value, "model_dump", None)) and not isinstance(value, type):  # pydantic
        register_secrets_in(dump(), key=key)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            register_secrets_in(item, key=key)
    elif isinstance(value, str):
        if is_secret_key(key):
            register_secret(value)
        for match in _URI_PASSWORD.finditer(value):
            register_secret(match.group("password"))
    elif key is not None and is_secret_key(key):
        register_secret(value)


def mask_value(key: object, value: Any) -> Any:
    """``value`` with its secrets masked: all of it under a credential-like ``key``.

    Mappings and sequences are masked recursively; strings pass through :func:`mask_text`; other
    scalars are returned as they are (unless the key is credential-like).

    Args:
        key: The key ``value`` is stored under (None for a list item or a top-level value).
        value: The value.

    Returns:
        A masked copy (the input is not changed).
    """
    if is_secret_key(key) and value is not None and not isinstance(value, Mapping | list | tuple):
        return MASK
    if isinstance(value, Mapping):
        return mask_mapping(value)
    if isinstance(value, list):
        return [mask_value(key, item) for item in value]
    if isinstance(value, tuple):
        return tuple(mask_value(key, item) for item in value)
    if isinstance(value, str):
        return mask_text(value)
    if hasattr(value, "get_secret_value"):
        return MASK
    return value


def mask_mapping(mapping: Mapping[Any, Any]) -> dict[Any, Any]:
    """A copy of ``mapping`` with credential-like keys' values and URI passwords masked.

    Args:
        mapping: A (nested) configuration mapping, e.g. ``storage_options``.

    Returns:
        A new ``dict``; nested mappings and lists are copied and masked too.
    """
    return {k: mask_value(k, v) for k, v in mapping.items()}


def _mask_assignments(text: str) -> str:
    spans = [
        (m.start("value"), m.end("value"))
        for m in _ASSIGNMENT.finditer(text)
        if m.group("value") and m.group("value") != MASK and is_secret_key(m.group("key"))
    ]
    if not spans:
        return text
    out, last = [], 0
    for start, end in spans:
        if start < last:  # inside a value masked already
            continue
        out.append(text[last:start])
        out.append(MASK)
        last = end
    out.append(text[last:])
    return "".join(out)


def _mask_quoted_pair(match: re.Match[str]) -> str:
    if not is_secret_key(match.group("key")):
        return match.group(0)
    kq, q = match.group("kq"), match.group("quote")
    return f"{kq}{match.group('key')}{kq}{match.group('sep')}{q}{MASK}{q}"


def mask_text(text: str) -> str:
    """``text`` with every secret it contains masked.

    Masks URI passwords (``scheme://user:***@host``), values written after credential-like keys
    (``password=***``, ``'AWS_SECRET_ACCESS_KEY': '***'``, ``token: ***``) and every registered
    secret.

    Args:
        text: Any text meant for a person: a message, a repr, a config dump.

    Returns:
        The masked text (``text`` itself when nothing was found).

    Example:
        >>> mask_text("clickhouse+native://u:p4ss@h:9000/db")
        'clickhouse+native://u:***@h:9000/db'
    """
    if not text:
        return text
    pattern = _registered_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    if "://" in text:
        text = _URI_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}", text)
    # Key rules only where a credential-like word occurs at all (most messages have none).
    lowered = text.lower().replace("_", "").replace("-", "")
    if not any(part in lowered for part in _SECRET_KEY_PARTS):
        return text
    text = _QUOTED_PAIR.sub(_mask_quoted_pair, text)
    return _mask_assignments(text)

"""Pydantic glue for secret masking and for validation errors that name the setting.

``SecretMaskingModel`` is the base of every configuration model (``StoreConfig``, the store
config models, ``MetaxyConfig``): its ``repr``/``str`` and its JSON dumps (``mx config print``,
``to_toml``) mask credentials (:mod:`metaxy._secrets`), it registers the credentials it holds so
that later messages mask them too, and a failed validation raises
:class:`~metaxy.errors.ConfigValidationError` — a ``pydantic.ValidationError`` whose message names
each setting and its (masked) value and ends with a hint, never echoing a secret.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, Self

from pydantic import BaseModel, SerializationInfo, SerializerFunctionWrapHandler, ValidationError, model_serializer

from metaxy._secrets import REVEAL_SECRETS_CONTEXT_KEY, mask_value, register_secrets_in
from metaxy.errors import ConfigValidationError

__all__ = [
    "SecretMaskingModel",
    "config_validation_error",
    "describe_validation_error",
    "env_variable_for",
    "masked_repr_args",
]

_SCALARS = (str, int, float, bool, type(None))
_VALUE_ERROR_PREFIXES = ("Value error, ", "Assertion failed, ")


def env_variable_for(loc: Iterable[Any], env_prefix: str) -> str | None:
    """The ``METAXY_*`` variable that set the setting at ``loc``, if one is in the environment.

    Args:
        loc: The setting's location, e.g. ``("stores", "dev", "config", "lock_timeout")``.
        env_prefix: ``"METAXY_"``.

    Returns:
        The variable's name as it is spelled in the environment, or None.
    """
    parts = [str(p) for p in loc]
    for depth in range(len(parts), 0, -1):
        wanted = (env_prefix + "__".join(parts[:depth])).lower()
        for var in os.environ:
            if var.lower() == wanted:
                return var
    return None


def _describe_one(err: Mapping[str, Any], env_prefix: str | None, env_loc: tuple[str, ...]) -> str:
    loc = tuple(err.get("loc") or ())
    msg = str(err.get("msg", ""))
    for prefix in _VALUE_ERROR_PREFIXES:
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if not loc:
        return msg
    setting = ".".join(str(p) for p in loc)
    value = err.get("input")
    shown = f" = {mask_value(loc[-1], value)!r}" if isinstance(value, _SCALARS) and "input" in err else ""
    source = ""
    if env_prefix:
        var = env_variable_for((*env_loc, *loc), env_prefix)
        if var is not None:
            source = f" (from environment variable {var})"
    return f"`{setting}`{shown}{source}: {msg}"


def describe_validation_error(
    exc: ValidationError, *, env_prefix: str | None = None, env_loc: tuple[str, ...] = ()
) -> str:
    """One sentence per problem — ``` `setting` = value: message``` — joined with ``; ``.

    Values under credential-like names are masked; mappings and lists are not echoed at all.

    Args:
        exc: The validation error.
        env_prefix: Name the ``METAXY_*`` variable a setting came from (``"METAXY_"``).
        env_loc: Where the validated model sits in the configuration, for the variable's name
            (e.g. ``("stores", "dev", "config")``).

    Returns:
        The description.
    """
    return "; ".join(_describe_one(err, env_prefix, env_loc) for err in exc.errors())


def config_validation_error(
    exc: ValidationError,
    *,
    subject: str,
    hint: str,
    context: str = "",
    env_prefix: str | None = None,
    env_loc: tuple[str, ...] = (),
) -> ConfigValidationError:
    """The typed, masked error for a failed validation of a configuration model.

    Args:
        exc: pydantic's error.
        subject: The message's start, e.g. ``"Invalid Metaxy configuration"``.
        hint: The closing hint (without ``Hint:``).
        context: Where the settings came from (appended in the message).
        env_prefix: Name the ``METAXY_*`` variables settings came from.
        env_loc: Where the model sits in the configuration (see :func:`describe_validation_error`).

    Returns:
        A :class:`~metaxy.errors.ConfigValidationError` (raise it outside the ``except`` block, so
        that pydantic's unmasked error is not chained to it).
    """
    count = exc.error_count()
    problems = describe_validation_error(exc, env_prefix=env_prefix, env_loc=env_loc)
    where = f" {context}" if context else ""
    message = (
        f"{subject} ({count} problem{'s' if count != 1 else ''}): {problems.rstrip('.')}.{where} Hint: {hint}"
    )
    return ConfigValidationError.from_errors(exc.title, exc.errors(), message)


def masked_repr_args(model: BaseModel) -> Iterable[tuple[str | None, Any]]:
    """``__repr_args__`` of a model with credential values masked."""
    for name, value in BaseModel.__repr_args__(model):
        yield name, mask_value(name, value)


class SecretMaskingModel(BaseModel):
    """A pydantic model that never shows the credentials it holds.

    * ``repr``/``str`` mask them; ``model_dump(mode="json")`` / ``model_dump_json`` mask them
      unless the serialisation context has ``{"metaxy_reveal_secrets": True}``; Python-mode dumps
      keep the real values (stores are built from them).
    * A failed validation raises :class:`~metaxy.errors.ConfigValidationError`.
    * The credentials of a valid model are registered with :func:`metaxy._secrets.register_secret`,
      so that they are masked wherever they appear later (e.g. in a driver's message).
    """

    def __init__(self, /, **data: Any) -> None:
        error: ConfigValidationError | None = None
        try:
            super().__init__(**data)
        except ValidationError as exc:
            error = self._validation_error(exc)
        if error is not None:
            raise error
        register_secrets_in(dict(self))

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        """Validate ``obj`` like pydantic; failures raise :class:`~metaxy.errors.ConfigValidationError`."""
        error: ConfigValidationError | None = None
        try:
            model = super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            error = cls._validation_error(exc)
        if error is not None:
            raise error
        register_secrets_in(dict(model))
        return model

    @classmethod
    def _validation_error(cls, exc: ValidationError) -> ConfigValidationError:
        return config_validation_error(
            exc,
            subject=f"Invalid {cls.__name__} settings",
            hint=f"correct the named setting(s); valid settings are: {', '.join(sorted(cls.model_fields))}.",
        )

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        return masked_repr_args(self)

    @model_serializer(mode="wrap")
    def _mask_secrets(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        data = handler(self)
        context = info.context if isinstance(info.context, Mapping) else {}
        if info.mode_is_json() and not context.get(REVEAL_SECRETS_CONTEXT_KEY) and isinstance(data, Mapping):
            return {k: mask_value(k, v) for k, v in data.items()}
        return data

"""``mx config``: show the effective configuration."""

from __future__ import annotations

from typing import Annotated, Literal

import cyclopts

from ._context import session

__all__ = ["config_app"]

config_app = cyclopts.App(name="config", help="Show the configuration.", version_flags=[])


@config_app.command(name="print")
def config_print(
    *, format: Annotated[Literal["toml", "json"], cyclopts.Parameter(name=["--format", "-f"])] = "toml"
) -> None:
    """Print the effective configuration (file, environment and defaults merged; secrets masked by the config).

    Parameters
    ----------
    format
        ``toml`` (the metaxy.toml syntax) or ``json``.
    """
    cfg = session.cfg
    print(cfg.model_dump_json(indent=2, exclude_none=True) if format == "json" else cfg.to_toml())

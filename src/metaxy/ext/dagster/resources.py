"""``MetaxyStoreFromConfigResource``: a Dagster resource that builds a configured metadata store."""

from __future__ import annotations

from typing import Any

import dagster as dg

from metaxy.metadata_store.base import MetadataStore

__all__ = ["MetaxyStoreFromConfigResource"]


class MetaxyStoreFromConfigResource(dg.ConfigurableResource[MetadataStore]):
    """Builds the metadata store named ``name`` from the active Metaxy configuration.

    Inside a run the store's ``materialization_id`` is the run id, so every row the run writes
    records it (``metaxy_materialization_id``). Outside a run (sensors, schedules, tests with
    ``dg.build_resources``) the store has no materialization id.

    Consumers declare ``store: dg.ResourceParam[mx.MetadataStore]`` (or annotate with this
    class); both receive the store.

    Attributes:
        name: the store's name in ``metaxy.toml``; None (the default) means the configured
            default store (``store = ...`` / ``$METAXY_STORE``).

    Example:
        >>> import dagster as dg
        >>> import metaxy.ext.dagster as mxd
        >>> defs = dg.Definitions(resources={"store": mxd.MetaxyStoreFromConfigResource(name="dev")})
    """

    name: str | None = None

    def create_resource(self, context: dg.InitResourceContext) -> MetadataStore:
        """The store, stamped with the run id as materialization id when inside a run.

        Raises:
            InvalidConfigError: no such store is configured.
        """
        run = context.run
        return self.get_store(materialization_id=run.run_id if run is not None else None)

    def get_store(self, materialization_id: str | None = None, **kwargs: Any) -> MetadataStore:
        """Build the configured store directly (no Dagster context needed).

        Args:
            materialization_id: recorded on every row the store writes.
            **kwargs: further store arguments, passed to the store's ``from_config``.

        Returns:
            A new, unopened store.

        Raises:
            InvalidConfigError: no such store is configured.
        """
        from metaxy.config import MetaxyConfig

        config = MetaxyConfig.get()
        store: MetadataStore = config.get_store(self.name, materialization_id=materialization_id, **kwargs)
        return store

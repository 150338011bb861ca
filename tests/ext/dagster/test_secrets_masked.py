"""A real Dagster run on a store configured with credentials: no credential reaches the event log.

The secrets are planted in a Delta store's ``storage_options`` (which the store really passes to
Delta) and searched for in every event-log entry of the run — materialization metadata
(``metaxy/store``, ``dagster/uri`` ...), log lines, step failures with their chained causes — and
in the run record itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from mxd_helpers import latest_metadata, root_rows

import metaxy as mx
import metaxy.ext.dagster as mxd
from metaxy.config import MetaxyConfig

Features = dict[str, type[mx.BaseFeature]]
DELTA = "metaxy.ext.polars.handlers.delta.DeltaMetadataStore"


def _fresh(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def secrets() -> dict[str, str]:
    return {"AWS_SECRET_ACCESS_KEY": _fresh("DgKey"), "aws_session_token": _fresh("DgTok")}


@pytest.fixture
def lake_config(tmp_path: Path, secrets: dict[str, str]) -> Iterator[MetaxyConfig]:
    """Store ``lake`` (Delta, credentials in ``storage_options``) and ``broken`` (a credential put
    beside ``storage_options`` instead of inside it)."""
    options = {**secrets, "AWS_REGION": "eu-west-1"}
    config = MetaxyConfig(
        project="test",
        store="lake",
        auto_create_tables=True,
        stores={
            "lake": {"type": DELTA, "config": {"root_path": str(tmp_path / "lake"), "storage_options": options}},
            "broken": {
                "type": DELTA,
                "config": {"root_path": str(tmp_path / "broken"), "aws_session_token": secrets["aws_session_token"]},
            },
        },
    )
    with config.use():
        yield config


def _run_text(instance: dg.DagsterInstance, run_id: str) -> str:
    """Everything the instance recorded about a run, as text."""
    parts = [repr(instance.get_run_by_id(run_id))]
    for entry in instance.all_logs(run_id):
        parts += [repr(entry), entry.message or "", entry.user_message or ""]
        if entry.dagster_event is not None:
            parts.append(repr(entry.dagster_event.event_specific_data))
    return "\n".join(parts)


def _assert_hidden(text: str, secrets: dict[str, str]) -> None:
    for secret in secrets.values():
        assert secret not in text, f"secret {secret!r} leaked into the Dagster run:\n{text[:2000]}"


def test_materialization_metadata_and_logs_hide_store_credentials(
    features: Features, lake_config: MetaxyConfig, secrets: dict[str, str], instance: dg.DagsterInstance
) -> None:
    del lake_config
    store = mxd.MetaxyStoreFromConfigResource(name="lake")

    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/upstream"})
    def upstream(context, store: dg.ResourceParam[mx.MetadataStore]) -> mxd.MetaxyOutput:  # type: ignore[no-untyped-def]
        context.log.info(f"writing to {store.display()} ({store!r})")
        return root_rows(["a", "b"])

    result = dg.materialize(
        [upstream], resources={"store": store, "io_manager": mxd.MetaxyIOManager(store=store)}, instance=instance
    )
    assert result.success
    md = latest_metadata(instance, ["test", "upstream"])
    assert md["dagster/row_count"] == 2  # the store really wrote through Delta with its credentials
    assert "DeltaMetadataStore" in md["metaxy/store"]  # the store's display(): a short text entry
    text = _run_text(instance, result.run_id)
    assert "writing to DeltaMetadataStore(" in text
    _assert_hidden(text, secrets)


def test_failed_step_on_a_misconfigured_store_hides_credentials(
    features: Features, lake_config: MetaxyConfig, secrets: dict[str, str], instance: dg.DagsterInstance
) -> None:
    """pydantic's own error would be "Extra inputs are not permitted [..., input_value='<token>']"."""
    del lake_config
    store = mxd.MetaxyStoreFromConfigResource(name="broken")

    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/upstream"})
    def upstream() -> mxd.MetaxyOutput:
        return root_rows(["a"])

    result = dg.materialize(
        [upstream],
        resources={"store": store, "io_manager": mxd.MetaxyIOManager(store=store)},
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    text = _run_text(instance, result.run_id)
    assert "aws_session_token" in text and "Extra inputs are not permitted" in text  # the error is reported ...
    _assert_hidden(text, secrets)  # ... without the credentials


def test_failure_inside_the_asset_hides_credentials(
    features: Features, lake_config: MetaxyConfig, secrets: dict[str, str], instance: dg.DagsterInstance
) -> None:
    """A metaxy error raised in the asset body names the store; the step failure must not leak."""
    del lake_config
    store = mxd.MetaxyStoreFromConfigResource(name="lake")

    @dg.asset
    def reader(store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        with store:
            return store.read(features["downstream"]).collect()  # never written: FeatureNotFoundError

    result = dg.materialize([reader], resources={"store": store}, instance=instance, raise_on_error=False)
    assert not result.success
    text = _run_text(instance, result.run_id)
    assert "DeltaMetadataStore" in text
    _assert_hidden(text, secrets)

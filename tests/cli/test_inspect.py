"""``mx plan``, ``mx explain``, ``mx trace`` over a real DuckDB store, and ``metaxy.inspect`` from Python.

The ``stored`` project ran once (a, b, c everywhere), then ``a``'s audio was re-recorded by ``run-2``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from mxcli import run_mx, write_rows

import metaxy as mx
from metaxy.inspect import explain_sample, plan_run, trace_sample


def _json(done: Any) -> Any:
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def test_plan_predicts_the_cascade_and_the_run_confirms_it(stored: Path) -> None:
    done = run_mx(stored, "plan", "-f", "json", "--assert-in-sync")
    assert done.returncode == 1
    plan = json.loads(done.stdout)
    assert plan["needs_update"] is True and len(plan["project_version"]) == 8
    rows = {f["feature"]: f for f in plan["features"]}
    assert list(rows) == ["cli/raw", "cli/chunks", "cli/transcript", "cli/summary"]
    assert rows["cli/raw"]["status"] == "root" and rows["cli/raw"]["predicted"] is None
    assert rows["cli/transcript"]["predicted"] == {"new": 0, "stale": 1, "orphaned": 0}
    assert rows["cli/transcript"]["cascaded"] == 0
    # summary is up to date against today's transcript, but stale once transcript is recomputed
    assert rows["cli/summary"]["direct"] == {"new": 0, "stale": 0, "orphaned": 0}
    assert rows["cli/summary"]["predicted"] == {"new": 0, "stale": 1, "orphaned": 0}
    assert rows["cli/summary"]["cascaded"] == 1
    assert rows["cli/chunks"]["predicted"] == {"new": 0, "stale": 1, "orphaned": 0}  # one parent, two chunks
    # the run: transcript first, then summary really finds the predicted stale sample
    write_rows(stored, {"resolve": "cli/transcript"})
    status = _json(run_mx(stored, "metadata", "status", "cli/summary", "-f", "json"))
    assert status["features"][0]["stale"] == rows["cli/summary"]["predicted"]["stale"]
    write_rows(stored, {"resolve": "cli/summary"}, {"resolve": "cli/chunks"})
    after = run_mx(stored, "plan", "--assert-in-sync")
    assert after.returncode == 0, after.stderr
    assert "needs update" not in after.stdout and "up-to-date" in after.stdout


def test_plan_of_a_selection_counts_the_cascade_into_it(stored: Path) -> None:
    plan = _json(run_mx(stored, "plan", "cli/summary", "-f", "json"))
    (only,) = plan["features"]
    assert only["feature"] == "cli/summary" and only["cascaded"] == 1


def test_explain_names_the_upstream_field_value_and_run(stored: Path) -> None:
    data = _json(run_mx(stored, "explain", "cli/transcript", "a", "sid=b", "-f", "json"))
    a, b = data["samples"]
    assert (a["status"], b["status"]) == ("stale", "up-to-date")
    (cause,) = a["causes"]
    assert cause["kind"] == "upstream_data_changed"
    assert (cause["feature"], cause["field"], cause["materialization_id"]) == ("cli/raw", "audio", "run-2")
    assert cause["old"] != cause["new"] and cause["written_at"]
    assert a["stored"]["materialization_id"] == "run-1"
    pending = _json(run_mx(stored, "explain", "cli/summary", "a", "-f", "json"))["samples"][0]
    assert pending["status"] == "up-to-date" and pending["causes"][0]["kind"] == "upstream_pending"
    plain = run_mx(stored, "explain", "cli/transcript", "a")
    assert "Upstream 'cli/raw' field 'audio' data version" in plain.stdout and "by run-2" in plain.stdout


def test_explain_new_samples_deleted_and_version_changed(stored: Path) -> None:
    write_rows(stored, {"delete": "cli/summary", "filter": "sid = 'b'"})
    deleted = _json(run_mx(stored, "explain", "cli/summary", "b", "-f", "json"))["samples"][0]
    assert deleted["status"] == "new" and deleted["causes"][0]["kind"] == "deleted"
    assert run_mx(stored, "push").returncode == 0
    features = stored / "cli_features" / "__init__.py"
    features.write_text(
        features.read_text().replace('fields=["text"]', 'fields=[mx.FieldSpec(key="text", code_version="2")]')
    )
    changed = _json(run_mx(stored, "explain", "cli/summary", "c", "-f", "json"))["samples"][0]
    assert changed["status"] == "new"
    kinds = {c["kind"]: c for c in changed["causes"]}
    assert kinds["feature_version_changed"]["old"] != kinds["feature_version_changed"]["new"]
    code = kinds["code_version_changed"]
    assert (code["field"], code["old"], code["new"]) == ("text", "__metaxy_initial__", "2")


def test_trace_follows_a_sample_and_its_children(stored: Path) -> None:
    write_rows(stored, {"delete": "cli/raw", "filter": "sid = 'c'"})
    data = _json(run_mx(stored, "trace", "sid=a", "sid=c", "-f", "json"))
    a, c = ({e["feature"]: e for e in s["features"]} for s in data["samples"])
    assert a["cli/raw"]["status"] == "present" and a["cli/raw"]["materialization_id"] == "run-2"
    assert a["cli/transcript"]["status"] == "stale" and a["cli/summary"]["status"] == "present"
    assert (a["cli/chunks"]["status"], a["cli/chunks"]["rows"]) == ("stale", 2)
    assert c["cli/raw"]["status"] == "deleted" and c["cli/transcript"]["status"] == "orphaned"
    bare = _json(run_mx(stored, "trace", "b", "-f", "json"))["samples"][0]
    assert {e["feature"]: e["status"] for e in bare["features"]} == {
        "cli/raw": "present",
        "cli/transcript": "present",
        "cli/summary": "present",
    }
    plain = run_mx(stored, "trace", "sid=a")
    assert plain.returncode == 0 and "run-2" in plain.stdout and "stale" in plain.stdout


# --- from Python, on the in-memory store: aggregation, expansion, orphans -------------------------------


@pytest.fixture
def graph() -> Any:
    g = mx.FeatureGraph()
    with g.use():

        class Clip(mx.BaseFeature, spec=mx.FeatureSpec(key="t/clip", id_columns=["clip"], fields=["audio"])):
            clip: str
            speaker: str

        class Text(
            mx.BaseFeature, spec=mx.FeatureSpec(key="t/text", id_columns=["clip"], deps=[Clip], fields=["audio"])
        ):
            clip: str

        class Speaker(
            mx.BaseFeature,
            spec=mx.FeatureSpec(
                key="t/speaker",
                id_columns=["speaker"],
                deps=[mx.FeatureDep(feature=Clip, lineage=mx.LineageRelationship.aggregation(on=["speaker"]))],
                fields=["audio"],
            ),
        ):
            speaker: str

        class Voice(
            mx.BaseFeature, spec=mx.FeatureSpec(key="t/voice", id_columns=["speaker"], deps=[Speaker], fields=["audio"])
        ):
            speaker: str

    return g


def _roots(audio: dict[str, str]) -> pl.DataFrame:
    speakers = {"c1": "s1", "c2": "s1", "c3": "s2"}
    return pl.DataFrame(
        {
            "clip": list(audio),
            "speaker": [speakers[c] for c in audio],
            "metaxy_provenance_by_field": [{"audio": v} for v in audio.values()],
        }
    )


def _run(store: Any, graph: Any) -> dict[str, tuple[int, int, int]]:
    """What a real run finds, feature by feature, writing new + stale rows and soft-deleting orphans as it goes."""
    found = {}
    for key in graph.topological_sort_features():
        if not graph.get_feature_definition(key).spec.deps:
            continue
        inc = store.resolve_update(key)
        counts = (len(inc.new), len(inc.stale), len(inc.orphaned))
        if key.to_string() in ("t/speaker",):
            new = inc.new.to_polars().unique("speaker")
            stale = inc.stale.to_polars().unique("speaker")
            counts = (len(new), len(stale), len(inc.orphaned.to_polars().unique("speaker")))
        else:
            new, stale = inc.new.to_polars(), inc.stale.to_polars()
        frame = pl.concat([new, stale], how="diagonal_relaxed")
        if frame.height:
            store.write(
                key, frame.select([c for c in frame.columns if c in ("clip", "speaker") or c.startswith("metaxy_")])
            )
        (unit,) = graph.get_feature_definition(key).id_columns
        gone = inc.orphaned.to_polars()[unit].unique().to_list()
        if gone:
            store.delete(key, pl.col(unit).is_in(gone))
        found[key.to_string()] = counts
    return found


def test_plan_run_equals_what_the_run_finds(graph: Any) -> None:
    store = mx.InMemoryMetadataStore()
    with graph.use(), warnings.catch_warnings(), store.open("w"):
        warnings.simplefilter("ignore")
        store.write("t/clip", _roots({"c1": "1", "c2": "1", "c3": "1"}))
        _run(store, graph)
        store.write("t/clip", _roots({"c1": "2"}))  # one member of speaker s1 changes
        store.delete("t/clip", "clip = 'c3'")  # speaker s2 loses its only clip
        plan = plan_run(store, graph)
        predicted = {f.feature: f.predicted for f in plan.features if f.predicted is not None}
        actual = _run(store, graph)
    assert {k: tuple(v) for k, v in predicted.items()} == actual
    assert actual["t/voice"] == (0, 1, 1)  # only visible through the cascade
    assert plan["t/voice"].direct == (0, 0, 0) and plan["t/voice"].cascaded == 1


def test_explain_and_trace_from_python(graph: Any) -> None:
    store = mx.InMemoryMetadataStore()
    with graph.use(), warnings.catch_warnings(), store.open("w"):
        warnings.simplefilter("ignore")
        store.write("t/clip", _roots({"c1": "1", "c2": "1"}))
        _run(store, graph)
        store.write("t/clip", _roots({"c2": "2"}), materialization_id="m2")
        why = explain_sample(store, "t/speaker", {"speaker": "s1"})
        where = trace_sample(store, {"clip": "c2"})
    assert why.status == "stale" and why.causes[0].feature == "t/clip" and why.causes[0].materialization_id == "m2"
    statuses = {e.feature: e.status for e in where}
    # the clip's N:1 group (speaker s1, learned from the clip row) and that group's dependent are found
    assert statuses == {"t/clip": "present", "t/text": "stale", "t/speaker": "stale", "t/voice": "present"}

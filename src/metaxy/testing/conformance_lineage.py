"""Conformance: how upstreams are prepared and joined -- optional deps, aggregation and expansion
lineage, field mapping, renames / select / collisions, data-version overrides (spec §2.6-§2.8,
§3.8, §3.9, §9.1, §9.5-§9.8)."""

from __future__ import annotations

import types
from typing import Any

import narwhals as nw
import polars as pl
import pytest

import metaxy as mx
from metaxy.errors import ColumnCollisionError, FeatureNotFoundError, InvalidRenameError
from metaxy.frames import collect_to_polars
from metaxy.testing.conformance_support import (
    DATA_VERSION,
    DATA_VERSION_BY_FIELD,
    PROVENANCE,
    PROVENANCE_BY_FIELD,
    ConformanceBase,
    StoreFactory,
    field_provenance,
    id_set,
    rows,
    samples,
)
from metaxy.versioning.hashing import hash_string

__all__ = ["LineageConformance"]

_KEEP = (PROVENANCE_BY_FIELD, PROVENANCE, DATA_VERSION_BY_FIELD, DATA_VERSION)


def _define(name: str, spec: mx.FeatureSpec) -> Any:
    """A feature class registered in the active graph (a unique class path per key)."""

    def body(ns: dict[str, Any]) -> None:
        ns["__module__"] = __name__
        ns["__qualname__"] = name

    return types.new_class(name, (mx.BaseFeature,), {"spec": spec}, body)


def _root(key: str, *, id_column: str = "sample_id", fields: tuple[str, ...] = ("default",)) -> Any:
    spec = mx.FeatureSpec(key=key, id_columns=[id_column], fields=list(fields))
    return _define("Root_" + key.replace("/", "_"), spec)


def _feature(key: str, deps: list[Any], *, id_columns: tuple[str, ...] = ("sample_id",), fields: Any = None) -> Any:
    spec = mx.FeatureSpec(
        key=key,
        id_columns=list(id_columns),
        deps=deps,
        fields=fields if fields is not None else [mx.FieldSpec(key="default", code_version="1")],
    )
    return _define("Feature_" + key.replace("/", "_"), spec)


def _by(frame: Any, column: str = "sample_id") -> dict[Any, dict[str, Any]]:
    return {r[column]: r for r in rows(frame)}


class LineageConformance(ConformanceBase):
    # --- optional dependencies (§9.5) --------------------------------------------------------------

    def test_optional_dep_is_left_joined_with_empty_values(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        audio, meta = _root("opt/audio"), _root("opt/meta")
        down = _feature("opt/down", [mx.FeatureDep(feature=audio), mx.FeatureDep(feature=meta, optional=True)])
        store = store_factory()
        algo = store.hash_algorithm
        with store.open("w"):
            store.write(audio, samples(["a", "b"]))
            store.write(meta, samples(["a", "z"]))
            inc = store.resolve_update(down)
            assert id_set(inc.new) == {"a", "b"}  # "z" has no required parent
            got = _by(inc.new)
            for sample_id, meta_value in (("a", "default:a:v1"), ("b", None)):
                parents = {"opt/audio.default": f"default:{sample_id}:v1", "opt/meta.default": meta_value}
                assert got[sample_id][PROVENANCE_BY_FIELD] == {
                    "default": field_provenance(algo, "default", "1", parents)
                }
            store.write(down, inc.new)
            # A change of the optional parent touches only the samples that have it.
            store.write(meta, samples(["a", "z"], tag="v2"))
            inc = store.resolve_update(down)
        assert id_set(inc.stale) == {"a"}
        assert len(inc.new) == 0

    def test_all_optional_deps_are_outer_joined(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        left, right = _root("outer/left"), _root("outer/right")
        down = _feature(
            "outer/down",
            [mx.FeatureDep(feature=left, optional=True), mx.FeatureDep(feature=right, optional=True)],
        )
        store = store_factory()
        algo = store.hash_algorithm
        with store.open("w"):
            store.write(left, samples(["a", "both"]))
            store.write(right, samples(["b", "both"]))
            got = _by(store.resolve_update(down).new)
        assert set(got) == {"a", "b", "both"}
        expected: dict[str, dict[str, str | None]] = {
            "a": {"outer/left.default": "default:a:v1", "outer/right.default": None},
            "b": {"outer/left.default": None, "outer/right.default": "default:b:v1"},
            "both": {"outer/left.default": "default:both:v1", "outer/right.default": "default:both:v1"},
        }
        for sample_id, parents in expected.items():
            assert got[sample_id][PROVENANCE_BY_FIELD] == {"default": field_provenance(algo, "default", "1", parents)}

    def test_missing_optional_upstream_table_raises(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        audio, meta = _root("opt/audio"), _root("opt/meta")
        down = _feature("opt/down", [mx.FeatureDep(feature=audio), mx.FeatureDep(feature=meta, optional=True)])
        store = store_factory()
        with store.open("w"):
            store.write(audio, samples(["a"]))
            with pytest.raises(FeatureNotFoundError):
                store.resolve_update(down)

    # --- aggregation (§9.6) ------------------------------------------------------------------------

    def test_aggregation_keeps_upstream_rows_with_group_provenance(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        frame = _root("agg/frame", id_column="frame_id", fields=("audio", "frames"))
        summary = _feature(
            "agg/summary",
            [mx.FeatureDep(feature=frame, lineage=mx.LineageRelationship.aggregation(on=["group_id"]))],
            id_columns=("group_id",),
            fields=[mx.FieldSpec(key="audio", code_version="1"), mx.FieldSpec(key="frames", code_version="1")],
        )
        store = store_factory()
        algo = store.hash_algorithm

        def frames(ids: list[str], groups: list[str], tag: str = "v1") -> pl.DataFrame:
            return samples(ids, ("audio", "frames"), id_column="frame_id", tag=tag, group_id=groups)

        def expected(group_members: list[str], field: str, tags: dict[str, str] | None = None) -> str:
            values = [f"{field}:{m}:{(tags or {}).get(m, 'v1')}" for m in sorted(group_members)]
            aggregated = hash_string(algo, "|".join(values))
            return field_provenance(algo, field, "1", {f"agg/frame.{field}": aggregated})

        with store.open("w"):
            # Written out of id order: the aggregation orders members by the upstream id.
            store.write(frame, frames(["f2", "f1", "f3"], ["g1", "g1", "g2"]))
            inc = store.resolve_update(summary)
            new = collect_to_polars(inc.new)
            assert sorted(new.get_column("group_id").to_list()) == ["g1", "g1", "g2"]
            for r in rows(new):
                members = ["f1", "f2"] if r["group_id"] == "g1" else ["f3"]
                assert r[PROVENANCE_BY_FIELD] == {
                    "audio": expected(members, "audio"),
                    "frames": expected(members, "frames"),
                }
            store.write(summary, new.unique("group_id", keep="first").select("group_id", *_KEEP))
            assert len(store.resolve_update(summary).new) == 0
            # Only the audio of f2 changes: g1 is stale, its frames field keeps its provenance.
            f2 = pl.DataFrame(
                {
                    "frame_id": ["f2"],
                    "group_id": ["g1"],
                    PROVENANCE_BY_FIELD: [{"audio": "audio:f2:v2", "frames": "frames:f2:v1"}],
                }
            )
            store.write(frame, f2)
            inc = store.resolve_update(summary)
            stale = collect_to_polars(inc.stale)
            assert sorted(stale.get_column("group_id").to_list()) == ["g1", "g1"]
            assert len(inc.new) == 0
            for r in rows(stale):
                assert r[PROVENANCE_BY_FIELD] == {
                    "audio": expected(["f1", "f2"], "audio", {"f2": "v2"}),
                    "frames": expected(["f1", "f2"], "frames"),
                }
            store.write(summary, stale.unique("group_id", keep="first").select("group_id", *_KEEP))
            # A new member changes its group's provenance.
            store.write(frame, frames(["f4"], ["g2"]))
            inc = store.resolve_update(summary)
        assert sorted(collect_to_polars(inc.stale).get_column("group_id").to_list()) == ["g2", "g2"]
        assert len(inc.orphaned) == 0

    # --- expansion (§9.7) --------------------------------------------------------------------------

    def test_expansion_compares_at_parent_level(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        video = _root("exp/video", id_column="video_id")
        chunk = _feature(
            "exp/chunk",
            [mx.FeatureDep(feature=video, lineage=mx.LineageRelationship.expansion(on=["video_id"]))],
            id_columns=("video_id", "chunk_id"),
        )
        store = store_factory()
        algo = store.hash_algorithm

        def children(parents: Any) -> pl.DataFrame:
            parent_rows = collect_to_polars(parents).select("video_id", *_KEEP)
            return pl.concat([parent_rows.with_columns(pl.lit(i).alias("chunk_id")) for i in range(2)])

        with store.open("w"):
            store.write(video, samples(["v1", "v2", "v3"], id_column="video_id"))
            inc = store.resolve_update(chunk)
            assert id_set(inc.new, "video_id") == {"v1", "v2", "v3"}
            assert len(inc.new) == 3
            got = _by(inc.new, "video_id")
            assert got["v1"][PROVENANCE_BY_FIELD] == {
                "default": field_provenance(algo, "default", "1", {"exp/video.default": "default:v1:v1"})
            }
            store.write(chunk, children(inc.new))
            store.write(chunk, children(inc.new))  # duplicated child writes
            inc = store.resolve_update(chunk)
            assert len(inc.new) == 0
            assert len(inc.stale) == 0
            assert len(inc.orphaned) == 0
            store.write(video, samples(["v1"], id_column="video_id", tag="v2"))
            store.delete(video, nw.col("video_id") == "v3")
            inc = store.resolve_update(chunk)
        assert id_set(inc.stale, "video_id") == {"v1"}
        assert len(inc.stale) == 1
        assert id_set(inc.orphaned, "video_id") == {"v3"}
        assert len(inc.orphaned) == 1
        assert len(inc.new) == 0

    # --- field mapping (§9.8) ----------------------------------------------------------------------

    def test_field_mapping_decides_each_fields_parents(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        src = _root("map/src", fields=("audio", "frames"))
        auto = _feature(
            "map/auto",
            [src],
            fields=[mx.FieldSpec(key="audio", code_version="1"), mx.FieldSpec(key="other", code_version="1")],
        )
        explicit = _feature(
            "map/explicit",
            [src],
            fields=[
                mx.FieldSpec(key="audio", code_version="1", deps=[mx.FieldDep(feature="map/src", fields=["frames"])])
            ],
        )
        everything = _feature(
            "map/everything", [src], fields=[mx.FieldSpec(key="x", code_version="1", deps=mx.SpecialFieldDep.ALL)]
        )
        store = store_factory()
        algo = store.hash_algorithm
        audio = {"map/src.audio": "audio:a:v1"}
        frames = {"map/src.frames": "frames:a:v1"}
        with store.open("w"):
            store.write(src, samples(["a"], ("audio", "frames")))
            (auto_row,) = rows(store.resolve_update(auto).new)
            (explicit_row,) = rows(store.resolve_update(explicit).new)
            (all_row,) = rows(store.resolve_update(everything).new)
        assert auto_row[PROVENANCE_BY_FIELD] == {
            "audio": field_provenance(algo, "audio", "1", audio),  # matched by name
            "other": field_provenance(algo, "other", "1", {**audio, **frames}),  # no match: all fields
        }
        assert explicit_row[PROVENANCE_BY_FIELD] == {"audio": field_provenance(algo, "audio", "1", frames)}
        assert all_row[PROVENANCE_BY_FIELD] == {"x": field_provenance(algo, "x", "1", {**audio, **frames})}

    # --- renames, select, collisions ---------------------------------------------------------------

    def test_renamed_id_columns_join(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        left = _root("ren/left")
        right = _root("ren/right", id_column="uid")
        joined = _feature("ren/joined", [left, mx.FeatureDep(feature=right, rename={"uid": "sample_id"})])
        store = store_factory()
        algo = store.hash_algorithm
        with store.open("w"):
            store.write(left, samples(["a", "b"]))
            store.write(right, samples(["a", "c"], id_column="uid"))
            inc = store.resolve_update(joined)
        (row,) = rows(inc.new)
        assert row["sample_id"] == "a"
        parents = {"ren/left.default": "default:a:v1", "ren/right.default": "default:a:v1"}
        assert row[PROVENANCE_BY_FIELD] == {"default": field_provenance(algo, "default", "1", parents)}

    def test_select_and_rename_shape_the_upstream_columns(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        up = _root("sel/up")
        every = _feature("sel/every", [up])
        nothing = _feature("sel/nothing", [mx.FeatureDep(feature=up, select=())])
        some = _feature("sel/some", [mx.FeatureDep(feature=up, select=["size"])])
        renamed = _feature("sel/renamed", [mx.FeatureDep(feature=up, rename={"path": "up_path"}, select=["up_path"])])
        store = store_factory()
        with store.open("w"):
            store.write(up, samples(["a"], path=["a.mp4"], size=[10]))
            columns = {
                name: set(collect_to_polars(store.resolve_update(f).new).columns)
                for name, f in (("every", every), ("nothing", nothing), ("some", some), ("renamed", renamed))
            }
            (renamed_row,) = rows(store.resolve_update(renamed).new)
        assert {"path", "size"} <= columns["every"]
        assert not {"path", "size"} & columns["nothing"]
        assert "sample_id" in columns["nothing"]
        assert "size" in columns["some"]
        assert "path" not in columns["some"]
        assert "up_path" in columns["renamed"]
        assert not {"path", "size"} & columns["renamed"]
        assert renamed_row["up_path"] == "a.mp4"

    def test_three_upstreams_join_without_clashes(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        a, b, c = _root("three/a"), _root("three/b"), _root("three/c")
        down = _feature(
            "three/down",
            [
                mx.FeatureDep(feature=a, rename={"path": "a_path"}),
                mx.FeatureDep(feature=b, select=()),
                mx.FeatureDep(feature=c, rename={"path": "c_path"}),
            ],
        )
        store = store_factory()
        algo = store.hash_algorithm
        with store.open("w"):
            for feature, prefix in ((a, "a"), (b, "b"), (c, "c")):
                store.write(feature, samples(["s1", "s2"], path=[f"{prefix}/s1", f"{prefix}/s2"]))
            got = _by(store.resolve_update(down).new)
        assert set(got) == {"s1", "s2"}
        assert got["s1"]["a_path"] == "a/s1"
        assert got["s1"]["c_path"] == "c/s1"
        assert "path" not in got["s1"]
        parents = {f"three/{k}.default": "default:s2:v1" for k in "abc"}
        assert got["s2"][PROVENANCE_BY_FIELD] == {"default": field_provenance(algo, "default", "1", parents)}

    def test_same_column_from_two_upstreams_collides(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        a, b = _root("clash/a"), _root("clash/b")
        down = _feature("clash/down", [a, b])
        store = store_factory()
        with store.open("w"):
            store.write(a, samples(["s1"], path=["a"]))
            store.write(b, samples(["s1"], path=["b"]))
            with pytest.raises(ColumnCollisionError, match="path"):
                store.resolve_update(down)
            with pytest.raises(ValueError, match="path"):
                store.resolve_update(down)

    @pytest.mark.parametrize(
        ("deps", "message"),
        [
            ({"a": {"path": "metaxy_data_version"}}, "(?i)system column"),
            ({"a": {"path": "sample_id"}}, "(?i)id column"),
            ({"a": {"path": "p", "size": "p"}}, "(?i)duplicate"),
            ({"a": {"path": "p"}, "b": {"size": "p"}}, "(?i)duplicate"),
        ],
        ids=["system-column", "id-column", "duplicate-targets", "duplicate-across-deps"],
    )
    def test_invalid_renames_are_rejected(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph, deps: dict[str, dict[str, str]], message: str
    ) -> None:
        roots = {"a": _root("badren/a"), "b": _root("badren/b")}
        down = _feature(
            "badren/down",
            [
                mx.FeatureDep(
                    feature=roots[name],
                    rename=deps.get(name),
                    select=sorted(set(deps[name].values())) if name in deps else (),
                )
                for name in ("a", "b")
            ],
        )
        store = store_factory()
        with store.open("w"):
            for root in roots.values():
                store.write(root, samples(["s1"], path=["p"], size=[1]))
            with pytest.raises(InvalidRenameError, match=message):
                store.resolve_update(down)

    def test_runtime_filters_use_stored_names_and_dep_filters_renamed_names(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        up = _root("filt/up")
        down = _feature(
            "filt/down", [mx.FeatureDep(feature=up, rename={"score": "up_score"}, filters=["up_score > 1"])]
        )
        store = store_factory()
        with store.open("w"):
            store.write(up, samples(["a", "b", "c", "d"], score=[1, 2, 3, 4]))
            assert id_set(store.resolve_update(down).new) == {"b", "c", "d"}
            runtime = store.resolve_update(down, filters={up: ["score < 4"]})
            assert id_set(runtime.new) == {"b", "c"}
            both = store.resolve_update(down, filters={up: [nw.col("score") < 4]}, global_filters=["sample_id != 'b'"])
        assert id_set(both.new) == {"c"}

    def test_swapped_renames_and_filters_on_stored_names(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        """Two columns swap names: each value lands under its new name, and a runtime filter on a
        stored name means that stored column, not the column renamed onto its name (an engine that
        lets a select-list alias shadow a column, as ClickHouse does by default, gets both wrong)."""
        up = _root("swap/up")
        down = _feature("swap/down", [mx.FeatureDep(feature=up, rename={"path": "size", "size": "path"})])
        store = store_factory()
        with store.open("w"):
            store.write(up, samples(["a", "b"], path=["x.mp4", "y.mp4"], size=[10, 20]))
            got = _by(store.resolve_update(down).new)
            filtered = _by(store.resolve_update(down, filters={up: ["size > 15"]}).new)
        assert {k: (v["size"], v["path"]) for k, v in got.items()} == {"a": ("x.mp4", 10), "b": ("y.mp4", 20)}
        assert set(filtered) == {"b"}

    @pytest.mark.parametrize(
        ("a_rename", "b_rename", "a_column", "b_column"),
        [
            pytest.param({"size": "a_size"}, {"path": "size"}, "size", "path", id="a-renames-away-b-renames-onto"),
            pytest.param({"path": "a_path"}, {}, "path", "path", id="a-renames-away-b-keeps"),
        ],
    )
    def test_a_name_one_upstream_renames_away_keeps_the_other_upstreams_type(
        self,
        store_factory: StoreFactory,
        graph: mx.FeatureGraph,
        a_rename: dict[str, str],
        b_rename: dict[str, str],
        a_column: str,
        b_column: str,
    ) -> None:
        """Upstream A's integer column is renamed away from a name that upstream B's text column
        has (or is renamed to): the result's column of that name is B's text, A's under its new name."""
        a, b = _root("types/a"), _root("types/b")
        deps = [mx.FeatureDep(feature=a, rename=a_rename), mx.FeatureDep(feature=b, rename=b_rename)]
        down = _feature("types/down", deps)
        store = store_factory()
        with store.open("w"):
            store.write(a, samples(["s1", "s2"]).with_columns(pl.Series(a_column, [10, 20])))
            store.write(b, samples(["s1", "s2"]).with_columns(pl.Series(b_column, ["x.mp4", "y.mp4"])))
            new = collect_to_polars(store.resolve_update(down).new).sort("sample_id")
        a_name, b_name = a_rename[a_column], b_rename.get(b_column, b_column)
        assert new.schema[a_name] == pl.Int64 and new.schema[b_name] == pl.String
        assert new.select(a_name, b_name).rows() == [(10, "x.mp4"), (20, "y.mp4")]

    def test_filters_on_an_upstreams_system_columns(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        """A runtime filter may name any stored column of the upstream (its own provenance, its
        timestamps), not a column of the same name the resolve computes; a FeatureDep filter names
        the upstream's versioning columns by their suffixed names."""
        up = _root("sysfilter/up")
        down = _feature("sysfilter/down", [up])
        suffixed = PROVENANCE + up.spec().key.to_column_suffix()
        store = store_factory()
        with store.open("w"):
            store.write(up, samples(["s1", "s2"]))
            stored = {r["sample_id"]: r[PROVENANCE] for r in rows(store.read(up))}
            computed = {r["sample_id"]: r[PROVENANCE] for r in rows(store.resolve_update(down).new)}
            by_upstream = store.resolve_update(down, filters={up: [f"{PROVENANCE} = '{stored['s1']}'"]})
            by_computed = store.resolve_update(down, filters={up: [f"{PROVENANCE} = '{computed['s1']}'"]})
            by_time = store.resolve_update(down, global_filters=["metaxy_updated_at IS NOT NULL"])
            dep_filtered = _feature(
                "sysfilter/dep", [mx.FeatureDep(feature=up, filters=[f"{suffixed} = '{stored['s2']}'"])]
            )
            by_dep_filter = store.resolve_update(dep_filtered)
        assert stored["s1"] != computed["s1"]
        assert id_set(by_upstream.new) == {"s1"}
        assert id_set(by_computed.new) == set()
        assert id_set(by_time.new) == {"s1", "s2"}
        assert id_set(by_dep_filter.new) == {"s2"}

    # --- data-version overrides (§9.1) -------------------------------------------------------------

    def test_data_version_override_stops_downstream_invalidation(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        up = _root("dv/up")
        down = _feature("dv/down", [up])
        store = store_factory()
        algo = store.hash_algorithm

        def up_rows(tag: str, content_a: str) -> pl.DataFrame:
            dv = pl.Series([{"default": content_a}, None], dtype=pl.Struct({"default": pl.String}))
            return samples(["a", "b"], tag=tag).with_columns(dv.alias(DATA_VERSION_BY_FIELD))

        with store.open("w"):
            store.write(up, up_rows("v1", "content-1"))
            inc = store.resolve_update(down)
            got = _by(inc.new)
            assert got["a"][PROVENANCE_BY_FIELD] == {
                "default": field_provenance(algo, "default", "1", {"dv/up.default": "content-1"})
            }
            assert got["b"][PROVENANCE_BY_FIELD] == {
                "default": field_provenance(algo, "default", "1", {"dv/up.default": "default:b:v1"})
            }
            store.write(down, inc.new)
            # New provenance everywhere, but "a" keeps its content hash: only "b" is stale.
            store.write(up, up_rows("v2", "content-1"))
            inc = store.resolve_update(down)
            assert id_set(inc.stale) == {"b"}
            store.write(down, inc.stale)
            store.write(up, up_rows("v2", "content-2"))
            inc = store.resolve_update(down)
        assert id_set(inc.stale) == {"a"}

    def test_partial_field_overrides_fall_back_to_provenance(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        up = _root("dvf/up", fields=("audio", "frames"))
        down = _feature(
            "dvf/down",
            [up],
            fields=[mx.FieldSpec(key="audio", code_version="1"), mx.FieldSpec(key="frames", code_version="1")],
        )
        store = store_factory()
        algo = store.hash_algorithm
        override = pl.Series(
            [{"audio": "content-audio", "frames": None}], dtype=pl.Struct({"audio": pl.String, "frames": pl.String})
        )
        with store.open("w"):
            store.write(up, samples(["a"], ("audio", "frames")).with_columns(override.alias(DATA_VERSION_BY_FIELD)))
            (stored,) = rows(store.read(up))
            (row,) = rows(store.resolve_update(down).new)
        assert stored[DATA_VERSION_BY_FIELD] == {"audio": "content-audio", "frames": "frames:a:v1"}
        assert row[PROVENANCE_BY_FIELD] == {
            "audio": field_provenance(algo, "audio", "1", {"dvf/up.audio": "content-audio"}),
            "frames": field_provenance(algo, "frames", "1", {"dvf/up.frames": "frames:a:v1"}),
        }

"""Finding and reading configuration files: discovery, ${VAR} expansion, ``extend``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from metaxy.config import MetaxyConfig, StoreConfig, find_config_file
from metaxy.errors import InvalidConfigError, MetaxyWarning

WriteFile = Callable[[str, str], Path]


# --- discovery -------------------------------------------------------------------------------


def test_bare_constructor_never_reads_toml(write_file: WriteFile, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_file("metaxy.toml", 'project = "fromfile"\n')
    monkeypatch.chdir(path.parent)
    assert MetaxyConfig().project is None
    assert MetaxyConfig.load().project == "fromfile"


def test_load_finds_metaxy_toml_in_parent_directory(write_file: WriteFile, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_file("repo/metaxy.toml", 'project = "repo"\n')
    (path.parent / "pkg" / "sub").mkdir(parents=True)
    monkeypatch.chdir(path.parent / "pkg" / "sub")
    config = MetaxyConfig.load()
    assert config.project == "repo"
    assert config.config_file == path.resolve()


def test_load_without_search_parents_only_looks_in_cwd(write_file: WriteFile, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_file("repo/metaxy.toml", 'project = "repo"\n')
    (path.parent / "sub").mkdir()
    monkeypatch.chdir(path.parent / "sub")
    config = MetaxyConfig.load(search_parents=False)
    assert config.project is None
    assert config.config_file is None


def test_auto_discovery_start_replaces_cwd(write_file: WriteFile) -> None:
    path = write_file("elsewhere/metaxy.toml", 'project = "elsewhere"\n')
    config = MetaxyConfig.load(auto_discovery_start=path.parent)
    assert config.project == "elsewhere"


def test_metaxy_toml_beats_pyproject_in_same_directory(write_file: WriteFile) -> None:
    write_file("repo/pyproject.toml", '[tool.metaxy]\nproject = "pyproject"\n')
    metaxy_toml = write_file("repo/metaxy.toml", 'project = "metaxy_toml"\n')
    assert find_config_file(metaxy_toml.parent) == metaxy_toml.resolve()
    assert MetaxyConfig.load(auto_discovery_start=metaxy_toml.parent).project == "metaxy_toml"


def test_pyproject_with_tool_metaxy_is_used(write_file: WriteFile) -> None:
    path = write_file("repo/pyproject.toml", '[project]\nname = "x"\n\n[tool.metaxy]\nproject = "from_pyproject"\n')
    config = MetaxyConfig.load(auto_discovery_start=path.parent)
    assert config.project == "from_pyproject"
    assert config.config_file == path.resolve()


@pytest.mark.parametrize(
    "pyproject", ['[project]\nname = "x"\n', "[tool.metaxy]\n", "[tool.ruff]\nline-length = 100\n"]
)
def test_pyproject_without_metaxy_section_is_skipped_for_parent(write_file: WriteFile, pyproject: str) -> None:
    parent = write_file("repo/metaxy.toml", 'project = "parent"\n')
    child = write_file("repo/pkg/pyproject.toml", pyproject)
    assert find_config_file(child.parent) == parent.resolve()


def test_closest_directory_wins(write_file: WriteFile) -> None:
    write_file("repo/metaxy.toml", 'project = "outer"\n')
    inner = write_file("repo/pkg/pyproject.toml", '[tool.metaxy]\nproject = "inner"\n')
    assert MetaxyConfig.load(auto_discovery_start=inner.parent).project == "inner"


def test_metaxy_config_env_var_wins_over_discovery(write_file: WriteFile, monkeypatch: pytest.MonkeyPatch) -> None:
    local = write_file("repo/metaxy.toml", 'project = "local"\n')
    chosen = write_file("other/custom.toml", 'project = "chosen"\n')
    monkeypatch.chdir(local.parent)
    monkeypatch.setenv("METAXY_CONFIG", str(chosen))
    config = MetaxyConfig.load()
    assert config.project == "chosen"
    assert config.config_file == chosen.resolve()


def test_explicit_file_wins_over_metaxy_config_env(write_file: WriteFile, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAXY_CONFIG", str(write_file("env.toml", 'project = "env"\n')))
    assert MetaxyConfig.load(write_file("explicit.toml", 'project = "explicit"\n')).project == "explicit"


def test_explicit_pyproject_reads_tool_metaxy(write_file: WriteFile) -> None:
    path = write_file("pyproject.toml", '[project]\nname = "x"\n[tool.metaxy]\nstore = "prod"\n')
    assert MetaxyConfig.load(path).store == "prod"


def test_missing_metaxy_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("METAXY_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(InvalidConfigError, match=r"nope\.toml' does not exist.*Hint:"):
        MetaxyConfig.load()


def test_no_file_anywhere_gives_env_and_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("METAXY_PROJECT", "envonly")
    config = MetaxyConfig.load(search_parents=False)
    assert config.project == "envonly"
    assert config.config_file is None


def test_invalid_toml_names_the_file(write_file: WriteFile) -> None:
    path = write_file("metaxy.toml", "project = \n")
    with pytest.raises(InvalidConfigError, match=r"metaxy\.toml' is not valid TOML.*Hint:"):
        MetaxyConfig.load(path)


def test_load_sets_global_config(write_file: WriteFile) -> None:
    config = MetaxyConfig.load(write_file("metaxy.toml", 'project = "glob"\n'))
    assert MetaxyConfig.is_set()
    assert MetaxyConfig.get() is config


def test_unknown_toml_keys_warn_and_are_ignored(write_file: WriteFile) -> None:
    path = write_file("metaxy.toml", 'project = "p"\nmigrations_dir = ".metaxy/migrations"\n')
    with pytest.warns(MetaxyWarning, match="migrations_dir"):
        config = MetaxyConfig.load(path)
    assert config.project == "p"


def test_invalid_value_in_file_raises_validation_error(write_file: WriteFile) -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 8"):
        MetaxyConfig.load(write_file("metaxy.toml", "hash_truncation_length = 4\n"))


def test_flat_store_options_in_file_get_a_hint(write_file: WriteFile) -> None:
    path = write_file("metaxy.toml", '[stores.dev]\ntype = "pkg.Store"\nroot_path = "/x"\n')
    with pytest.raises(ValidationError, match=r"Hint: move store options under \[stores.dev.config\]"):
        MetaxyConfig.load(path)


def test_all_keys_load_from_file(write_file: WriteFile) -> None:
    path = write_file(
        "metaxy.toml",
        """
project = "proj"
store = "prod"
entrypoints = ["a.features", "b.features"]
hash_truncation_length = 16
auto_create_tables = true
enable_map_datatype = true
sync = false
locked = true
metaxy_lock_path = "my.lock"
theme = "dark"

[stores.prod]
type = "pkg.Store"
[stores.prod.config]
root_path = "/data"
fallback_stores = ["dev"]

[stores.dev]
type = "pkg.Store"

[[extra_features]]
projects = ["other"]

[ext.sqlmodel]
enable = true
""",
    )
    config = MetaxyConfig.load(path)
    assert config.project == "proj"
    assert config.store == "prod"
    assert config.entrypoints == ["a.features", "b.features"]
    assert config.hash_truncation_length == 16
    assert config.auto_create_tables and config.enable_map_datatype and config.locked
    assert config.sync is False
    assert config.theme == "dark"
    assert config.lock_file == path.parent.resolve() / "my.lock"
    assert config.stores["prod"] == StoreConfig(
        type="pkg.Store", config={"root_path": "/data", "fallback_stores": ["dev"]}
    )
    assert config.extra_features == [{"projects": ["other"]}]
    assert config.plugins == ["sqlmodel"]


# --- precedence ------------------------------------------------------------------------------


def test_env_beats_file_and_merges_into_file_stores(write_file: WriteFile, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_file(
        "metaxy.toml",
        'project = "file"\nstore = "dev"\n[stores.prod]\ntype = "pkg.Store"\n'
        '[stores.prod.config]\nroot_path = "/file"\nkeep = 1\n',
    )
    monkeypatch.setenv("METAXY_STORE", "prod")
    monkeypatch.setenv("METAXY_STORES__PROD__CONFIG__ROOT_PATH", "/env")
    config = MetaxyConfig.load(path)
    assert config.project == "file"
    assert config.store == "prod"
    assert config.stores["prod"].type == "pkg.Store"
    assert config.stores["prod"].config == {"root_path": "/env", "keep": 1}


def test_env_can_add_a_store_with_type(write_file: WriteFile, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_file("metaxy.toml", '[stores.dev]\ntype = "pkg.Dev"\n')
    monkeypatch.setenv("METAXY_STORES__PROD__TYPE", "pkg.Prod")
    monkeypatch.setenv("METAXY_STORES__PROD__CONFIG__ROOT_PATH", "/p")
    config = MetaxyConfig.load(path)
    assert sorted(config.stores) == ["dev", "prod"]
    assert config.stores["prod"] == StoreConfig(type="pkg.Prod", config={"root_path": "/p"})


def test_env_store_without_type_is_dropped_but_file_stores_stay(
    write_file: WriteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_file("metaxy.toml", '[stores.dev]\ntype = "pkg.Dev"\n')
    monkeypatch.setenv("METAXY_STORES__STAGING__CONFIG__ROOT_PATH", "/s")
    monkeypatch.setenv("METAXY_STORES__STAGING__CONFIG__READ_ONLY", "1")
    with pytest.warns(MetaxyWarning) as record:
        config = MetaxyConfig.load(path)
    assert sorted(config.stores) == ["dev"]
    message = str(record[0].message)
    assert "stores.staging.config.read_only, stores.staging.config.root_path" in message


# --- ${VAR} expansion ------------------------------------------------------------------------


def test_env_var_templating(write_file: WriteFile, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MX_BRANCH", "feature-x")
    monkeypatch.delenv("MX_UNSET", raising=False)
    monkeypatch.setenv("MX_EMPTY", "")
    path = write_file(
        "metaxy.toml",
        """
entrypoints = ["${MX_UNSET:-default.module}", "pkg.${MX_BRANCH}"]
theme = "${MX_UNSET}plain"
[stores.branch]
type = "pkg.Store"
[stores.branch.config]
root_path = "s3://bucket/${MX_BRANCH}/${MX_UNSET:-main}"
fallback = "${MX_EMPTY:-used-when-empty}"
nested = { deep = ["${MX_BRANCH}"] }
literal = "$MX_BRANCH and ${ not a var }"
""",
    )
    config = MetaxyConfig.load(path)
    assert config.entrypoints == ["default.module", "pkg.feature-x"]
    assert config.theme == "plain"
    options = config.stores["branch"].config
    assert options["root_path"] == "s3://bucket/feature-x/main"
    assert options["fallback"] == "used-when-empty"
    assert options["nested"] == {"deep": ["feature-x"]}
    assert options["literal"] == "$MX_BRANCH and ${ not a var }"


def test_metaxy_config_path_may_be_relative_to_cwd(write_file: WriteFile, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_file("conf/dev.toml", 'project = "rel"\n')
    monkeypatch.chdir(path.parent.parent)
    monkeypatch.setenv("METAXY_CONFIG", "conf/dev.toml")
    assert MetaxyConfig.load().config_file == path.resolve()


# --- extend ----------------------------------------------------------------------------------


def test_extend_merges_scalars_dicts_and_lists(write_file: WriteFile) -> None:
    write_file(
        "shared/base.toml",
        """
project = "base"
theme = "dark"
entrypoints = ["shared.features"]
[stores.dev]
type = "pkg.Base"
[stores.prod]
type = "pkg.Prod"
[ext.a]
enable = true
""",
    )
    child = write_file(
        "proj/metaxy.toml",
        """
extend = "../shared/base.toml"
project = "child"
entrypoints = ["child.features"]
[stores.dev]
type = "pkg.Child"
""",
    )
    config = MetaxyConfig.load(child)
    assert config.project == "child"
    assert config.theme == "dark"
    assert config.entrypoints == ["shared.features", "child.features"]
    assert config.stores["dev"].type == "pkg.Child"
    assert config.stores["prod"].type == "pkg.Prod"
    assert config.plugins == ["a"]
    assert config.config_file == child.resolve()


def test_extend_replaces_a_store_entry_as_a_whole(write_file: WriteFile) -> None:
    write_file("base.toml", '[stores.dev]\ntype = "pkg.A"\n[stores.dev.config]\nroot_path = "/base"\n')
    child = write_file("metaxy.toml", 'extend = "base.toml"\n[stores.dev]\ntype = "pkg.B"\n')
    assert MetaxyConfig.load(child).stores["dev"].config == {}


def test_extend_chain_of_three(write_file: WriteFile) -> None:
    write_file("a/grand.toml", 'entrypoints = ["g"]\ntheme = "grand"\nstore = "g"\n')
    write_file("b/parent.toml", 'extend = "../a/grand.toml"\nentrypoints = ["p"]\ntheme = "parent"\n')
    child = write_file("c/metaxy.toml", 'extend = "../b/parent.toml"\nentrypoints = ["c"]\n')
    config = MetaxyConfig.load(child)
    assert config.entrypoints == ["g", "p", "c"]
    assert config.theme == "parent"
    assert config.store == "g"


def test_extend_absolute_path_and_env_var(write_file: WriteFile, monkeypatch: pytest.MonkeyPatch) -> None:
    base = write_file("base/base.toml", 'theme = "from-base"\n')
    monkeypatch.setenv("MX_BASE_DIR", str(base.parent))
    child = write_file("proj/metaxy.toml", 'extend = "${MX_BASE_DIR}/base.toml"\n')
    assert MetaxyConfig.load(child).theme == "from-base"


def test_extend_a_pyproject_reads_its_tool_metaxy(write_file: WriteFile) -> None:
    write_file("root/pyproject.toml", '[project]\nname = "x"\n[tool.metaxy]\ntheme = "pyproj"\n')
    child = write_file("root/pkg/metaxy.toml", 'extend = "../pyproject.toml"\n')
    assert MetaxyConfig.load(child).theme == "pyproj"


def test_extend_missing_file(write_file: WriteFile) -> None:
    child = write_file("metaxy.toml", 'extend = "missing.toml"\n')
    with pytest.raises(InvalidConfigError, match=r"extends '.*missing\.toml', which does not exist.*Hint:"):
        MetaxyConfig.load(child)


def test_extend_cycle(write_file: WriteFile) -> None:
    write_file("a.toml", 'extend = "b.toml"\n')
    write_file("b.toml", 'extend = "a.toml"\n')
    with pytest.raises(InvalidConfigError, match=r"Circular config inheritance: .*a\.toml -> .*b\.toml -> .*a\.toml"):
        MetaxyConfig.load(write_file("metaxy.toml", 'extend = "a.toml"\n'))


def test_extend_self_cycle(write_file: WriteFile) -> None:
    path = write_file("metaxy.toml", 'extend = "metaxy.toml"\n')
    with pytest.raises(InvalidConfigError, match="Circular config inheritance"):
        MetaxyConfig.load(path)


def test_extend_must_be_a_string(write_file: WriteFile) -> None:
    with pytest.raises(InvalidConfigError, match="extend = 3"):
        MetaxyConfig.load(write_file("metaxy.toml", "extend = 3\n"))

"""Feature discovery (``metaxy.entrypoints``) and ``metaxy.config.init``.

Modules are real files written to a temporary directory put on ``sys.path``; each test uses
module names of its own so Python's import cache cannot leak between tests. Modules record
their import in a shared log module (``<prefix>_log.events``).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from metaxy.config import MetaxyConfig, init
from metaxy.entrypoints import load_features, load_module_entrypoint, load_package_entrypoints
from metaxy.errors import EntrypointLoadError

_counter = itertools.count()


class Modules:
    """Writes importable modules into one directory on sys.path, under a unique prefix."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix = f"mxep{next(_counter)}_{root.name.replace('-', '_')}"
        (root / f"{self.prefix}_log.py").write_text("events = []\n")

    def name(self, short: str) -> str:
        return f"{self.prefix}_{short}"

    def write(self, short: str, body: str = "") -> str:
        name = self.name(short)
        code = f"import {self.prefix}_log\n{self.prefix}_log.events.append({short!r})\n{body}"
        (self.root / f"{name}.py").write_text(code)
        return name

    @property
    def events(self) -> list[str]:
        log: ModuleType = __import__(f"{self.prefix}_log")
        return list(log.events)

    def dist(self, dist_name: str, entry_points: dict[str, str], requires: tuple[str, ...] = ()) -> None:
        """Install a minimal distribution (a .dist-info folder) declaring metaxy.project entry points."""
        info = self.root / f"{dist_name.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        metadata = [f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 1.0"]
        metadata += [f"Requires-Dist: {req}" for req in requires]
        (info / "METADATA").write_text("\n".join(metadata) + "\n")
        lines = ["[metaxy.project]"] + [f"{name} = {value}" for name, value in entry_points.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Modules]:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    mods = Modules(root)
    yield mods
    for name in [m for m in sys.modules if m.startswith(mods.prefix)]:
        del sys.modules[name]


# --- modules ---------------------------------------------------------------------------------


def test_load_module_entrypoint_imports_module(modules: Modules) -> None:
    name = modules.write("features")
    module = load_module_entrypoint(name)
    assert module.__name__ == name
    assert modules.events == ["features"]


def test_load_module_entrypoint_failure_names_module_and_chains() -> None:
    with pytest.raises(EntrypointLoadError) as info:
        load_module_entrypoint("mx_definitely_missing.features")
    message = str(info.value)
    assert "'mx_definitely_missing.features'" in message
    assert message.index("Hint:") > message.index("mx_definitely_missing")
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    assert isinstance(info.value, ImportError)


def test_error_raised_while_importing_is_wrapped(modules: Modules) -> None:
    name = modules.write("broken", "raise ValueError('bad feature spec')\n")
    with pytest.raises(EntrypointLoadError, match=rf"'{name}'.*ValueError: bad feature spec.*Hint:") as info:
        load_module_entrypoint(name)
    assert isinstance(info.value.__cause__, ValueError)


def test_load_features_imports_config_entrypoints_in_order(modules: Modules) -> None:
    names = [modules.write("b"), modules.write("a")]
    loaded = load_features(names)
    assert modules.events == ["b", "a"]
    assert loaded == names


def test_load_features_defaults_to_active_config(modules: Modules) -> None:
    name = modules.write("cfg")
    with MetaxyConfig(entrypoints=[name]).use():
        load_features()
    assert modules.events == ["cfg"]


def test_load_features_twice_loads_once(modules: Modules) -> None:
    name = modules.write("once")
    assert load_features([name]) == [name]
    assert load_features([name]) == []
    assert modules.events == ["once"]


def test_reentrant_call_from_a_feature_module_is_a_no_op(modules: Modules) -> None:
    inner = modules.write("inner")
    outer = modules.write(
        "outer",
        f"from metaxy.entrypoints import load_features\nRESULT = load_features([{inner!r}])\n",
    )
    load_features([outer])
    assert sys.modules[outer].RESULT == []
    assert modules.events == ["outer"]


def test_load_features_failure_raises_entrypoint_load_error(modules: Modules) -> None:
    good = modules.write("good")
    with pytest.raises(EntrypointLoadError, match="mx_missing_mod"):
        load_features([good, "mx_missing_mod"])
    # The failed call does not leave the loader stuck: a later call works.
    other = modules.write("other")
    assert load_features([other]) == [other]


# --- environment variables -------------------------------------------------------------------


def test_env_entrypoints_processed_in_sorted_variable_order(modules: Modules, monkeypatch: pytest.MonkeyPatch) -> None:
    for short in ("one", "two", "three", "four"):
        modules.write(short)
    monkeypatch.setenv("METAXY_ENTRYPOINT_B", f"{modules.name('three')}, {modules.name('four')}")
    monkeypatch.setenv("METAXY_ENTRYPOINT_A", f"{modules.name('two')}")
    monkeypatch.setenv("METAXY_ENTRYPOINT", f"{modules.name('one')},")
    config_first = modules.write("config")
    load_features([config_first])
    assert modules.events == ["config", "one", "two", "three", "four"]


def test_env_entrypoint_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAXY_ENTRYPOINT", "mx_env_missing")
    with pytest.raises(EntrypointLoadError, match="mx_env_missing"):
        load_features([])


# --- package entry points --------------------------------------------------------------------


def test_package_entry_point_module_is_imported_and_callable_is_called(modules: Modules) -> None:
    mod = modules.write("pkgmod")
    func_mod = modules.write("pkgfunc", "def register():\n    import sys\n    sys.modules[__name__].CALLED = True\n")
    modules.dist(f"{modules.prefix}-dist", {"mod": mod, "func": f"{func_mod}:register"})
    loaded = load_package_entrypoints()
    assert sorted(loaded) == [f"{modules.prefix}-dist:func", f"{modules.prefix}-dist:mod"]
    assert sys.modules[func_mod].CALLED is True
    assert sorted(modules.events) == ["pkgfunc", "pkgmod"]
    assert load_package_entrypoints() == []


def test_package_entry_point_callable_called_once_across_load_features(modules: Modules) -> None:
    func_mod = modules.write("counter", "COUNT = 0\ndef register():\n    global COUNT\n    COUNT += 1\n")
    modules.dist(f"{modules.prefix}-counter", {"counter": f"{func_mod}:register"})
    load_features([])
    load_features([])
    assert sys.modules[func_mod].COUNT == 1


def test_package_entry_points_filtered_to_project_and_its_requirements(modules: Modules) -> None:
    app, lib, other, extra = (f"{modules.prefix}-{n}" for n in ("app", "lib", "other", "extra"))
    modules.dist(app, {"app": modules.write("app")}, requires=(lib, f"{extra}; extra == 'dev'"))
    modules.dist(lib, {"lib": modules.write("lib")})
    modules.dist(other, {"other": modules.write("other")})
    modules.dist(extra, {"extra": modules.write("extra")})
    load_features([], filter_project=app)
    assert sorted(modules.events) == ["app", "lib"]


def test_package_entry_points_unfiltered_when_project_not_installed(modules: Modules) -> None:
    modules.dist(f"{modules.prefix}-x", {"x": modules.write("x")})
    load_features([], filter_project="not_an_installed_distribution_mx")
    assert modules.events == ["x"]


def test_failing_package_entry_point(modules: Modules) -> None:
    broken = modules.write("brokenpkg", "def register():\n    raise RuntimeError('nope')\n")
    modules.dist(f"{modules.prefix}-broken", {"broken": f"{broken}:register"})
    with pytest.raises(EntrypointLoadError, match=r"entry point 'broken'.*RuntimeError: nope.*Hint:"):
        load_package_entrypoints()


# --- init ------------------------------------------------------------------------------------


def test_init_discovers_config_and_loads_features(
    modules: Modules, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = modules.write("initfeatures")
    project_dir = tmp_path / "project"
    project_dir.mkdir()
    (project_dir / "metaxy.toml").write_text(f'project = "proj"\nentrypoints = ["{name}"]\n')
    monkeypatch.chdir(project_dir)
    config = init()
    assert config.project == "proj"
    assert config.config_file == (project_dir / "metaxy.toml").resolve()
    assert MetaxyConfig.get() is config
    assert modules.events == ["initfeatures"]


def test_init_with_config_object(modules: Modules) -> None:
    name = modules.write("objfeatures")
    config = MetaxyConfig(project="given", entrypoints=[name])
    assert init(config, isolated=True) is config
    assert MetaxyConfig.get() is config
    assert modules.events == ["objfeatures"]


def test_init_with_config_path(modules: Modules, tmp_path: Path) -> None:
    name = modules.write("pathfeatures")
    path = tmp_path / "custom.toml"
    path.write_text(f'entrypoints = ["{name}"]\n')
    assert init(path).config_file == path.resolve()
    assert modules.events == ["pathfeatures"]


def test_init_propagates_entrypoint_errors(tmp_path: Path) -> None:
    path = tmp_path / "metaxy.toml"
    path.write_text('entrypoints = ["mx_init_missing"]\n')
    with pytest.raises(EntrypointLoadError, match="mx_init_missing"):
        init(path)

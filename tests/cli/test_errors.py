"""Every user-reachable error of ``mx``: one red ``Error:`` line, printed literally, and a documented exit code.

Exit codes: 1 error, 2 command line not understood, 3 internal error (see docs/cli.md).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from mxcli import Runner, assert_one_error_line, clean_env, run_mx


def test_markup_in_a_key_is_printed_literally_not_interpreted(mx: Runner) -> None:
    line = assert_one_error_line(mx("metadata", "status", "[/red]"))
    assert "Invalid feature key '[/red]'" in line


def test_hint_with_square_brackets_survives(project: Path) -> None:
    (project / "metaxy.toml").write_text('project = "cli_features"\nentrypoints = ["cli_features"]\n')
    line = assert_one_error_line(run_mx(project, "metadata", "status", "--all-features"))
    assert "[stores.dev]" in line and "[stores.dev.config]" in line


def test_json_mode_error_is_also_a_json_object_on_stdout(mx: Runner) -> None:
    done = mx("metadata", "status", "cli/raw", "--all-features", "-f", "json")
    assert_one_error_line(done)
    assert json.loads(done.stdout) == {
        "error": "CONFLICTING_FLAGS",
        "message": "Feature keys and --all-features are mutually exclusive. Hint: pass one of them.",
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["metadata", "status"], "No features selected"),
        (
            ["metadata", "status", "nope/x"],
            "Feature 'nope/x' is not in the feature graph. Available features: cli/chunks",
        ),
        (
            ["metadata", "status", "--store", "nope", "cli/raw"],
            "Store 'nope' is not configured. Available stores: backup, dev",
        ),
        (["metadata", "status", "cli/transcript", "--filter", "sid = "], "Invalid filter expression 'sid = '"),
        (["--project", "other", "list", "features"], "Project 'other' matches none of the 4 loaded features"),
        (["--project", "other", "--all-projects", "list", "features"], "mutually exclusive"),
        (["--all-projects", "lock"], "--all-projects is not allowed"),
        (["history", "--limit", "0"], "--limit must be at least 1, got 0"),
        (["graph", "render", "--up", "1"], "--up and --down need --feature"),
        (["graph", "render", "--feature", "cli/nope"], "Feature 'cli/nope' is not in the feature graph"),
        (["graph", "render", "--hash-length", "-1"], "--hash-length must be 0 or more, got -1"),
        (["graph", "render", "--snapshot", "deadbeef"], "Project version 'deadbeef' not found in system storage"),
        (["graph-diff", "render"], "Nothing was pushed for project 'cli_features'"),
        (["explain", "cli/chunks", "a"], "Sample id 'a' is ambiguous: the id columns are sid, chunk"),
        (["explain", "cli/raw", "nope=1"], "'nope' is not an id column"),
        (["trace", "nope=1"], "No feature has an id column for 'nope=1'"),
        (
            ["metadata", "delete", "cli/raw"],
            "Refusing without confirmation (stdin is not a terminal). Hint: pass --yes.",
        ),
        (["metadata", "copy", "cli/raw", "--from", "dev", "--to", "dev"], "--from and --to are both 'dev'"),
        (["metadata", "copy", "cli/raw", "--from", "dev", "--to", "nope"], "Store 'nope' is not configured"),
        (["metadata", "rebase", "cli/transcript", "--from", "deadbeef"], "Feature 'cli/transcript' has no metadata in"),
        (["push", "--tags.metaxy", "x"], "The 'metaxy' tag is reserved"),
        (["--project", "cli_features", "push"], "--project and --all-projects are not allowed"),
    ],
)
def test_bad_input_is_one_line_naming_the_value(mx: Runner, args: list[str], expected: str) -> None:
    assert expected in assert_one_error_line(mx(*args))


def test_rebasing_a_root_feature_is_refused(stored: Path) -> None:
    version = json.loads(run_mx(stored, "list", "features", "-f", "json").stdout)["features"][0]["version"]
    line = assert_one_error_line(run_mx(stored, "metadata", "rebase", "cli/raw", "--from", version))
    assert "Cannot rebase root feature 'cli/raw'" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["bogus"], 'Unknown command "bogus"'),
        (["metadata", "status", "--bogus"], "Unknown option: --bogus"),
        (["history", "--limit", "x"], 'Invalid value for --limit: unable to convert "x" into int'),
        (["graph", "render", "--format", "png"], "--format"),
        (["metadata", "copy", "cli/raw", "--to", "dev"], "--from"),
    ],
)
def test_command_line_not_understood_exits_2(mx: Runner, args: list[str], expected: str) -> None:
    line = assert_one_error_line(mx(*args), code=2)
    assert expected in line and "Hint: see `mx --help`" in line


def test_unknown_filter_column_is_a_typed_one_line_error_listing_columns(stored: Path) -> None:
    done = run_mx(stored, "metadata", "status", "cli/transcript", "--filter", "nope = 1", "-f", "json")
    line = assert_one_error_line(done)
    assert "'nope'" in line and "Available columns: sid" in line and "Hint" in line
    assert json.loads(done.stdout)["message"] == line.removeprefix("Error: ")


def test_config_errors_name_the_file_or_setting(project: Path) -> None:
    (project / "metaxy.toml").write_text("project = [\n")
    line = assert_one_error_line(run_mx(project, "list", "features"))
    assert "metaxy.toml" in line
    (project / "metaxy.toml").write_text(
        'project = "cli_features"\nentrypoints = ["cli_features"]\nhash_truncation_length = 3\n'
    )
    line = assert_one_error_line(run_mx(project, "list", "features"))
    assert "hash_truncation_length" in line
    line = assert_one_error_line(run_mx(project, "--config-file", str(project / "missing.toml"), "list", "features"))
    assert "missing.toml" in line


def test_environment_errors_name_the_setting_and_variable(project: Path) -> None:
    env = clean_env(project, METAXY_HASH_TRUNCATION_LENGTH="not-a-number")
    line = assert_one_error_line(run_mx(project, "list", "features", env=env))
    assert "hash_truncation_length" in line and "METAXY_HASH_TRUNCATION_LENGTH" in line


def test_failing_entrypoint_is_one_line(project: Path) -> None:
    (project / "metaxy.toml").write_text('project = "cli_features"\nentrypoints = ["no_such_module_here"]\n')
    line = assert_one_error_line(run_mx(project, "list", "features"))
    assert "no_such_module_here" in line


def test_no_features_loaded_is_reported(project: Path) -> None:
    (project / "metaxy.toml").write_text(
        'project = "cli_features"\n[stores.dev]\ntype = "metaxy.ext.duckdb.DuckDBMetadataStore"\n'
    )
    for args in (["list", "features"], ["metadata", "status", "--all-features", "--assert-in-sync"], ["plan"]):
        line = assert_one_error_line(run_mx(project, *args))
        assert "No features are loaded" in line and "entrypoints" in line


def test_assert_in_sync_fails_on_an_empty_selection(mx: Runner) -> None:
    done = mx("--project", "nobody", "metadata", "status", "--all-features", "--assert-in-sync", "-f", "json")
    line = assert_one_error_line(done)
    assert "Project 'nobody' matches none" in line
    assert json.loads(done.stdout)["error"] == "NO_FEATURES"


def test_store_path_that_is_a_file_of_another_kind_is_one_line(project: Path) -> None:
    csv = project / "data.csv"
    csv.write_text("a,b\n1,2\n")
    toml = (project / "metaxy.toml").read_text().replace(str(project / "m.duckdb"), str(csv))
    (project / "metaxy.toml").write_text(toml)
    done = run_mx(project, "push")
    # whatever the store layer decides (refuse the file or not), the CLI never shows a traceback
    assert "Traceback" not in done.stderr
    if done.returncode:
        assert_one_error_line(done)


def test_dotenv_is_loaded_and_the_environment_wins(project: Path) -> None:
    (project / ".env").write_text("# comment\nexport METAXY_STORE=nope\n")
    line = assert_one_error_line(run_mx(project, "metadata", "status", "cli/raw"))
    assert "'nope'" in line and "METAXY_STORE" in line
    ok = run_mx(project, "metadata", "status", "cli/raw", env=clean_env(project, METAXY_STORE="dev"))
    assert ok.returncode == 0, ok.stderr


def test_internal_errors_are_one_line_with_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    from metaxy.cli._errors import EXIT_INTERNAL, report

    assert report(ZeroDivisionError("[bold]boom[/bold]"), ["plan"]) == EXIT_INTERNAL
    err = capsys.readouterr().err.strip()
    assert err == (
        "Error: Internal error (ZeroDivisionError): [bold]boom[/bold]. Hint: this is a bug in metaxy; "
        "rerun with METAXY_TRACEBACK=1 and report the traceback."
    )


def test_multi_line_messages_are_folded(capsys: pytest.CaptureFixture[str]) -> None:
    from metaxy.cli._errors import report
    from metaxy.errors import InvalidConfigError

    report(InvalidConfigError(textwrap.dedent("first\n  second [x]\n")), [])
    assert capsys.readouterr().err == "Error: first; second [x]\n"


@pytest.mark.parametrize(("theme", "styled"), [("default", True), ("plain", False)])
def test_the_theme_setting_decides_whether_errors_are_coloured(project: Path, theme: str, styled: bool) -> None:
    env = clean_env(project, METAXY_THEME=theme)
    env["FORCE_COLOR"] = "1"  # colours as on a terminal, although stderr is a pipe
    done = run_mx(project, "list", "features", "--no-such-option", env=env)
    assert done.returncode != 0 and "no-such-option" in done.stderr
    assert ("\x1b[31m" in done.stderr) is styled


def test_an_unknown_theme_renders_like_the_default(project: Path) -> None:
    env = clean_env(project, METAXY_THEME="solarized")
    env["FORCE_COLOR"] = "1"
    done = run_mx(project, "list", "features", "--no-such-option", env=env)
    assert done.returncode != 0 and "\x1b[31m" in done.stderr

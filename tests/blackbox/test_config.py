"""Black-box tests of grantry's configuration (README, "Configuration"): the real binary read
with `--config FILE`, with `GRANTRY_CONFIG=FILE`, and with `GRANTRY_<SECTION>__<KEY>`
variables, each seen through what an integrator gets back; and a typo in a file or in a
variable, which stops `grantry serve` with a message naming the key.

The tests that need a running server use the `grantry_factory` fixture and so run on each
backend; the ones that only start `grantry serve` to see it refuse run once.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import _child_env

TWO_HOURS = 2 * 3600


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _expires_in(grantry) -> int:
    integ = grantry.new_integration()
    resp = grantry.exchange(integ)
    assert resp.status_code == 200, resp.text
    return resp.json()["expires_in"]


def _assert_two_hour_tokens(grantry) -> None:
    expires_in = _expires_in(grantry)
    # a fresh token lives the configured 2 h, less the second the answer may have taken
    assert TWO_HOURS - 2 <= expires_in <= TWO_HOURS, expires_in


TWO_HOUR_TOKENS = '[tokens]\naccess_ttl = "2h"\nreissue_after = "1h"\n'


def test_config_file_given_with_the_flag(grantry_factory, tmp_path):
    config = _write(tmp_path / "grantry.toml", TWO_HOUR_TOKENS)

    grantry = grantry_factory(args=["--config", str(config)])

    _assert_two_hour_tokens(grantry)


def test_config_file_named_by_grantry_config(grantry_factory, tmp_path):
    config = _write(tmp_path / "grantry.toml", TWO_HOUR_TOKENS)

    grantry = grantry_factory({"GRANTRY_CONFIG": str(config)})

    _assert_two_hour_tokens(grantry)


def test_section_key_variables_and_variables_that_are_not_configuration(grantry_factory):
    grantry = grantry_factory({
        "GRANTRY_TOKENS__ACCESS_TTL": "2h",
        "GRANTRY_TOKENS__REISSUE_AFTER": "3600",  # whole seconds are a duration too
        # not configuration: must neither be refused nor change anything
        "GRANTRY_BIN": "/nonexistent/grantry",
        "GRANTRY_TEST_DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
        "GRANTRY_TEST_REQUIRE_POSTGRES": "1",
    })

    _assert_two_hour_tokens(grantry)


def test_variable_overrides_the_file(grantry_factory, tmp_path):
    config = _write(tmp_path / "grantry.toml", '[tokens]\naccess_ttl = "5h"\nreissue_after = "1h"\n')

    grantry = grantry_factory({"GRANTRY_TOKENS__ACCESS_TTL": "2h"}, args=["--config", str(config)])

    _assert_two_hour_tokens(grantry)


def test_reissue_policy_reject_from_a_file_answers_429_slow_down(grantry_factory, tmp_path):
    config = _write(tmp_path / "grantry.toml", '[tokens]\nreissue_policy = "reject"\n')
    grantry = grantry_factory(args=["--config", str(config)])
    integ = grantry.new_integration()

    first = grantry.exchange(integ)
    second = grantry.exchange(integ)

    assert first.status_code == 200, first.text
    assert second.status_code == 429, (second.status_code, second.text)
    body = second.json()
    assert body["error"] == "slow_down", body
    assert body.get("error_description"), body
    assert "access_token" not in body, body
    retry_after = second.headers.get("Retry-After", "")
    assert retry_after.isdigit(), second.headers
    # the re-issue window is 3 h from the first token
    assert 3 * 3600 - 60 <= int(retry_after) <= 3 * 3600, retry_after
    assert "no-store" in second.headers.get("Cache-Control", "")
    # the first token still works; the window did not revoke anything
    assert grantry.rest("GET", "/databases", first.json()["access_token"]).status_code == 200


# ---- typos stop the server ------------------------------------------------------------------------

def _serve_refused(grantry_bin: Path, workdir: Path, args: list[str], env: dict[str, str]) -> str:
    """Runs `grantry serve` and expects it to refuse to start; returns its standard error."""
    try:
        proc = subprocess.run(
            [str(grantry_bin), *args, "--data", str(workdir / "data"), "serve", "--listen", "127.0.0.1:0"],
            capture_output=True, text=True, cwd=workdir, env=_child_env(env), timeout=30, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as started:
        pytest.fail(f"grantry serve started with a typo in its configuration:\n{started.stdout}\n{started.stderr}")
    assert proc.returncode != 0, (proc.stdout, proc.stderr)
    assert "listening" not in proc.stdout, proc.stdout
    return proc.stderr


def test_typo_in_a_config_file_stops_serve_naming_the_key(grantry_bin, tmp_path):
    config = _write(tmp_path / "grantry.toml", '[tokens]\naccess_ttl = "2h"\nreissue_aftr = "1h"\n')

    stderr = _serve_refused(grantry_bin, tmp_path, ["--config", str(config)], {})

    assert '"tokens.reissue_aftr"' in stderr, stderr
    assert str(config) in stderr, stderr
    assert "reissue_after" in stderr, "the message should list the keys of [tokens]: " + stderr


def test_unknown_section_in_a_config_file_stops_serve_naming_it(grantry_bin, tmp_path):
    config = _write(tmp_path / "grantry.toml", '[token]\naccess_ttl = "2h"\n')

    stderr = _serve_refused(grantry_bin, tmp_path, [], {"GRANTRY_CONFIG": str(config)})

    assert '"token"' in stderr, stderr
    assert str(config) in stderr, stderr


@pytest.mark.parametrize("variable, key", [
    ("GRANTRY_TOKENS__ACCES_TTL", "tokens.acces_ttl"),
    ("GRANTRY_TOKENS_ACCESS_TTL", "tokens_access_ttl"),  # one underscore: not a section
    ("GRANTRY_DATABASE__URI", "database.uri"),
], ids=["misspelt-key", "single-underscore", "database-uri"])
def test_typo_in_a_variable_stops_serve_naming_the_key_and_the_variable(grantry_bin, tmp_path, variable, key):
    stderr = _serve_refused(grantry_bin, tmp_path, [], {variable: "2h"})

    assert f'"{key}"' in stderr, stderr
    assert variable in stderr, stderr

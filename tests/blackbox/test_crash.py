"""Crash consistency: what grantry acknowledged survives a SIGKILL (tests/blackbox/crash.py).

Three cycles per backend of mixed load, SIGKILL at a random moment, restart on the same
database and port, and every acknowledged answer checked again; `scripts/crash-run` runs many
more (docs/crash-consistency.md). A further test removes acknowledged rows while the server is
down and requires the checks to report exactly those, so that a lost write cannot pass unseen.
"""

from __future__ import annotations

import os
import random

import pytest

import crash

CYCLES = 3
SEED = int(os.environ.get("GRANTRY_TEST_CRASH_SEED") or random.randrange(2 ** 32))


@pytest.fixture
def crash_driver(request, grantry_factory, tmp_path):
    """A Driver on a fresh server of the fixture's backend, started with the driver's settings."""
    server, dbname = crash.new_database(grantry_factory.backend, tmp_path / "crash")
    try:
        server.start()
        driver = crash.Driver(server, SEED, log=lambda _line: None)
        driver.setup()
        yield driver
    finally:
        failed = getattr(getattr(request.node, "rep_call", None), "failed", False)
        if server.is_running():
            server.stop()
        server.http.close()
        crash.drop_database(dbname)
        if failed:
            out, err = server.server_output()
            print(f"--- crash driver seed {SEED} (GRANTRY_TEST_CRASH_SEED); logs in {server.workdir}")
            print("--- stderr (tail)\n" + err[-6000:])


def test_acknowledged_writes_survive_sigkill(crash_driver):
    results = [crash_driver.run_cycle() for _ in range(CYCLES)]

    summary = crash_driver.summary
    assert summary.lost == [], f"seed {SEED}: " + "\n".join(summary.lost)
    assert summary.failures == [], f"seed {SEED}: " + "\n".join(summary.failures)
    # the run proves something only if every kind of write was acknowledged and checked
    assert sum(r.checked for r in results) > 0
    for kind in ("access_token", "cc_token", "refresh_token", "key_created", "list_created", "contact_added",
                 "event", "session", "code_tokens"):
        assert summary.checked[kind] > 0, (kind, summary.lines())
    assert summary.acknowledged["revoke_access"] + summary.acknowledged["revoke_refresh"] > 0, summary.lines()
    if crash_driver.server.backend == "sqlite":
        assert summary.integrity == {"ok": CYCLES}, summary.integrity


def test_checks_report_an_acknowledged_write_that_is_gone(crash_driver):
    """The checks are not vacuous: an acknowledged event and contact removed from the database
    while the server is down are each reported as lost, and nothing else is."""
    removed: dict[str, str] = {}
    for _ in range(5):  # until an event and a contact were acknowledged
        crash_driver.run_cycle()
        if {"event", "contact_added"} <= {e.kind for e in crash_driver.ledger.entries}:
            break

    def remove_rows(driver: crash.Driver) -> None:
        entries = driver.ledger.entries
        event = next(e for e in reversed(entries) if e.kind == "event")
        contact = next(e for e in reversed(entries) if e.kind == "contact_added")
        crash.execute_sql(driver.server, f"DELETE FROM events WHERE transaction_id = '{event.what['transaction_id']}'")
        crash.execute_sql(driver.server, f"DELETE FROM contacts WHERE id = {int(contact.what['id'])}")
        removed["event"] = event.what["transaction_id"]
        removed["contact"] = f"contact {contact.what['id']} {contact.what['email']}"

    result = crash_driver.run_cycle(while_down=remove_rows)

    assert crash_driver.summary.lost == result.violations, "only the cycle that removed rows may report losses"
    assert crash_driver.summary.failures == [], crash_driver.summary.failures
    assert len(result.violations) == 2, result.violations
    assert any(removed["event"] in v and "not in the events table" in v for v in result.violations), result.violations
    assert any(removed["contact"] in v and "found 404" in v for v in result.violations), result.violations

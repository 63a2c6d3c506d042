"""A peer-to-peer migration proves its destination before it sends the
password: a wrong pinned fingerprint, or an https destination neither
pinned nor recorded in the source's known_hosts, gets no login at all
(the destination's log shows none); trust on first use, when asked for,
records the certificate and a changed one is then refused."""

import pytest

from conftest import guest_vm_record
from migration_helpers import wait_task
from policy_helpers import TlsTernd

LOGIN_MARKS = ("logged in", "authentication failed")


@pytest.fixture
def pair(ternd_factory, tmp_path):
    a = ternd_factory("a", extra_args=("--accel", "tcg"))
    b = TlsTernd(tmp_path / "b", ["--accel", "tcg"])
    b.start()
    yield a, b
    b.close()


def logins(t):
    return sum(t.log_text().count(m) for m in LOGIN_MARKS)


def migrate(a, guest, dest, name):
    x = a.xapi()
    vm = x.call("VM.create", guest_vm_record(guest, name=name))
    task = x.call("Async.VM.migrate_send", vm, dest, False, {}, {},
                  {"control": "p2p"})
    return wait_task(x, task, 60)


def dest(b, **extra):
    d = {"url": b.url.rstrip("/"), "user": "admin", "password": "adminpw"}
    d.update(extra)
    return d


def test_wrong_fingerprint_gets_no_password(pair, guest):
    a, b = pair
    wrong = ":".join(["AB"] * 32)
    assert wrong != b.fingerprint()
    rec = migrate(a, guest, dest(b, fingerprint=wrong), "wrongfp")
    assert rec["status"] == "failure"
    assert "fingerprint" in " ".join(rec["error_info"])
    assert logins(b) == 0, b.log_text()[-2000:]


def test_unverified_destination_is_refused(pair, guest):
    a, b = pair
    rec = migrate(a, guest, dest(b), "unknown")
    assert rec["status"] == "failure"
    assert rec["error_info"][0] == "SSL_VERIFY_ERROR", rec["error_info"]
    assert "trust_on_first_use" in rec["error_info"][1]
    assert logins(b) == 0
    assert not (a.state_dir / "known_hosts").exists()


def test_pinned_fingerprint_migrates(pair, guest):
    a, b = pair
    rec = migrate(a, guest, dest(b, fingerprint=b.fingerprint().lower()),
                  "pinned")
    assert rec["status"] == "success", rec["error_info"]
    assert logins(b) >= 1


def test_trust_on_first_use_records_then_refuses_a_change(pair, guest):
    a, b = pair
    rec = migrate(a, guest, dest(b, trust_on_first_use="true"), "tofu")
    assert rec["status"] == "success", rec["error_info"]
    known = (a.state_dir / "known_hosts").read_text().split()
    assert known == [f"127.0.0.1:{b.port}", b.fingerprint().upper()]
    # Recorded: the next one needs no option.
    rec = migrate(a, guest, dest(b), "known")
    assert rec["status"] == "success", rec["error_info"]
    seen = logins(b)
    # A changed certificate (the line no longer matches) is refused, even
    # with trust on first use asked for: it is not a first use.
    (a.state_dir / "known_hosts").write_text(
        f"127.0.0.1:{b.port} " + ":".join(["CD"] * 32) + "\n")
    rec = migrate(a, guest, dest(b, trust_on_first_use="true"), "changed")
    assert rec["status"] == "failure"
    assert "fingerprint" in " ".join(rec["error_info"])
    assert logins(b) == seen

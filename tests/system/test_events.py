"""event.from: add/mod/del with snapshots, a long poll that wakes promptly
on a change, EVENTS_LOST for a bad token, and event.inject."""

import json
import socket
import threading
import time

import pytest

from conftest import XapiFailure


class FastJson:
    """JSON-RPC, one connection per request (ternd answers each with
    Connection: close), each request in one segment (http.client's two
    writes meet Nagle and delayed ACKs)."""

    def __init__(self, where, session):
        self.where = where
        self.session = session
        self.sock = self.file = None

    def _connect(self):
        self.close()
        if isinstance(self.where, str):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(self.where)
        else:
            self.sock = socket.create_connection(("127.0.0.1", self.where))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")

    def call(self, method, *args):
        body = json.dumps({"jsonrpc": "2.0", "method": method, "id": 1,
                           "params": [self.session, *args]}).encode()
        self._connect()
        self.sock.sendall(b"POST /jsonrpc HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body) + body)
        length = None
        while True:
            line = self.file.readline()
            assert line, "connection closed"
            if line in (b"\r\n", b"\n"):
                break
            k, _, v = line.decode().partition(":")
            if k.strip().lower() == "content-length":
                length = int(v)
        reply = json.loads(self.file.read(length))
        assert "error" not in reply, reply
        return reply["result"]

    def close(self):
        if self.file is not None:
            self.file.close()
            self.sock.close()
        self.sock = self.file = None


def token_now(api):
    return api.call("event.from", ["VM"], "", 0.0)["token"]


def vm_events(result, ref):
    return [e for e in result["events"] if e["ref"] == ref]


def test_initial_state_lists_objects(api):
    vm = api.call("VM.create", {"name_label": "present"})
    res = api.call("event.from", ["*"], "", 0.0)
    assert isinstance(res["token"], str) and res["token"]
    # XAPI names classes in lower case in events ("vm", "host").
    classes = {e["class"].lower() for e in res["events"]}
    assert {"vm", "host", "pool"} <= classes
    snap = [e for e in res["events"] if e["ref"] == vm][0]["snapshot"]
    assert snap["name_label"] == "present"


def test_add_mod_del(api):
    tok = token_now(api)
    vm = api.call("VM.create", {"name_label": "watched"})
    res = api.call("event.from", ["VM"], tok, 5.0)
    evs = vm_events(res, vm)
    assert [e["operation"] for e in evs] == ["add"]
    assert evs[0]["class"].lower() == "vm"
    assert evs[0]["snapshot"]["name_label"] == "watched"
    for key in ("id", "timestamp"):
        assert key in evs[0]

    tok = res["token"]
    api.call("VM.set_name_label", vm, "changed")
    res = api.call("event.from", ["VM"], tok, 5.0)
    evs = vm_events(res, vm)
    assert evs and evs[-1]["operation"] == "mod"
    assert evs[-1]["snapshot"]["name_label"] == "changed"

    tok = res["token"]
    api.call("VM.destroy", vm)
    res = api.call("event.from", ["VM"], tok, 5.0)
    evs = vm_events(res, vm)
    assert evs and evs[-1]["operation"] == "del"


def test_class_filter(api):
    tok = api.call("event.from", ["host"], "", 0.0)["token"]
    api.call("VM.create", {"name_label": "not-a-host"})
    t0 = time.monotonic()
    res = api.call("event.from", ["host"], tok, 0.5)
    assert [e for e in res["events"] if e["class"].lower() == "vm"] == []
    assert time.monotonic() - t0 >= 0.4


def test_timeout_with_no_events(api):
    tok = token_now(api)
    t0 = time.monotonic()
    res = api.call("event.from", ["VM"], tok, 1.0)
    took = time.monotonic() - t0
    assert res["events"] == []
    assert 0.9 <= took < 3.0, took
    assert res["token"]


def test_waiting_event_from_wakes_promptly(ternd):
    watcher = ternd.xapi()
    changer = ternd.xapi()
    vm = changer.call("VM.create", {"name_label": "before"})
    tok = token_now(watcher)
    out = {}

    def wait():
        out["res"] = watcher.call("event.from", ["VM"], tok, 30.0)
        out["t"] = time.monotonic()

    th = threading.Thread(target=wait)
    th.start()
    time.sleep(0.5)  # let the poll park on the server
    assert th.is_alive(), "event.from returned before any change"
    changer.call("VM.set_name_label", vm, "after")
    t_change = time.monotonic()
    th.join(10)
    assert not th.is_alive()
    latency = out["t"] - t_change
    assert latency < 0.2, f"event.from woke {latency * 1000:.0f} ms after the change"
    evs = vm_events(out["res"], vm)
    assert evs and evs[-1]["snapshot"]["name_label"] == "after"


@pytest.mark.parametrize("token", ["bogus", "-5", "12abc"])
def test_bad_token_events_lost(api, token):
    with pytest.raises(XapiFailure) as e:
        api.call("event.from", ["VM"], token, 0.0)
    assert e.value.code == "EVENTS_LOST"


def test_stale_token_after_ring_overflow(ternd, api):
    """A token older than the event ring is lost.  The ring holds 8192
    events; inject is the cheapest way to push that many.  It goes over
    the Unix socket: on TCP every reply waits ~40 ms for a delayed ACK
    (ternd's replies meet Nagle), which would make this take minutes."""
    tok = token_now(api)
    vm = api.call("VM.create", {"name_label": "flood"})
    conn = FastJson(ternd.socket, api.session)
    for _ in range(8300):
        conn.call("event.inject", "VM", vm)
    conn.close()
    with pytest.raises(XapiFailure) as e:
        api.call("event.from", ["VM"], tok, 0.0)
    assert e.value.code == "EVENTS_LOST"


def test_inject(api):
    vm = api.call("VM.create", {"name_label": "poked"})
    tok = token_now(api)
    itok = api.call("event.inject", "VM", vm)
    assert isinstance(itok, str) and itok
    res = api.call("event.from", ["VM"], tok, 5.0)
    evs = vm_events(res, vm)
    assert evs, res
    assert evs[-1]["snapshot"]["name_label"] == "poked"
    with pytest.raises(XapiFailure) as e:
        api.call("event.inject", "VM", "OpaqueRef:none")
    assert e.value.code == "HANDLE_INVALID"


def test_events_over_jsonrpc(ternd):
    j = ternd.jsonrpc("2.0")
    tok = j.call("event.from", ["VM"], "", 0.0)["token"]
    vm = j.call("VM.create", {"name_label": "jev"})
    res = j.call("event.from", ["VM"], tok, 5.0)
    assert [e["operation"] for e in vm_events(res, vm)] == ["add"]


def test_snapshots_are_frozen(api):
    """Each event keeps the record as it was at that change, not as it is
    now (the store is copy-on-write)."""
    tok = token_now(api)
    vm = api.call("VM.create", {"name_label": "v1"})
    api.call("VM.set_name_label", vm, "v2")
    api.call("VM.set_name_label", vm, "v3")
    res = api.call("event.from", ["VM"], tok, 5.0)
    names = [e["snapshot"]["name_label"] for e in vm_events(res, vm)]
    assert names == ["v1", "v2", "v3"], names

"""Hostile and broken requests, one test each.  Every one must get an
error reply (or an HTTP error status), never a crash; after each the
daemon still serves a good request."""

import http.client
import json
import socket

import pytest

from conftest import XapiFailure


def post(ternd, path, body, ctype, timeout=60):
    conn = http.client.HTTPConnection("127.0.0.1", ternd.port, timeout=timeout)
    try:
        conn.request("POST", path, body, {"Content-Type": ctype})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def post_xml(ternd, body):
    return post(ternd, "/", body, "text/xml")


def post_json(ternd, body):
    return post(ternd, "/jsonrpc", body, "application/json")


@pytest.fixture
def good(ternd):
    """Checks after the test that the daemon lives and answers."""
    x = ternd.xapi()
    vm = x.call("VM.create", {"name_label": "sentinel"})
    yield x
    assert ternd.alive(), ternd.log_text()[-2000:]
    assert x.call("VM.get_name_label", vm) == "sentinel"
    assert ternd.xapi().call("VM.get_name_label", vm) == "sentinel"


def xml_fault_or_failure(status, data):
    """True if the reply is an XML-RPC fault or a XAPI Failure, or an HTTP
    4xx."""
    if 400 <= status < 500:
        return True
    assert status == 200, (status, data[:200])
    return b"<fault>" in data or b"Failure" in data


def json_error(status, data):
    if 400 <= status < 500:
        return None
    assert status == 200, (status, data[:200])
    reply = json.loads(data)
    assert reply.get("error") not in (None, {}), reply
    return reply["error"]


def test_malformed_xml(ternd, good):
    for body in (b"<methodCall><methodName>VM.get_all</methodName><params>",
                 b"not xml at all", b"", b"<?xml version='1.0'?>",
                 b"<methodCall><params/></methodCall>",
                 b"<methodCall><methodName>x</methodName><params><param>"
                 b"<value><int>notanint</int></value></param></params></methodCall>"):
        status, data = post_xml(ternd, body)
        assert xml_fault_or_failure(status, data), (body, data)


def test_malformed_json(ternd, good):
    for body in (b"{", b"[1,2", b"null", b"\"str\"", b"{\"method\": 5}",
                 b"{\"method\": \"VM.get_all\", \"params\": 7, \"id\": 1}",
                 b"{} trailing"):
        status, data = post_json(ternd, body)
        json_error(status, data)


def test_wrong_types(ternd, good):
    vm = good.call("VM.create", {"name_label": "t"})
    with pytest.raises(XapiFailure) as e:
        good.call("VM.set_name_label", vm, 12)
    assert e.value.code == "FIELD_TYPE_ERROR"
    with pytest.raises(XapiFailure) as e:
        good.call("VM.set_tags", vm, "not-a-set")
    assert e.value.code == "FIELD_TYPE_ERROR"
    with pytest.raises(XapiFailure) as e:
        good.call("VM.create", {"memory_static_max": "lots"})
    assert e.value.code == "FIELD_TYPE_ERROR"
    with pytest.raises(XapiFailure) as e:
        good.call("VM.get_record", 42)
    assert e.value.code in ("FIELD_TYPE_ERROR", "HANDLE_INVALID")
    assert good.call("VM.get_name_label", vm) == "t"


def test_wrong_argument_counts(ternd, good):
    vm = good.call("VM.create", {})
    with pytest.raises(XapiFailure) as e:
        good.call("VM.get_record")
    assert e.value.desc == ["MESSAGE_PARAMETER_COUNT_MISMATCH",
                            "VM.get_record", "2", "1"]
    with pytest.raises(XapiFailure) as e:
        good.call("VM.set_name_label", vm, "a", "b")
    assert e.value.desc == ["MESSAGE_PARAMETER_COUNT_MISMATCH",
                            "VM.set_name_label", "3", "4"]
    with pytest.raises(XapiFailure) as e:
        good.raw("session.login_with_password")
    assert e.value.code == "MESSAGE_PARAMETER_COUNT_MISMATCH"


def test_unknown_method(ternd, good):
    for m in ("VM.frobnicate", "nosuchclass.get_all", "Async.VM.nothing",
              "Async.VM.get_record"):
        with pytest.raises(XapiFailure) as e:
            good.call(m)
        assert e.value.desc == ["MESSAGE_METHOD_UNKNOWN", m]
    with pytest.raises(XapiFailure) as e:
        raw_xml_call(ternd, ".")
    assert e.value.code == "MESSAGE_METHOD_UNKNOWN"
    # An empty name may be refused by the decoder instead.
    with pytest.raises(XapiFailure):
        raw_xml_call(ternd, "")


def raw_xml_call(ternd, method):
    body = (f"<?xml version='1.0'?><methodCall><methodName>{method}"
            "</methodName><params></params></methodCall>").encode()
    status, data = post_xml(ternd, body)
    assert status == 200
    import xmlrpc.client
    (reply,), _ = xmlrpc.client.loads(data)
    raise XapiFailure(reply["ErrorDescription"])


def test_invalid_ref(ternd, good):
    for ref in ("OpaqueRef:NULL", "OpaqueRef:nonexistent", "garbage", ""):
        with pytest.raises(XapiFailure) as e:
            good.call("VM.get_record", ref)
        assert e.value.desc == ["HANDLE_INVALID", "VM", ref]


def test_ref_of_another_class(ternd, good):
    host = good.call("session.get_this_host", good.session)
    with pytest.raises(XapiFailure) as e:
        good.call("VM.destroy", host)
    assert e.value.desc == ["HANDLE_INVALID", "VM", host]
    with pytest.raises(XapiFailure) as e:
        good.call("VM.get_record", good.session)
    assert e.value.code == "HANDLE_INVALID"
    vm = good.call("VM.create", {})
    with pytest.raises(XapiFailure) as e:
        good.call("host.get_record", vm)
    assert e.value.desc == ["HANDLE_INVALID", "host", vm]
    assert host in good.call("host.get_all")


def test_body_over_cap(ternd, good):
    size = 16 * 1024 * 1024 + 1024
    conn = http.client.HTTPConnection("127.0.0.1", ternd.port, timeout=60)
    try:
        conn.putrequest("POST", "/")
        conn.putheader("Content-Type", "text/xml")
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        chunk = b" " * (1024 * 1024)
        sent = 0
        try:
            while sent < size:
                conn.send(chunk[:min(len(chunk), size - sent)])
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused from the headers, fine
        resp = conn.getresponse()
        data = resp.read()
        assert resp.status == 413 or xml_fault_or_failure(resp.status, data)
    except (ConnectionResetError, http.client.RemoteDisconnected):
        pytest.fail("ternd closed the connection without a reply")
    finally:
        conn.close()


def test_chunked_body_refused(ternd, good):
    conn = http.client.HTTPConnection("127.0.0.1", ternd.port, timeout=30)
    try:
        conn.request("POST", "/", iter([b"<methodCall>", b"</methodCall>"]),
                     {"Content-Type": "text/xml"}, encode_chunked=True)
        resp = conn.getresponse()
        data = resp.read()
        assert 400 <= resp.status < 500 or xml_fault_or_failure(resp.status, data)
    finally:
        conn.close()


def test_deeply_nested_xml(ternd, good):
    n = 100_000
    body = ("<?xml version='1.0'?><methodCall><methodName>VM.get_all"
            "</methodName><params><param>" + "<value><array><data>" * n
            + "</data></array></value>" * n + "</param></params></methodCall>")
    status, data = post_xml(ternd, body.encode())
    assert xml_fault_or_failure(status, data)


def test_deeply_nested_json(ternd, good):
    n = 100_000
    body = ('{"jsonrpc":"2.0","id":1,"method":"VM.get_all","params":['
            + "[" * n + "]" * n + "]}")
    status, data = post_json(ternd, body.encode())
    json_error(status, data)
    body = '{"a":' * n + "1" + "}" * n
    status, data = post_json(ternd, body.encode())
    json_error(status, data)


def test_invalid_utf8(ternd, good):
    vm = good.call("VM.create", {"name_label": "utf"})
    body = (b"<?xml version='1.0'?><methodCall><methodName>VM.set_name_label"
            b"</methodName><params><param><value><string>"
            + good.session.encode() + b"</string></value></param><param><value>"
            b"<string>" + vm.encode() + b"</string></value></param><param><value>"
            b"<string>bad \xff\xfe \xc3\x28 name</string></value></param>"
            b"</params></methodCall>")
    status, data = post_xml(ternd, body)
    assert xml_fault_or_failure(status, data)
    body = (b'{"jsonrpc":"2.0","id":1,"method":"VM.set_name_label","params":["'
            + good.session.encode() + b'","' + vm.encode()
            + b'","bad \xff\xfe \xc3\x28"]}')
    status, data = post_json(ternd, body)
    json_error(status, data)
    assert good.call("VM.get_name_label", vm) == "utf"


def test_billion_laughs(ternd, good):
    lol = ['<!ENTITY lol "lol">']
    for i in range(1, 10):
        prev = "lol" if i == 1 else f"lol{i - 1}"
        lol.append(f'<!ENTITY lol{i} "' + f"&{prev};" * 10 + '">')
    body = ('<?xml version="1.0"?><!DOCTYPE methodCall [' + "".join(lol)
            + ']><methodCall><methodName>session.login_with_password'
            '</methodName><params><param><value><string>&lol9;</string>'
            '</value></param><param><value><string>x</string></value></param>'
            '</params></methodCall>')
    status, data = post_xml(ternd, body.encode(), )
    assert xml_fault_or_failure(status, data)
    assert b"lollollol" not in data
    assert len(data) < 100_000


def test_xxe_external_entity(ternd, good, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-4f9a")
    for uri in (f"file://{secret}", "file:///etc/passwd"):
        body = ('<?xml version="1.0"?><!DOCTYPE methodCall [<!ENTITY xxe '
                f'SYSTEM "{uri}">]><methodCall><methodName>'
                'session.login_with_password</methodName><params><param>'
                '<value><string>&xxe;</string></value></param><param><value>'
                '<string>x</string></value></param></params></methodCall>')
        status, data = post_xml(ternd, body.encode())
        assert xml_fault_or_failure(status, data)
        assert b"TOPSECRET" not in data
        assert b"root:x:0" not in data
    assert b"TOPSECRET" not in ternd.log_text().encode()


def test_burst_of_malformed_then_good(ternd, good):
    bodies = [b"<methodCall", b"{", b"\x00\x01\x02", b"<a>" * 50,
              b'{"method":null}']
    for i in range(200):
        body = bodies[i % len(bodies)]
        path = "/jsonrpc" if body[:1] in (b"{", b"\x00") else "/"
        status, data = post(ternd, path, body,
                            "application/json" if path == "/jsonrpc" else "text/xml")
        assert status < 500, (status, data[:200])
    # Raw garbage that is not even HTTP.
    for _ in range(10):
        with socket.create_connection(("127.0.0.1", ternd.port), 5) as s:
            s.sendall(b"\x16\x03\x01 garbage not http\r\n\r\n")
            try:
                s.recv(1024)
            except (ConnectionResetError, socket.timeout):
                pass
    assert good.call("VM.get_all") is not None


def test_wrong_paths_and_verbs(ternd, good):
    conn = http.client.HTTPConnection("127.0.0.1", ternd.port, timeout=10)
    conn.request("GET", "/")
    resp = conn.getresponse()
    resp.read()
    assert 400 <= resp.status < 500
    conn.close()
    status, _ = post(ternd, "/nothing-here", b"{}", "application/json")
    assert 400 <= status < 500

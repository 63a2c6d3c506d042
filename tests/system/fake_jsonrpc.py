#!/usr/bin/env python3
"""fake_jsonrpc: a scripted stand-in for ternd's JSON-RPC endpoint.

Enough of the XAPI data model (host, VM, task, event) to exercise libtern
and the tern CLI before the real daemon exists: sessions, VM records and
power states with XAPI's errors, Async.* tasks, event.from long polls, and
a simulated migration whose task reports progress in other_config.

    fake_jsonrpc.py --unix /tmp/t.sock          # root trusted, no password
    fake_jsonrpc.py --tcp 127.0.0.1:8099 --password secret
    fake_jsonrpc.py ... --tls cert.pem key.pem  # https on --tcp

It is a test fixture, not a reference: where it and ternd disagree, ternd
(and XAPI) win.
"""
import argparse, json, os, socketserver, ssl, threading, time, uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

LOCK = threading.Condition()
STATE = {"objects": {"host": {}, "VM": {}, "task": {}}, "events": [], "sessions": {}}
HOST_NAME = "fake"


class XapiError(Exception):
    def __init__(self, code, *params):
        super().__init__(code)
        self.code, self.params = code, [str(p) for p in params]


def new_ref():
    return "OpaqueRef:" + str(uuid.uuid4())


def emit(cls, op, ref):
    """Records an event; callers hold LOCK."""
    ev = {"id": len(STATE["events"]) + 1, "timestamp": time.strftime("%Y%m%dT%H:%M:%SZ", time.gmtime()),
          "class": cls.lower(), "operation": op, "ref": ref,
          "snapshot": json.loads(json.dumps(STATE["objects"][cls].get(ref)))}
    STATE["events"].append(ev)
    LOCK.notify_all()


def obj(cls, ref):
    o = STATE["objects"][cls].get(ref)
    if o is None:
        raise XapiError("HANDLE_INVALID", cls, ref)
    return o


def add(cls, rec):
    ref = new_ref()
    rec.setdefault("uuid", str(uuid.uuid4()))
    STATE["objects"][cls][ref] = rec
    emit(cls, "add", ref)
    return ref


def vm_defaults(rec):
    base = {"name_label": "", "name_description": "", "power_state": "Halted",
            "memory_static_max": 268435456, "memory_dynamic_max": 268435456,
            "VCPUs_max": 1, "VCPUs_at_startup": 1, "is_a_template": False, "tags": [],
            "other_config": {}, "platform": {}, "PV_kernel": "", "PV_ramdisk": "", "PV_args": "",
            "resident_on": "OpaqueRef:NULL", "domid": -1, "console": ""}
    base.update(rec)
    return base


def set_power(vm_ref, expected, new):
    vm = obj("VM", vm_ref)
    if vm["power_state"] not in expected:
        raise XapiError("VM_BAD_POWER_STATE", vm_ref, expected[0], vm["power_state"])
    vm["power_state"] = new
    if new == "Running":
        vm["console"] += "[    0.000000] Linux version 6.1 (fake)\nlogin: "
    emit("VM", "mod", vm_ref)


def run_migration(task_ref, vm_ref, dest, options):
    """Simulates a migration: phases and figures in the task's other_config."""
    total = 512 * 1024 * 1024
    for i, phase in enumerate(["setup", "iterating", "iterating", "iterating", "switchover", "completed"]):
        time.sleep(0.15)
        with LOCK:
            t = obj("task", task_ref)
            done = total * i // 5
            t["progress"] = i / 5
            t["other_config"].update({"phase": phase, "transferred_bytes": str(done),
                                      "remaining_bytes": str(total - done), "mbps": "850.0",
                                      "eta_s": str(5 - i)})
            emit("task", "mod", task_ref)
    with LOCK:
        t = obj("task", task_ref)
        if options.get("fail"):
            t["status"], t["error_info"] = "failure", ["VM_MIGRATE_FAILED", vm_ref, "src", "dst", "injected"]
        else:
            vm = STATE["objects"]["VM"].pop(vm_ref)
            emit("VM", "del", vm_ref)
            vm["name_label"] = options.get("dest_name", vm["name_label"])
            new = add("VM", vm)
            t["status"], t["result"] = "success", new
            t["other_config"].update({"total_ms": "912", "downtime_ms": "21", "blackout_ms": "35",
                                      "bytes": str(total)})
        emit("task", "mod", task_ref)


def vm_method(name, args):
    if name == "get_all_records":
        return STATE["objects"]["VM"]
    if name == "get_record":
        return obj("VM", args[0])
    if name == "get_by_uuid":
        for r, o in STATE["objects"]["VM"].items():
            if o["uuid"] == args[0]:
                return r
        raise XapiError("UUID_INVALID", "VM", args[0])
    if name == "get_by_name_label":
        return [r for r, o in STATE["objects"]["VM"].items() if o["name_label"] == args[0]]
    if name == "create":
        return add("VM", vm_defaults(args[0]))
    if name == "destroy":
        vm = obj("VM", args[0])
        if vm["power_state"] != "Halted":
            raise XapiError("VM_BAD_POWER_STATE", args[0], "Halted", vm["power_state"])
        del STATE["objects"]["VM"][args[0]]
        emit("VM", "del", args[0])
        return None
    if name == "start":
        set_power(args[0], ["Halted"], "Paused" if args[1] else "Running")
        return None
    if name in ("clean_shutdown", "hard_shutdown"):
        set_power(args[0], ["Running", "Paused"] if name == "hard_shutdown" else ["Running"], "Halted")
        return None
    if name in ("clean_reboot", "hard_reboot"):
        set_power(args[0], ["Running"], "Running")
        return None
    if name == "pause":
        set_power(args[0], ["Running"], "Paused")
        return None
    if name == "unpause":
        set_power(args[0], ["Paused"], "Running")
        return None
    if name == "get_console_log":
        return obj("VM", args[0])["console"][-int(args[1]):]
    if name == "set_tags":
        obj("VM", args[0])["tags"] = list(args[1])
    elif name.startswith("add_to_"):
        m = obj("VM", args[0])[name[7:]]
        if args[1] in m:
            raise XapiError("MAP_DUPLICATE_KEY", "VM", name[7:], args[0], args[1])
        m[args[1]] = args[2]
    elif name.startswith("remove_from_"):
        obj("VM", args[0])[name[12:]].pop(args[1], None)
    elif name.startswith("set_"):
        vm = obj("VM", args[0])
        if name[4:] not in vm:
            raise XapiError("MESSAGE_METHOD_UNKNOWN", "VM." + name)
        vm[name[4:]] = args[1]
    elif name.startswith("get_"):
        return obj("VM", args[0])[name[4:]]
    elif name in ("assert_can_migrate", "migrate_check"):
        vm = obj("VM", args[0])
        blockers = []
        if vm["memory_static_max"] > 4 << 30:
            blockers.append({"code": "HOST_NOT_ENOUGH_FREE_MEMORY", "objects": [args[0]],
                             "message": "needs more memory than the destination has", "fix": "add memory"})
        if name == "migrate_check":
            return {"blockers": blockers, "prediction": {"total_ms": "900", "downtime_ms": "20"}}
        if blockers:
            raise XapiError(blockers[0]["code"], str(vm["memory_static_max"]), str(4 << 30))
        return None
    else:
        raise XapiError("MESSAGE_METHOD_UNKNOWN", "VM." + name)
    emit("VM", "mod", args[0])
    return None


def dispatch(method, params):
    """Runs METHOD; PARAMS has the session stripped.  Callers hold LOCK."""
    cls, _, name = method.partition(".")
    if method == "system.listMethods":
        return ["session.login_with_password", "VM.get_all_records", "VM.migrate_check", "event.from"]
    if method == "session.get_this_host":
        return next(iter(STATE["objects"]["host"]))
    if method == "host.migrate_receive":
        return {"token": "tok-" + uuid.uuid4().hex, "url": "https://dst:8443", "host": params[0],
                "expires": "20300101T00:00:00Z", "fingerprint": "AB:CD"}
    if cls in ("host", "task") and name == "get_all_records":
        return STATE["objects"][cls]
    if cls in ("host", "task") and name == "get_record":
        return obj(cls, params[0])
    if method == "task.cancel":
        obj("task", params[0])["status"] = "cancelled"
        emit("task", "mod", params[0])
        return None
    if cls == "VM":
        return vm_method(name, params)
    raise XapiError("MESSAGE_METHOD_UNKNOWN", method)


def async_call(method, params):
    """Async.<method>: a task, run in a thread."""
    task = add("task", {"name_label": method, "name_description": "", "status": "pending",
                        "progress": 0.0, "result": "", "error_info": [], "other_config": {},
                        "created": time.strftime("%Y%m%dT%H:%M:%SZ", time.gmtime())})

    def run():
        if method == "VM.migrate_send":
            obj("VM", params[0])  # checked under no lock: read only
            return run_migration(task, params[0], params[1], params[5])
        time.sleep(0.1)
        with LOCK:
            t = obj("task", task)
            try:
                r = dispatch(method, params)
                t["status"], t["progress"], t["result"] = "success", 1.0, r if isinstance(r, str) else ""
            except XapiError as e:
                t["status"], t["error_info"] = "failure", [e.code] + e.params
            emit("task", "mod", task)
    threading.Thread(target=run, daemon=True).start()
    return task


def event_from(classes, token, timeout):
    deadline = time.time() + float(timeout)
    start = int(token) if token else len(STATE["events"])
    while True:
        evs = [e for e in STATE["events"][start:] if "*" in classes or e["class"] in classes]
        if evs or time.time() >= deadline:
            return {"events": evs, "valid_ref_counts": {}, "token": str(len(STATE["events"]))}
        LOCK.wait(max(0.0, deadline - time.time()))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if ARGS.verbose:
            super().log_message(fmt, *args)

    def address_string(self):
        return "unix" if not self.client_address else str(self.client_address[0])

    def reply(self, obj_):
        body = json.dumps(obj_).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        if self.path != "/jsonrpc":
            self.send_error(404)
            return
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if ARGS.verbose:
            print("<-", json.dumps(req), flush=True)
        method, params, rid = req["method"], list(req.get("params", [])), req.get("id")
        try:
            with LOCK:
                if method == "session.login_with_password":
                    user, pw = params[0], params[1]
                    if not ((ARGS.unix and user == "root") or (user == ARGS.user and pw == ARGS.password)):
                        raise XapiError("SESSION_AUTHENTICATION_FAILED", user, "Authentication failure")
                    s = new_ref()
                    STATE["sessions"][s] = user
                    result = s
                elif method.startswith("system."):
                    result = dispatch(method, params)
                else:
                    if not params or params[0] not in STATE["sessions"]:
                        raise XapiError("SESSION_INVALID", params[0] if params else "")
                    params = params[1:]
                    if method == "session.logout":
                        result = None
                    elif method == "event.from":
                        result = event_from(params[0], params[1], params[2])
                    elif method.startswith("Async."):
                        result = async_call(method[6:], params)
                    else:
                        result = dispatch(method, params)
            self.reply({"jsonrpc": "2.0", "result": result, "id": rid})
        except XapiError as e:
            self.reply({"jsonrpc": "2.0", "error": {"code": 1, "message": e.code, "data": e.params}, "id": rid})


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class TcpServer(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--unix")
    ap.add_argument("--tcp")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--user", default="alice")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--verbose", action="store_true")
    ARGS = ap.parse_args()
    with LOCK:
        add("host", {"name_label": HOST_NAME, "name_description": "", "hostname": "fake.local",
                     "memory_total": str(8 << 30), "memory_free": str(6 << 30), "resident_VMs": [],
                     "other_config": {}, "tags": []})
        add("VM", vm_defaults({"name_label": "web", "power_state": "Running",
                               "memory_static_max": 536870912, "memory_dynamic_max": 536870912,
                               "VCPUs_at_startup": 2, "VCPUs_max": 2}))
        add("VM", vm_defaults({"name_label": "tmpl", "is_a_template": True}))
    if ARGS.unix:
        if os.path.exists(ARGS.unix):
            os.unlink(ARGS.unix)
        srv = UnixServer(ARGS.unix, Handler)
    else:
        host, port = ARGS.tcp.rsplit(":", 1)
        srv = TcpServer((host, int(port)), Handler)
        if ARGS.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*ARGS.tls)
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Live-migration benchmark driver for tern (bench/migration/run.sh calls it).

Sub-commands:
  baseline  plain QEMU -> QEMU, no tern: two qemu-system-x86_64 processes
            with tern's own command line (src/qemu/driver.c qemu_argv), QMP
            on both, destination `-incoming tcp:127.0.0.1:PORT`; back and
            forth ROUNDS times.
  tern      two ternd hosts on loopback (HTTPS), the guest created and
            booted on A, then migrated A->B->A... in the modes given (round
            by round when several; run.sh gives one mode per call).  Managed
            control: the driver asks the destination for the token and hands
            it to the source.
  report    raw JSON -> RESULTS.md.

Standard library only.  Every process this file starts is tracked by PID
and ended by PID.  Timing definitions (same as ../shared/peer/libvirt):
  total       baseline: destination QEMU spawn -> destination RESUME event
              tern: task other_config total_ms (the whole migrate_send call:
              qualify + destination QEMU start + stream + switchover +
              confirm)
  downtime    QEMU's own figure (query-migrate "downtime" on the source)
  blackout    source QMP STOP event -> destination QMP RESUME event (QEMU's
              event timestamps; tern reports it as blackout_ms)
  throughput  bytes on the stream (ram.transferred) / QEMU's total-time for
              the migration (setup -> completed, QEMU's clock): the same
              formula for every row.  The baseline also records the
              event-based stream time (MIGRATION setup -> completed events).
"""
import argparse
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import xmlrpc.client

MIB = 1024 * 1024
QEMU = 'qemu-system-x86_64'
STATUS_RE = re.compile(r'^MEMCHECK seq=(\d+) uptime_ms=(\d+) verified=(\d+) '
                       r'errors=(\d+) rewritten=(\d+) mib=(\d+)\r?$', re.M)


def log(*a):
    print('[bench %s]' % time.strftime('%H:%M:%S'), *a, file=sys.stderr,
          flush=True)


def ev_ts(ev):
    t = ev['timestamp']
    return t['seconds'] + t['microseconds'] / 1e6


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def pid_alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def kill_pid(pid, timeout=10):
    """SIGTERM, then SIGKILL; waits until the process is gone (a zombie
    counts as gone: PID 1 reaps daemonized QEMUs here)."""
    if pid <= 1 or not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + timeout
    while pid_alive(pid) and time.time() < deadline:
        time.sleep(0.01)
    if pid_alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ------------------------------------------------------------ guest console
class Console:
    """The memcheck guest's serial file, read through a descriptor kept
    open (tern unlinks the source's console when the VM leaves)."""

    def __init__(self, path, timeout=30):
        deadline = time.time() + timeout
        while not os.path.exists(path):
            if time.time() > deadline:
                raise RuntimeError('%s never appeared' % path)
            time.sleep(0.02)
        self.path = path
        self.f = open(path, 'rb')
        self.data = b''

    def text(self):
        self.data += self.f.read()
        return self.data.decode('utf-8', 'replace')

    def status(self):
        return [tuple(int(x) for x in m.groups())
                for m in STATUS_RE.finditer(self.text())]

    def wait_status(self, n, timeout):
        deadline = time.time() + timeout
        while True:
            st = self.status()
            if len(st) >= n:
                return st
            if time.time() > deadline:
                raise RuntimeError('memcheck: %d status lines in %s after '
                                   '%ss (want %d); tail: %r' % (
                                       len(st), self.path, timeout, n,
                                       self.text()[-400:]))
            time.sleep(0.05)

    def close(self):
        self.f.close()


def check_guest(before, after_con, timeout=30, lines=3):
    """After a migration: the destination's console must show LINES new
    status lines whose seq follows the source's last one (three lines, 1.5 s:
    time for memcheck to verify all of its memory at least once).  A page
    that came across wrong shows as errors going up / MEMCHECK-ERROR: that
    is recorded ("corrupt"), not raised, so the run goes on and the report
    counts it.  A guest that stops making progress raises."""
    last = before.status()
    last_seq = last[-1][0] if last else -1
    err_before = last[-1][3] if last else 0
    nerr_before = before.text().count('MEMCHECK-ERROR')
    deadline = time.time() + timeout
    while True:
        st = [s for s in after_con.status() if s[0] > last_seq]
        if len(st) >= lines:
            break
        if time.time() > deadline:
            raise RuntimeError('guest shows no memcheck progress after the '
                               'migration (last seq %d); tail %r' % (
                                   last_seq, after_con.text()[-400:]))
        time.sleep(0.05)
    errors = st[-1][3]
    new_err = after_con.text().count('MEMCHECK-ERROR') + \
        before.text().count('MEMCHECK-ERROR') - nerr_before
    return {'seq_before': last_seq, 'seq_after': st[-1][0],
            'errors': errors, 'corrupt': errors > err_before or new_err > 0}


# ------------------------------------------------------------------- QMP
class QMP:
    def __init__(self, path, timeout=30.0):
        deadline = time.time() + timeout
        while True:
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                s.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.002)
        self.s = s
        self.f = s.makefile('rw')
        self.events = []
        json.loads(self.f.readline())
        self.cmd('qmp_capabilities')

    def cmd(self, name, **args):
        msg = {'execute': name}
        if args:
            msg['arguments'] = args
        self.f.write(json.dumps(msg) + '\n')
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError('QMP closed during ' + name)
            r = json.loads(line)
            if 'event' in r:
                self.events.append(r)
                continue
            if 'error' in r:
                raise RuntimeError('%s: %s' % (name, r['error']))
            return r['return']

    def next_event(self, timeout=60.0):
        self.s.settimeout(timeout)
        try:
            line = self.f.readline()
        finally:
            self.s.settimeout(None)
        if not line:
            raise EOFError('QMP closed while waiting for an event')
        r = json.loads(line)
        if 'event' in r:
            self.events.append(r)

    def event(self, name, **match):
        for e in self.events:
            if e['event'] == name and all(
                    e.get('data', {}).get(k) == v for k, v in match.items()):
                return e
        return None

    def wait_event(self, name, timeout=60.0, **match):
        deadline = time.time() + timeout
        while True:
            e = self.event(name, **match)
            if e is not None:
                return e
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError('no %s %s event' % (name, match))
            self.next_event(left)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


# ------------------------------------------------------------ baseline
class BareQemu:
    """One QEMU with tern's command line (qemu_argv in src/qemu/driver.c):
    same machine, accel, CPU, memory, devices, -daemonize and -pidfile.
    Differences: no -S (the source boots straight away; the destination
    resumes by itself when the stream is complete, QEMU's default), and the
    destination listens with -incoming tcp:127.0.0.1:PORT."""

    def __init__(self, work, name, a, incoming=None):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, 'qmp.sock')
        self.pidfile = os.path.join(self.dir, 'qemu.pid')
        self.console = os.path.join(self.dir, 'console.log')
        for p in (self.sock, self.pidfile, self.console):
            if os.path.exists(p):
                os.unlink(p)
        uuid = a.uuid
        argv = [QEMU, '-name', 'guest=tern-%s' % uuid, '-uuid', uuid,
                '-machine', 'pc', '-accel', 'tcg', '-cpu', 'qemu64',
                # The same RAM size tern gives the guest under TCG on QEMU
                # < 9.0 (src/qemu/driver.c): 8 KiB short of a multiple of
                # 256 KiB, or QEMU's dirty tracking loses guest writes and
                # the baseline would be fast because it is wrong.
                '-m', '%dK' % (a.memory_mib * 1024 - 8),
                '-smp', '1,maxcpus=1',
                '-nodefaults', '-no-user-config', '-display', 'none',
                '-kernel', a.kernel, '-initrd', a.initrd,
                '-append', a.args,
                '-serial', 'file:%s' % self.console,
                '-qmp', 'unix:%s,server=on,wait=off' % self.sock,
                '-pidfile', self.pidfile, '-daemonize']
        if incoming:
            argv += ['-incoming', incoming]
        self.t_spawn = time.time()
        p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
        if p.returncode != 0:
            raise RuntimeError('qemu failed: %s' % p.stderr)
        with open(self.pidfile) as f:
            self.pid = int(f.read().strip())
        self.qmp = QMP(self.sock)
        self.t_qmp = time.time()

    def stop(self):
        self.qmp.close()
        kill_pid(self.pid)


def baseline(a):
    os.makedirs(a.work, exist_ok=True)
    rounds = []
    live = []
    try:
        src = BareQemu(a.work, 'q0', a)
        live.append(src)
        con = Console(src.console)
        log('baseline: booting the guest (memcheck fills %d MiB)' % a.mc_mib)
        con.wait_status(a.settle_lines, a.boot_timeout)
        for i in range(a.warmup + a.rounds):
            port = free_port()
            uri = 'tcp:127.0.0.1:%d' % port
            dst = BareQemu(a.work, 'q%d' % ((i + 1) % 2), a,
                           incoming='defer' if a.tls else uri)
            live.append(dst)
            dcon = Console(dst.console)
            if a.tls:
                # what tern does for secure=true: TLS-PSK, AES-GCM, TLS 1.3
                psk = os.path.join(a.work, 'psk')
                os.makedirs(psk, exist_ok=True)
                with open(os.path.join(psk, 'keys.psk'), 'w') as f:
                    f.write('tern:%s\n' % os.urandom(32).hex())
                for q, ep in ((src.qmp, 'client'), (dst.qmp, 'server')):
                    try:
                        q.cmd('object-del', id='tls0')
                    except RuntimeError:
                        pass
                    o = {'qom-type': 'tls-creds-psk', 'id': 'tls0',
                         'endpoint': ep, 'dir': psk, 'priority':
                         'NORMAL:-CHACHA20-POLY1305:-VERS-TLS1.2'}
                    if ep == 'client':
                        o['username'] = 'tern'
                    q.cmd('object-add', **o)
                    q.cmd('migrate-set-parameters',
                          **{'tls-creds': 'tls0', 'tls-hostname': ''})
                dst.qmp.cmd('migrate-incoming', uri=uri)
            src.qmp.cmd('migrate-set-capabilities', capabilities=[
                {'capability': 'events', 'state': True}])
            src.qmp.cmd('migrate-set-parameters', **{
                'max-bandwidth': 100000 * MIB,
                'downtime-limit': a.downtime_ms})
            for q in (src.qmp, dst.qmp):
                q.cmd('query-status')
                q.events.clear()
            t_cmd = time.time()
            src.qmp.cmd('migrate', uri=uri)
            while True:
                sts = {e['data']['status'] for e in src.qmp.events
                       if e['event'] == 'MIGRATION'}
                if sts & {'completed', 'failed', 'cancelled'}:
                    break
                src.qmp.next_event(timeout=300)
            if 'completed' not in sts:
                raise RuntimeError('baseline migration: %s %s' % (
                    sts, src.qmp.cmd('query-migrate')))
            ev_res = dst.qmp.wait_event('RESUME', timeout=60)
            t_running = time.time()
            info = src.qmp.cmd('query-migrate')
            for _ in range(400):       # QEMU 7.2 fills the stats late
                if info.get('total-time') and 'downtime' in info:
                    break
                time.sleep(0.005)
                info = src.qmp.cmd('query-migrate')
            ev_stop = src.qmp.event('STOP')
            ev_setup = src.qmp.event('MIGRATION', status='setup')
            ev_done = src.qmp.event('MIGRATION', status='completed')
            src.stop()
            live.remove(src)
            alive = check_guest(con, dcon)
            con.close()
            ram = info.get('ram', {})
            r = {
                'round': i, 'warmup': i < a.warmup,
                'dir': 'AB'[i % 2] + '->' + 'AB'[(i + 1) % 2],
                'total_ms': (ev_ts(ev_res) - dst.t_spawn) * 1000,
                'downtime_ms': info.get('downtime'),
                'blackout_ms': (ev_ts(ev_res) - ev_ts(ev_stop)) * 1000,
                'qemu_total_ms': info.get('total-time'),
                'setup_ms': info.get('setup-time'),
                'bytes': ram.get('transferred'),
                'qemu_mbps': ram.get('mbps'),
                'iterations': ram.get('dirty-sync-count'),
                'normal_pages': ram.get('normal'),
                'stream_ms': (ev_ts(ev_done) - ev_ts(ev_setup)) * 1000,
                'spawn_to_qmp_ms': (dst.t_qmp - dst.t_spawn) * 1000,
                'cmd_to_running_ms': (t_running - t_cmd) * 1000,
                'pre_stream_ms': (ev_ts(ev_setup) - dst.t_spawn) * 1000,
            }
            r.update(alive)
            log('baseline round %d: %s' % (i, json.dumps(r)))
            rounds.append(r)
            src, con = dst, dcon
    except Exception as e:  # noqa: BLE001 - recorded for the report
        failed = '%s: %s' % (type(e).__name__, str(e)[:600])
        log('baseline: FAILED: ' + failed)
    else:
        failed = None
    finally:
        for g in live:
            g.stop()
        with open(a.out, 'w') as f:
            json.dump({'mode': 'baseline-tls' if a.tls else 'baseline',
                       'rounds': rounds, 'failed': failed}, f, indent=1)


# ------------------------------------------------------------ tern
class UnixConn(http.client.HTTPConnection):
    def __init__(self, path, timeout=120):
        super().__init__('localhost', timeout=timeout)
        self.path_ = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path_)


class Xapi:
    """Root on ternd's Unix socket (any password)."""

    def __init__(self, sock):
        class T(xmlrpc.client.Transport):
            def make_connection(t, host):
                return UnixConn(sock)
        self.proxy = xmlrpc.client.ServerProxy('http://localhost/',
                                               transport=T(), allow_none=True)
        self.session = self.raw('session.login_with_password', 'root', 'x',
                                '1.0', 'tern-bench')

    def raw(self, method, *args):
        fn = self.proxy
        for p in method.split('.'):
            fn = getattr(fn, p)
        r = fn(*args)
        if r.get('Status') != 'Success':
            raise RuntimeError('%s: %s' % (method, r.get('ErrorDescription')))
        return r.get('Value')

    def call(self, method, *args):
        return self.raw(method, self.session, *args)


class Host:
    def __init__(self, work, name, a):
        self.name = name
        self.base = os.path.join(work, name)
        self.state = os.path.join(self.base, 'state')
        self.run = os.path.join(self.base, 'run')
        self.sock = os.path.join(self.run, 'ternd.sock')
        self.logpath = os.path.join(self.base, 'ternd.log')
        os.makedirs(self.state, exist_ok=True)
        os.makedirs(self.run, exist_ok=True)
        # The guest boots from files of this ternd's boot SR.
        boot = os.path.join(self.state, 'boot')
        os.makedirs(boot, exist_ok=True)
        for src in (a.kernel, a.initrd):
            dst = os.path.join(boot, os.path.basename(src))
            if not os.path.exists(dst):
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)
        self.port = free_port()
        self.logf = open(self.logpath, 'ab')
        self.proc = subprocess.Popen(
            [a.ternd, '-F', '--state-dir', self.state, '--run-dir', self.run,
             '--socket', self.sock, '--listen', '127.0.0.1:%d' % self.port,
             '--accel', 'tcg', '--log-level', 'debug'],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf)
        deadline = time.time() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError('ternd %s exited; see %s' % (
                    name, self.logpath))
            try:
                self.api = Xapi(self.sock)
                break
            except (OSError, http.client.HTTPException):
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.host_ref = self.api.call('session.get_this_host',
                                      self.api.session)

    def log_size(self):
        return os.path.getsize(self.logpath)

    def log_since(self, off):
        with open(self.logpath, 'r', errors='replace') as f:
            f.seek(off)
            return f.read()

    def qemu_pids(self):
        out = []
        vms = os.path.join(self.run, 'vms')
        if os.path.isdir(vms):
            for u in os.listdir(vms):
                try:
                    with open(os.path.join(vms, u, 'qemu.pid')) as f:
                        out.append(int(f.read().strip()))
                except (OSError, ValueError):
                    pass
        return out

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.qemu_pids():
            try:
                with open('/proc/%d/comm' % pid) as f:
                    if 'qemu' not in f.read():
                        continue
            except OSError:
                continue
            kill_pid(pid)
        self.logf.close()


MODES = {
    'tern-direct-plain': {'mode': 'direct', 'secure': 'false'},
    'tern-direct-secure': {'mode': 'direct', 'secure': 'true'},
    'tern-tunnelled-secure': {'mode': 'tunnelled', 'secure': 'true'},
}

LOG_RE = re.compile(r'^(\d\d):(\d\d):(\d\d)\.(\d{3}) ternd\[\d+\] \w+: '
                    r'migrate: (src|dst) [^:]+: (\w+) -> (\w+)\s*$', re.M)


def phase_times(text):
    """[(t_seconds_of_day, side, from, to)] from 'migrate: src ID: a -> b'
    lines of a ternd log."""
    out = []
    for m in LOG_RE.finditer(text):
        h, mi, s, ms = (int(x) for x in m.groups()[:4])
        out.append((h * 3600 + mi * 60 + s + ms / 1000.0,
                    m.group(5), m.group(6), m.group(7)))
    return out


def tern(a):
    os.makedirs(a.work, exist_ok=True)
    modes = a.modes.split(',')
    hosts = []
    results = {m: [] for m in modes}
    try:
        for n in ('a', 'b'):
            hosts.append(Host(a.work, n, a))
        A, B = hosts
        log('tern: hosts A 127.0.0.1:%d, B 127.0.0.1:%d' % (A.port, B.port))
        rec = {
            'name_label': 'bench', 'memory_static_max': str(a.memory_mib * MIB),
            'memory_dynamic_max': str(a.memory_mib * MIB),
            'VCPUs_max': '1', 'VCPUs_at_startup': '1',
            'PV_kernel': os.path.basename(a.kernel),
            'PV_ramdisk': os.path.basename(a.initrd), 'PV_args': a.args,
        }
        vm = A.api.call('VM.create', rec)
        A.api.call('VM.start', vm, False, False)
        uuid = A.api.call('VM.get_uuid', vm)
        con = Console(os.path.join(A.run, 'vms', uuid, 'console.log'))
        log('tern: booting the guest on A (memcheck fills %d MiB)' % a.mc_mib)
        con.wait_status(a.settle_lines, a.boot_timeout)
        cur = 0
        n = 0
        for i in range(a.warmup + a.rounds):
            for mode in modes:
                src, dst = hosts[cur], hosts[1 - cur]
                opts = dict(MODES[mode])
                opts['downtime'] = str(a.downtime_ms)
                off_s, off_d = src.log_size(), dst.log_size()
                dest = dst.api.call('host.migrate_receive', dst.host_ref,
                                    'OpaqueRef:NULL', {'vm': uuid})
                t0 = time.time()
                task = src.api.call('Async.VM.migrate_send', vm, dest, True,
                                    {}, {}, opts)
                while True:
                    tr = src.api.call('task.get_record', task)
                    if tr['status'] != 'pending':
                        break
                    time.sleep(0.05)
                wall_ms = (time.time() - t0) * 1000
                if tr['status'] != 'success':
                    raise RuntimeError('%s round %d: task %s: %s\n%s' % (
                        mode, i, tr['status'], tr.get('error_info'),
                        src.log_since(off_s)[-3000:]))
                oc = tr.get('other_config', {})
                new_vm = dst.api.call('VM.get_by_uuid', uuid)
                dcon = Console(os.path.join(dst.run, 'vms', uuid,
                                            'console.log'))
                try:
                    alive = check_guest(con, dcon)
                except RuntimeError:
                    for nm, c in (('src', con), ('dst', dcon)):
                        with open(os.path.join(a.work, 'failed-%s-%d-%s.log'
                                               % (mode, i, nm)), 'w') as f:
                            f.write(c.text())
                    raise
                con.close()
                try:
                    src.api.call('task.destroy', task)
                except RuntimeError:
                    pass
                ph_s = phase_times(src.log_since(off_s))
                ph_d = phase_times(dst.log_since(off_d))
                phases = {}
                if ph_s:
                    t_first = ph_s[0][0]
                    for t, side, frm, to in ph_s + ph_d:
                        phases['%s %s->%s' % (side, frm, to)] = round(
                            (t - t_first) * 1000)

                def num(k):
                    # tern copies QEMU's figures from its last query-migrate;
                    # QEMU 7.2 can say "completed" before it fills in
                    # total-time/downtime, so 0 there means "not reported"
                    v = oc.get(k)
                    try:
                        v = float(v)
                    except (TypeError, ValueError):
                        return None
                    if v == 0 and k in ('downtime_ms', 'qemu_total_ms',
                                        'bytes'):
                        return None
                    return v
                r = {
                    'round': i, 'warmup': i < a.warmup,
                    'dir': 'AB'[cur] + '->' + 'AB'[1 - cur],
                    'total_ms': num('total_ms'),
                    'downtime_ms': num('downtime_ms'),
                    'blackout_ms': num('blackout_ms'),
                    'qemu_total_ms': num('qemu_total_ms'),
                    'setup_ms': num('setup_ms'),
                    'bytes': num('bytes'),
                    'qemu_mbps': num('mbps'),
                    'client_wall_ms': wall_ms,
                    'phases_ms': phases,
                    'other_config': oc,
                }
                r.update(alive)
                log('%s round %d: %s' % (mode, i, json.dumps(
                    {k: v for k, v in r.items() if k != 'other_config'})))
                results[mode].append(r)
                vm, con, cur = new_vm, dcon, 1 - cur
                n += 1
    except Exception as e:  # noqa: BLE001 - recorded for the report
        failed = '%s: %s' % (type(e).__name__, str(e)[:600])
        log('tern: FAILED: ' + failed)
    else:
        failed = None
    finally:
        for h in hosts:
            h.close()
        with open(a.out, 'w') as f:
            json.dump({'modes': results, 'failed': failed}, f, indent=1)


# ------------------------------------------------------------ report
def stats(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {'median': statistics.median(vals), 'min': min(vals),
            'max': max(vals), 'n': len(vals)}


def fmt(v, nd=0):
    return 'n/a' if v is None else ('%.' + str(nd) + 'f') % v


def thr(r):
    if r.get('bytes') and r.get('qemu_total_ms'):
        return r['bytes'] / MIB / (r['qemu_total_ms'] / 1000.0)
    return None


def summarize(rounds):
    rs = [r for r in rounds if not r.get('warmup')]
    for r in rs:
        r['thr'] = thr(r)
        if r.get('blackout_ms') is not None and \
                r.get('downtime_ms') is not None:
            r['added_ms'] = r['blackout_ms'] - r['downtime_ms']
    keys = ('total_ms', 'downtime_ms', 'blackout_ms', 'thr', 'bytes',
            'qemu_total_ms', 'setup_ms', 'client_wall_ms', 'added_ms',
            'stream_ms', 'pre_stream_ms', 'iterations')
    return {k: stats([r.get(k) for r in rs]) for k in keys}, rs


def med(s, k, scale=1.0):
    return None if s.get(k) is None else s[k]['median'] * scale


def rng(s, k, nd=0, scale=1.0):
    if s.get(k) is None:
        return 'n/a'
    return '%s [%s-%s]' % (fmt(s[k]['median'] * scale, nd),
                           fmt(s[k]['min'] * scale, nd),
                           fmt(s[k]['max'] * scale, nd))


def report(a):
    with open(a.baseline) as f:
        bl = json.load(f)
    tr = {'modes': {}}
    fails = []
    for path in a.tern:
        with open(path) as f:
            j = json.load(f)
        tr['modes'].update(j['modes'])
        if j.get('failed'):
            fails.extend('%s: %s' % (m, j['failed']) for m in j['modes'])
    lv = None
    if a.libvirt and os.path.exists(a.libvirt):
        with open(a.libvirt) as f:
            lv = f.read()
    with open(a.meta) as f:
        meta = json.load(f)
    rows = [('baseline (plain QEMU -> QEMU)', bl['rounds'])]
    if bl.get('failed'):
        fails.append('baseline: ' + bl['failed'])
    if a.baseline_tls and os.path.exists(a.baseline_tls):
        with open(a.baseline_tls) as f:
            j = json.load(f)
        rows.append(('baseline + QEMU TLS-PSK (no tern; reference)',
                     j['rounds']))
        if j.get('failed'):
            fails.append('baseline + QEMU TLS-PSK: ' + j['failed'])
    names = {'tern-direct-plain': 'tern direct, plain',
             'tern-direct-secure': 'tern direct, secure (QEMU TLS-PSK)',
             'tern-tunnelled-secure': 'tern tunnelled, secure (default)'}
    for m, rs in tr['modes'].items():
        rows.append((names.get(m, m), rs))
    S = [(n, summarize(rs)) for n, rs in rows]
    b = S[0][1][0]
    L = []
    P = L.append
    P('# Live migration: tern vs plain QEMU (one host, loopback, TCG)\n')
    P('Produced by `bench/migration/run.sh` (%s, %d s). Raw JSON: '
      '`bench/migration/raw/`; ternd debug logs and QEMU consoles of the run: '
      '`%s`.\n' % (meta['date'], meta['duration_s'], meta['work']))
    P('**Machine:** `%s`; %s CPUs (%s); QEMU %s, GnuTLS %s; TCG (no KVM).'
      % (meta['uname'], meta['nproc'], meta['cpu'], meta['qemu'],
         meta['gnutls']))
    P('Other QEMU processes on the machine when measuring started: %s '
      '(load average %s; %s at the end).\n' % (
          meta['others_at_start'], meta['load_at_start'], meta['load_at_end']))
    P('**Guest (every row but libvirt\'s):** the tern test guest '
      '(tools/guest: Debian %s, busybox + memcheck initramfs), %d MiB RAM, '
      '1 vCPU, kernel args `console=ttyS0 quiet memcheck.mib=%d '
      'memcheck.rate=%d memcheck.interval_ms=500`: memcheck fills %d MiB '
      'with a verifiable pattern and rewrites random pages at %d MiB/s '
      'while it verifies everything. Each migration therefore moves about '
      '%d MiB of non-zero pages plus what is dirtied meanwhile; the rest of '
      'RAM is zero pages. Downtime limit %d ms (QEMU\'s default) and '
      'max-bandwidth 100000 MiB/s (unlimited) on every path. Every '
      'migration is checked: memcheck goes on at the destination with the '
      'next seq and errors=0.\n' % (
          meta['kernel_guest'], meta['memory_mib'], meta['mc_mib'],
          meta['mc_rate'], meta['mc_mib'], meta['mc_rate'], meta['mc_mib'],
          meta['downtime_ms']))
    P('**Rounds:** %d warm-up + %d measured per row, alternating direction '
      '(A->B, B->A, ...). The baseline runs first with its own QEMUs; then '
      'each tern mode in its own block: a fresh pair of ternd hosts on '
      'loopback (HTTPS, self-signed, managed control), the guest created and '
      'booted on A, then migrated back and forth. Only one guest runs at '
      'any time.\n' % (meta['warmup'], meta['rounds']))
    P('## Summary (medians of %d measured rounds per row; ratio to the '
      'baseline in brackets)\n' % meta['rounds'])
    P('| path | total ms | QEMU downtime ms | blackout ms (STOP->RESUME) '
      '| blackout - downtime ms | throughput MiB/s | data MiB | migrations '
      'with guest memory corrupted |')
    P('|---|---:|---:|---:|---:|---:|---:|---:|')

    def ratio(s, k):
        v, bv = med(s, k), med(b, k)
        if v is None or not bv:
            return fmt(v)
        return '%s (%.2fx)' % (fmt(v), v / bv)
    for n, (s, rs) in S:
        allr = dict(rows)[n]
        P('| %s | %s | %s | %s | %s | %s | %s | %d of %d |' % (
            n, ratio(s, 'total_ms'), ratio(s, 'downtime_ms'),
            ratio(s, 'blackout_ms'), fmt(med(s, 'added_ms')),
            ratio(s, 'thr'), fmt(med(s, 'bytes', 1.0 / MIB), 0),
            sum(1 for r in allr if r.get('corrupt')), len(allr)))
    P('')
    for fl in fails:
        P('**Run aborted:** %s\n' % fl.replace('\n', ' ')[:420])
    # targets
    tun = dict(S).get(names['tern-tunnelled-secure'])
    P('## Targets (issue 4, point 11)\n')
    P('| target | measured | result |')
    P('|---|---|---|')
    if tun:
        s = tun[0]
        t_ratio = (med(s, 'thr') or 0) / med(b, 'thr')
        P('| tunnelled secure throughput >= 80%% of baseline | %.0f%% '
          '(%s vs %s MiB/s) | **%s** |' % (
              t_ratio * 100, fmt(med(s, 'thr')), fmt(med(b, 'thr')),
              'pass' if t_ratio >= 0.8 else 'MISS'))
    T = [x for x in S[1:] if x[0].startswith('tern')]
    for n, (s, rs) in T:
        if med(s, 'total_ms') is None:
            P('| %s: total time <= 1.5x baseline | no completed round | '
              '**not measured** |' % n)
            continue
        tot = med(s, 'total_ms') / med(b, 'total_ms')
        P('| %s: total time <= 1.5x baseline | %.2fx (%s vs %s ms) | **%s** |'
          % (n, tot, fmt(med(s, 'total_ms')), fmt(med(b, 'total_ms')),
             'pass' if tot <= 1.5 else 'MISS'))
    for n, (s, rs) in T:
        ok = [r for r in rs if r.get('added_ms') is not None]
        worst = max((r['added_ms'] for r in ok), default=None)
        medv = med(s, 'added_ms')
        if medv is None:
            P('| %s: blackout <= QEMU downtime + 50 ms | no completed round '
              'with both figures | **not measured** |' % n)
            continue
        P('| %s: blackout <= QEMU downtime + 50 ms | median +%s ms, worst '
          '+%s ms | **%s** |' % (n, fmt(medv), fmt(worst),
                                 'pass' if medv is not None and medv <= 50
                                 else 'MISS'))
    P('')
    P('Definitions (the same as ../shared/peer/libvirt/README.md uses):\n')
    P('- **total**: baseline = spawn of the destination QEMU -> its QMP '
      '`RESUME` event (a minimal manager). tern = the task\'s `total_ms`: '
      'the whole `VM.migrate_send` on the source, from the call to the '
      'destination confirming it runs (channel and token, qualification, '
      'destination QEMU start, QEMU setup, stream, switchover, confirm).')
    P('- **QEMU downtime**: `query-migrate` `downtime` on the source QEMU '
      '(tern: `downtime_ms`).')
    P('- **blackout**: source QEMU `STOP` event -> destination QEMU '
      '`RESUME` event, QEMU\'s own event timestamps (tern: `blackout_ms`).')
    P('- **throughput**: `ram.transferred` / QEMU `total-time` of the '
      'migration (QEMU\'s clock, setup -> completed), the same formula for '
      'every row (tern: `bytes` / `qemu_total_ms`). For the secure rows the '
      'TLS handshake is inside that time.')
    P('')
    P('## Detail (median [min-max] of measured rounds)\n')
    P('| path | total ms | client wall ms | QEMU total-time ms | QEMU setup '
      'ms | downtime ms | blackout ms | throughput MiB/s | dirty-sync '
      'iterations |')
    P('|---|---|---|---|---|---|---|---|---|')
    for n, (s, rs) in S:
        P('| %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
            n, rng(s, 'total_ms'), rng(s, 'client_wall_ms'),
            rng(s, 'qemu_total_ms'), rng(s, 'setup_ms'),
            rng(s, 'downtime_ms'), rng(s, 'blackout_ms'), rng(s, 'thr'),
            rng(s, 'iterations')))
    P('')
    bs = b
    P('Baseline only: destination spawn -> QMP ready %s ms; destination '
      'spawn -> source MIGRATION `setup` event %s ms; event-based stream '
      'time (MIGRATION setup -> completed) %s ms.\n' % (
          fmt(stats([r.get('spawn_to_qmp_ms') for r in S[0][1][1]])['median']),
          fmt(med(bs, 'pre_stream_ms')), fmt(med(bs, 'stream_ms'))))
    # where tern's time goes
    P('## Where tern\'s time goes (phase transitions from the ternd logs, '
      'ms after the source entered "qualify", i.e. opened the channel to the destination; medians)\n')
    allk = []
    for n, (s, rs) in T:
        for r in rs:
            for k in r.get('phases_ms', {}):
                if k not in allk:
                    allk.append(k)
    allk.sort(key=lambda k: statistics.median(
        [r['phases_ms'][k] for _, (s, rs) in T for r in rs
         if k in r.get('phases_ms', {})]))
    P('| transition | ' + ' | '.join(n for n, _ in T) + ' |')
    P('|---|' + '---:|' * len(T))
    for k in allk:
        cells = []
        for n, (s, rs) in T:
            st = stats([r.get('phases_ms', {}).get(k) for r in rs])
            cells.append(fmt(st['median']) if st else '')
        P('| %s | %s |' % (k, ' | '.join(cells)))
    P('')
    P('## Every round\n')
    P('| path | round | dir | warm-up | total | downtime | blackout | QEMU '
      'total-time | MiB | MiB/s | memcheck seq after / errors (cumulative) |')
    P('|---|---|---|---|---|---|---|---|---|---|---|')
    for n, rs in rows:
        for r in rs:
            P('| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |'
              % (n, r['round'], r['dir'], 'yes' if r['warmup'] else '',
                 fmt(r.get('total_ms')), fmt(r.get('downtime_ms')),
                 fmt(r.get('blackout_ms')), fmt(r.get('qemu_total_ms')),
                 fmt((r.get('bytes') or 0) / MIB, 1), fmt(thr(r)),
                 r.get('seq_after'), '%s%s' % (r.get('errors'),
                 ' **corrupted**' if r.get('corrupt') else '')))
    P('')
    if lv is not None:
        libvirt_section(P, lv, meta)
    else:
        P('## libvirt 9.0\n')
        P('Not run in this run (LIBVIRT=0 or ../shared/peer/libvirt missing).'
          ' Its own results, from ../shared/peer/libvirt/results-2026-11-22.md'
          ' (idle 512 MiB guest, 94 MiB moved, medians of 15): plain QEMU '
          '162 ms total, 898 MiB/s; libvirt native 478 ms (2.95x), downtime '
          '17 ms; libvirt tunnelled 653 ms at 362 MiB/s (40% of its '
          'baseline).\n')
    P('## How to rerun\n')
    P('```')
    P('sudo bash bench/migration/run.sh            # about %d minutes'
      % max(1, round(meta['duration_s'] / 60.0)))
    P('ROUNDS=5 WARMUP=1 MEMORY_MIB=1024 MC_MIB=512 MC_RATE=64 DOWNTIME_MS=300 \\')
    P('  LIBVIRT=1 LV_PASSES=1 LV_ROUNDS=4 bash bench/migration/run.sh   # the defaults')
    P('```\n')
    P('run.sh builds tern (meson/ninja) and the test guest, waits (up to '
      'QUIET_WAIT s) until no other QEMU runs on the machine, runs the '
      'baseline, the three tern modes and (LIBVIRT=1) '
      '../shared/peer/libvirt/run.sh with PASSES=%d ROUNDS=%d WARMUP=1, then '
      'writes this file. `bench.py` is the driver (sub-commands `baseline`, '
      '`tern`, `report`); Python standard library only. The sections below '
      'this point are regenerated too; a hand-written reading, if any, is '
      'appended after the run.\n' % (meta['libvirt_passes'],
                                     meta['libvirt_rounds']))
    with open(a.out, 'w') as f:
        f.write('\n'.join(L) + '\n')


def libvirt_section(P, text, meta):
    rows = {}
    for line in text.splitlines():
        c = [x.strip() for x in line.strip().strip('|').split('|')]
        if len(c) == 8 and c[0] in ('baseline-qemu', 'libvirt-native',
                                    'libvirt-tunnelled', 'baseline-qemu-veth',
                                    'baseline-qemu-veth-libvirtcaps') \
                and c[0] not in rows:
            rows[c[0]] = c
    P('## libvirt 9.0 in the same run (its own guest)\n')
    if 'baseline-qemu' not in rows:
        P('The libvirt run produced no summary table; see its log.\n')
        return
    P('From ../shared/peer/libvirt/run.sh run right after the tern rows '
      '(PASSES=%d, ROUNDS=%d, 1 warm-up per pass; medians of %d). **Its guest '
      'differs**: an idle busybox initramfs in 512 MiB that writes nothing '
      '(about 94 MiB of non-zero pages move), same Debian kernel and QEMU, '
      'over a veth pair between two network namespaces for libvirt. So '
      'compare each libvirt row with *its own* plain-QEMU baseline from the '
      'same harness, as the ratios do, not with the tern rows above. Its '
      'throughput is data / QEMU stream events (setup -> completed) and its '
      'total is libvirt\'s "Time elapsed" (job start on the source -> '
      'destination resumed).\n' % (
          meta['libvirt_passes'], meta['libvirt_rounds'],
          meta['libvirt_passes'] * meta['libvirt_rounds']))
    P('| path | total ms | downtime ms | STOP->RESUME ms | throughput MiB/s '
      '| data MiB | rounds |')
    P('|---|---:|---:|---:|---:|---:|---:|')
    base = rows['baseline-qemu']

    def r(v, bv):
        try:
            return '%s (%.2fx)' % (v, float(v) / float(bv))
        except (ValueError, ZeroDivisionError):
            return v
    for k in ('baseline-qemu', 'baseline-qemu-veth', 'libvirt-native',
              'libvirt-tunnelled'):
        if k in rows:
            c = rows[k]
            P('| %s | %s | %s | %s | %s | %s | %s |' % (
                k, r(c[1], base[1]), c[2], c[6], r(c[4], base[4]), c[3],
                c[7]))
    P('')


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest='cmd', required=True)
    for name in ('baseline', 'tern'):
        p = sub.add_parser(name)
        p.add_argument('--work', required=True)
        p.add_argument('--out', required=True)
        p.add_argument('--kernel', required=True)
        p.add_argument('--initrd', required=True)
        p.add_argument('--memory-mib', type=int, default=1024)
        p.add_argument('--mc-mib', type=int, default=512)
        p.add_argument('--mc-rate', type=int, default=64)
        p.add_argument('--downtime-ms', type=int, default=300)
        p.add_argument('--rounds', type=int, default=5)
        p.add_argument('--warmup', type=int, default=1)
        p.add_argument('--settle-lines', type=int, default=3)
        p.add_argument('--boot-timeout', type=float, default=120)
        p.add_argument('--uuid', default='5e1f0000-0000-4000-8000-00000000be4c')
        if name == 'baseline':
            p.add_argument('--tls', action='store_true')
        if name == 'tern':
            p.add_argument('--ternd', required=True)
            p.add_argument('--modes', default=','.join(MODES))
    r = sub.add_parser('report')
    r.add_argument('--baseline', required=True)
    r.add_argument('--tern', required=True, nargs='+')
    r.add_argument('--libvirt')
    r.add_argument('--baseline-tls')
    r.add_argument('--meta', required=True)
    r.add_argument('--out', required=True)
    a = ap.parse_args()
    if a.cmd in ('baseline', 'tern'):
        a.args = ('console=ttyS0 quiet memcheck.mib=%d memcheck.rate=%d '
                  'memcheck.interval_ms=500' % (a.mc_mib, a.mc_rate))
    {'baseline': baseline, 'tern': tern, 'report': report}[a.cmd](a)


if __name__ == '__main__':
    main()

#!/usr/bin/python3
"""tern API benchmark driver (bench/api); stdlib only.

  bench.py pass   --out P.json ...   one pass with a freshly started ternd
  bench.py report --out RESULTS.md --tern P*.json [--libvirt J*.json]
                  [--baseline J*.json] --header TEXT

Each pass: start ternd on a fresh state dir, log in once, read idle RSS;
`tern vm-list` with 0 VMs; create N VMs (each timed; every VM.create is a
committed SQLite WAL transaction with synchronous=FULL); VM.get_all_records
(JSON-RPC and XML-RPC); VM.get_record x 2000 (both protocols, and the same
client against a do-nothing echo server); `tern vm-list` and `--json` with N
VMs; a write+fsync+rename reference on the state dir's filesystem; event
latency; RSS with N VMs.  The latency-critical parts run in client.c.

Percentiles are nearest-rank.  Each table figure is the median over passes
of that pass's statistic (as libvirt's api.py does); "range" is the lowest
and highest pass value.
"""
import argparse
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

PC = time.perf_counter


def log(*a):
    print('[bench]', time.strftime('%T'), *a, file=sys.stderr, flush=True)


def pct(vals, p):
    s = sorted(vals)
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)]


def summary(vals):
    return {'n': len(vals), 'median': statistics.median(vals),
            'p99': pct(vals, 99), 'p90': pct(vals, 90),
            'mean': statistics.fmean(vals), 'min': min(vals),
            'max': max(vals), 'samples': [round(x, 3) for x in vals]}


def proc_status(pid):
    out = {}
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            k, _, v = line.partition(':')
            if k in ('VmRSS', 'VmHWM', 'RssAnon', 'RssFile', 'RssShmem',
                     'VmSize'):
                out[k + '_kib'] = int(v.split()[0])
            elif k == 'Threads':
                out['threads'] = int(v)
    return out


def snap():
    """machine-wide CPU jiffies (busy, total), load average, own CPU seconds"""
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:]]
    ru = os.times()
    return {'busy': sum(v) - v[3] - v[4], 'total': sum(v),
            'loadavg': open('/proc/loadavg').read().split()[:3],
            'own_s': ru.user + ru.system + ru.children_user +
            ru.children_system, 't': time.time()}


def busy(s0, s1):
    """fraction of all CPUs busy between two snaps; and the part not used
    by this process and its children (ternd, client.c, tern)"""
    tot = s1['total'] - s0['total']
    hz = os.sysconf('SC_CLK_TCK')
    b = (s1['busy'] - s0['busy']) / tot if tot else 0
    own = (s1['own_s'] - s0['own_s']) * hz / tot if tot else 0
    return {'busy': b, 'other': max(0.0, b - own),
            'loadavg_start': s0['loadavg']}


def do_snap(a):
    with open(a.out, 'w') as f:
        json.dump(snap(), f)


def jsonrpc(sock, method, params):
    """one JSON-RPC call over a fresh connection (untimed helper)"""
    body = json.dumps({'jsonrpc': '2.0', 'method': method, 'params': params,
                       'id': 1}).encode()
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(b'POST /jsonrpc HTTP/1.1\r\nHost: localhost\r\n'
              b'Content-Type: application/json\r\nContent-Length: %d\r\n\r\n'
              % len(body) + body)
    buf = b''
    while b'\r\n\r\n' not in buf:
        buf += s.recv(65536)
    head, rest = buf.split(b'\r\n\r\n', 1)
    cl = [int(l.split(b':')[1]) for l in head.split(b'\r\n')
          if l.lower().startswith(b'content-length:')][0]
    while len(rest) < cl:
        rest += s.recv(65536)
    s.close()
    r = json.loads(rest)
    if 'error' in r:
        raise RuntimeError(f'{method}: {r["error"]}')
    return r['result']


def client(a, *args):
    p = subprocess.run([a.client, a.sock, *map(str, args)],
                       stdout=subprocess.PIPE, text=True,
                       env=dict(os.environ, TB_PID=str(a.pid)))
    if p.returncode != 0:
        raise RuntimeError(f'client {args[0]} failed')
    return json.loads(p.stdout)


def vm_list(a, runs, expect, extra=()):
    out = []
    for i in range(runs + 1):                   # first run is warm-up
        t0 = PC()
        p = subprocess.run([a.tern, '-c', 'unix://' + a.sock, 'vm-list',
                            *extra], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        dt = (PC() - t0) * 1e3
        if p.returncode != 0:
            raise RuntimeError('tern vm-list failed: ' + p.stderr)
        if extra:
            rows = len(json.loads(p.stdout))
        else:
            rows = sum(1 for l in p.stdout.splitlines()
                       if 'bench-' in l or 'evname-' in l)
        if rows != expect:
            raise RuntimeError(f'tern vm-list {" ".join(extra)} listed {rows}'
                               f' VMs, expected {expect}')
        if i:
            out.append(dt)
    return out, len(p.stdout)


def fsync_ref(d, runs=200):
    data = os.urandom(725).hex().encode()       # 1,450 bytes, like libvirt's
    out = []
    for i in range(runs):
        t0 = PC()
        fd = os.open(os.path.join(d, 'ref.new'), os.O_WRONLY | os.O_CREAT |
                     os.O_TRUNC, 0o600)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.rename(os.path.join(d, 'ref.new'), os.path.join(d, f'ref{i}'))
        out.append((PC() - t0) * 1e3)
    for i in range(runs):
        os.unlink(os.path.join(d, f'ref{i}'))
    return out


def do_pass(a):
    R = {'params': vars(a).copy()}
    s0 = snap()
    state, run = os.path.join(a.workdir, 'state'), os.path.join(a.workdir,
                                                                'run')
    os.makedirs(state)
    os.makedirs(run)
    a.sock = os.path.join(run, 'ternd.sock')
    logf = open(os.path.join(a.workdir, 'ternd.log'), 'w')
    d = subprocess.Popen([a.ternd, '-F', '--state-dir', state, '--run-dir',
                          run, '--listen', '', '--log-level', 'warning'],
                         stdout=logf, stderr=subprocess.STDOUT)
    a.pid = d.pid
    try:
        for _ in range(500):
            if os.path.exists(a.sock):
                break
            if d.poll() is not None:
                raise RuntimeError('ternd exited; see ' + logf.name)
            time.sleep(0.01)
        else:
            raise RuntimeError('ternd socket did not appear')
        R['rss_fresh'] = proc_status(d.pid)
        jsonrpc(a.sock, 'session.login_with_password',
                ['root', '', '1.0', 'bench'])
        time.sleep(a.settle)
        R['rss_idle'] = proc_status(d.pid)
        log('idle RSS %.1f MiB' % (R['rss_idle']['VmRSS_kib'] / 1024))

        R['vm_list_0'] = summary(vm_list(a, a.vmlist_runs, 0)[0])

        c = client(a, 'create', a.n, 'bench-')
        R['create'] = summary(c['create_us'])
        R['create']['wall_s'] = c['wall_us'] / 1e6
        R['create']['daemon_cpu_us_per_call'] = \
            c['create_daemon_cpu_us_per_call']
        ref = c['first_ref']
        log('VM.create: median %.0f us' % R['create']['median'])
        time.sleep(a.settle)
        R['rss_after_create'] = proc_status(d.pid)

        g = client(a, 'getall', a.getall_runs)
        if g['json_records'] != a.n or g['xml_records'] != a.n:
            raise RuntimeError(f'get_all_records returned {g["json_records"]}'
                               f'/{g["xml_records"]} records')
        for p in ('json', 'xml'):
            R[f'getall_{p}'] = summary([x / 1e3 for x in g[f'getall_{p}_us']])
            R[f'getall_{p}']['reply_bytes'] = g[f'{p}_reply_bytes']
            R[f'getall_{p}']['daemon_cpu_ms_per_call'] = \
                g[f'getall_{p}_daemon_cpu_us_per_call'] / 1e3
        log('get_all_records: json %.1f ms, xml %.1f ms' %
            (R['getall_json']['median'], R['getall_xml']['median']))

        g = client(a, 'getrec', ref, a.getrec_calls)
        for p in ('json', 'xml'):
            R[f'getrec_{p}'] = summary(g[f'getrec_{p}_us'])
            R[f'getrec_{p}']['reply_bytes'] = g[f'{p}_reply_bytes']
            R[f'getrec_{p}']['daemon_cpu_us_per_call'] = \
                g[f'getrec_{p}_daemon_cpu_us_per_call']
        R['echo'] = summary(g['echo_us'])
        log('get_record: json %.0f us, xml %.0f us, echo %.0f us' %
            (R['getrec_json']['median'], R['getrec_xml']['median'],
             R['echo']['median']))

        t, nbytes = vm_list(a, a.vmlist_runs, a.n)
        R['vm_list'] = summary(t)
        R['vm_list']['stdout_bytes'] = nbytes
        t, nbytes = vm_list(a, a.vmlist_runs, a.n, ('--json',))
        R['vm_list_json'] = summary(t)
        R['vm_list_json']['stdout_bytes'] = nbytes
        log('tern vm-list: %.0f ms, --json %.0f ms' %
            (R['vm_list']['median'], R['vm_list_json']['median']))

        R['fsync_ref'] = summary(fsync_ref(state))

        e = client(a, 'events', ref, a.event_runs)
        R['event_from_return'] = summary(e['event_from_return_us'])
        R['event_from_send'] = summary(e['event_from_send_us'])
        R['event_set_name_label'] = summary(e['set_name_label_us'])
        R['event_before_return'] = e['event_before_return']
        log('event: %.0f us after the setter returned (p99 %.0f)' %
            (R['event_from_return']['median'], R['event_from_return']['p99']))

        time.sleep(a.settle)
        R['rss_n'] = proc_status(d.pid)
        R['db_bytes'] = sum(os.path.getsize(os.path.join(state, f))
                            for f in os.listdir(state)
                            if f.startswith('tern.db'))
        log('RSS with %d VMs %.1f MiB' % (a.n, R['rss_n']['VmRSS_kib'] / 1024))
    finally:
        d.send_signal(signal.SIGTERM)
        try:
            d.wait(10)
        except subprocess.TimeoutExpired:
            d.kill()
            d.wait()
    R['machine'] = busy(s0, snap())
    R['params'].pop('func', None)
    with open(a.out, 'w') as f:
        json.dump(R, f)


# ------------------------------------------------------------------ report
def fmt(x):
    if x is None:
        return '–'
    if abs(x) >= 100:
        return '%.0f' % x
    if abs(x) >= 10:
        return '%.1f' % x
    return '%.2f' % x


def pick(Rs, path, stat='median'):
    vals = []
    for R in Rs:
        v = R
        for k in path.split('.'):
            v = v.get(k) if isinstance(v, dict) else None
        if isinstance(v, dict):
            v = v.get(stat)
        if v is not None:
            vals.append(v)
    return vals


def med(Rs, path, stat='median', scale=1.0):
    v = pick(Rs, path, stat)
    return statistics.median(v) * scale if v else None


def rng(Rs, path, stat='median', scale=1.0):
    v = pick(Rs, path, stat)
    return f'{fmt(min(v) * scale)}–{fmt(max(v) * scale)}' if v else ''


def report(a):
    T = [json.load(open(f)) for f in a.tern]
    L = [json.load(open(f)) for f in a.libvirt]
    B = [json.load(open(f)) for f in a.baseline]
    n = T[0]['params']['n']
    K = 1 / 1024

    # (label, tern value, tern p99, tern range, unit, libvirt path, scale,
    #  target, lower-is-better target check, libvirt label)
    rows = [
        ('idle RSS (after start + one login)', 'rss_idle.VmRSS_kib', K, None,
         'MiB', 'rss_idle_0.VmRSS_kib', K, 15, 'libvirtd idle, 0 domains'),
        (f'`VM.get_record`, JSON-RPC, kept-alive socket', 'getrec_json', 1,
         'p99', 'µs', 'info', 1e3, 100, '`dom.info()` (virDomainGetInfo)'),
        (f'`VM.get_record`, XML-RPC, kept-alive socket', 'getrec_xml', 1,
         'p99', 'µs', 'info', 1e3, 100, '`dom.info()` (virDomainGetInfo)'),
        (f'`VM.get_all_records`, {n:,} VMs, JSON-RPC', 'getall_json', 1,
         'p99', 'ms', 'list_details', 1, 20,
         'ListAllDomains + 1,000 × (info + XMLDesc)'),
        (f'`VM.get_all_records`, {n:,} VMs, XML-RPC', 'getall_xml', 1,
         'p99', 'ms', 'list_details', 1, 20,
         'ListAllDomains + 1,000 × (info + XMLDesc)'),
        (f'`tern vm-list`, {n:,} VMs, wall', 'vm_list', 1, 'p99', 'ms',
         'virsh_list', 1, 60, '`virsh list --all`'),
        (f'`tern vm-list --json`, {n:,} VMs, wall', 'vm_list_json', 1, 'p99',
         'ms', 'virsh_list', 1, None, '`virsh list --all`'),
        ('`VM.create`, committed to disk, per call', 'create', 1e-3, 'p99',
         'ms', 'define', 1, 2, '`defineXML` (fsync\'d)'),
        ('event: setter returns → `event.from` reply arrives',
         'event_from_return', 1, 'p99', 'µs', 'event_define.from_return',
         1e3, 'event', 'defineXML returns → DEFINED event'),
        ('event: setter sent → `event.from` reply arrives',
         'event_from_send', 1, 'p99', 'µs', 'event_define.from_call', 1e3,
         None, 'defineXML called → DEFINED event'),
        (f'RSS with {n:,} VMs', 'rss_n.VmRSS_kib', K, None, 'MiB',
         'rss_n.VmRSS_kib', K, None, 'libvirtd, 1,000 domains'),
    ]
    out = []
    w = out.append
    w('# tern API benchmark: latency and footprint, side by side with '
      'libvirtd 9.0\n')
    w(a.header + '\n')
    w('Each figure is the median over passes of that pass\'s median (or '
      'p99); every pass starts a fresh daemon on an empty state directory. '
      '"range" is the lowest–highest pass median. Ratio = tern ÷ libvirt '
      '(below 1 means tern is faster / smaller).\n')
    lv_title = ('libvirtd, this run' if L else 'libvirtd, 2026-11-22')
    hdr = (f'| figure | tern | tern p99 | tern range | {lv_title} |')
    if L and B:
        hdr += ' libvirtd 2026-11-22 baseline |'
    hdr += ' ratio | target | result |'
    w(hdr)
    w('|' + '---|' * (hdr.count('|') - 1))
    for (label, tp, ts, p99, unit, lp, lscale, target, llabel) in rows:
        tv = med(T, tp, scale=ts)
        t99 = med(T, tp, 'p99', ts) if p99 else None
        ref = L or B
        lv = med(ref, lp, scale=lscale)
        lcell = (f'{fmt(lv)} {unit} ({llabel})' if lv is not None else '–')
        line = (f'| {label} | **{fmt(tv)} {unit}** | '
                f'{fmt(t99) + " " + unit if t99 is not None else "–"} | '
                f'{rng(T, tp, scale=ts)} | {lcell} |')
        if L and B:
            bv = med(B, lp, scale=lscale)
            line += f' {fmt(bv)} {unit} |' if bv is not None else ' – |'
        ratio = f'{tv / lv:.2f}' if lv and tv > 0 and lv > 0 else '–'
        if target is None:
            tgt, res = '–', '–'
        elif target == 'event':
            ok = t99 <= 1000
            tgt = 'p99 ≤ 1 ms (1000 µs)'
            res = '**pass**' if ok else '**FAIL**'
        else:
            ok = tv <= target and (lv is None or tv < lv)
            tgt = f'≤ {fmt(target)} {unit}, < libvirtd'
            res = '**pass**' if ok else '**FAIL**'
        w(line + f' {ratio} | {tgt} | {res} |')
    w('')

    # notes
    def m(path, stat='median', scale=1.0):
        return fmt(med(T, path, stat, scale))
    w('## Details (tern)\n')
    w(f'- Client overhead: the same C client loop, with the same request '
      f'and the same {T[0]["getrec_json"]["reply_bytes"]}-byte reply, '
      f'against a do-nothing echo server on a socketpair: median '
      f'**{m("echo")} µs** (p99 {m("echo", "p99")}). That is the floor '
      f'for one HTTP round trip over AF_UNIX with this client; the rest of '
      f'`VM.get_record`\'s {m("getrec_json")} µs is ternd. ternd\'s CPU '
      f'per `VM.get_record` (sum of its threads\' schedstat): JSON-RPC '
      f'{m("getrec_json.daemon_cpu_us_per_call", None)} µs, XML-RPC '
      f'{m("getrec_xml.daemon_cpu_us_per_call", None)} µs. Reply bodies: '
      f'{T[0]["getrec_json"]["reply_bytes"]} B JSON, '
      f'{T[0]["getrec_xml"]["reply_bytes"]} B XML. libvirt\'s `info()` '
      f'reply carries 5 numbers; `VM.get_record` is the full record.')
    w(f'- `VM.get_all_records`: {a_count(T)} runs per pass per protocol, '
      f'after 2 warm-ups; reply {T[0]["getall_json"]["reply_bytes"]:,} B '
      f'JSON, {T[0]["getall_xml"]["reply_bytes"]:,} B XML; ternd CPU per '
      f'call {m("getall_json.daemon_cpu_ms_per_call", None)} ms JSON, '
      f'{m("getall_xml.daemon_cpu_ms_per_call", None)} ms XML. The client '
      f'reads the whole reply (timed until the last byte) but does not '
      f'parse it; the record count is checked afterwards.')
    w(f'- `VM.create`: {n:,} sequential calls per pass on one connection; '
      f'{m("create.wall_s", None)} s in all; ternd CPU '
      f'{m("create.daemon_cpu_us_per_call", None)} µs/call. Each create '
      f'is a committed SQLite transaction (WAL, `synchronous=FULL`, so an '
      f'fsync of the WAL per commit) before the reply is sent. Reference on '
      f'the same filesystem (ext4, /dev/vda): write 1.4 KB + fsync + rename '
      f'{m("fsync_ref")} ms (p99 {m("fsync_ref", "p99")}).')
    w(f'- `tern vm-list`: wall time of the whole process (start, connect, '
      f'login, `VM.get_all_records`, print, exit), {T[0]["params"]["vmlist_runs"]} '
      f'runs per pass after 1 warm-up. With 0 VMs: {m("vm_list_0")} ms '
      f'(virsh with 0 domains: {fmt(med(L or B, "virsh_list_0"))} ms).')
    w(f'- Events: client A waits in `event.from(s, ["vm"], token, 10)` (its '
      f'request sent 3 ms earlier); client B sends `VM.set_name_label`. One '
      f'thread polls both sockets and stamps each reply when its last byte '
      f'is read. {T[0]["params"]["event_runs"]} trials per pass after 5 '
      f'warm-ups, {n:,} VMs present. `VM.set_name_label` itself took '
      f'{m("event_set_name_label", "median", 1e-3)} ms (a committed write). '
      f'The event reply came before the setter\'s reply in '
      f'{sum(R["event_before_return"] for R in T)} of '
      f'{sum(R["event_from_return"]["n"] for R in T)} trials (those samples '
      f'are negative).')
    w(f'- RSS: fresh (before any call) {m("rss_fresh.VmRSS_kib", None, K)} '
      f'MiB; idle after one login {m("rss_idle.VmRSS_kib", None, K)} MiB '
      f'(RssAnon {m("rss_idle.RssAnon_kib", None, K)}, RssFile '
      f'{m("rss_idle.RssFile_kib", None, K)}, {T[0]["rss_idle"]["threads"]} '
      f'threads); after {n:,} creates {m("rss_after_create.VmRSS_kib", None, K)}; '
      f'after all the reads {m("rss_n.VmRSS_kib", None, K)} MiB (RssAnon '
      f'{m("rss_n.RssAnon_kib", None, K)}). Database on disk with {n:,} VMs: '
      f'{m("db_bytes", None, 1 / 1048576)} MiB.')
    lines = []
    for i, R in enumerate(T, 1):
        mc = R.get('machine')
        if mc:
            lines.append(f'tern pass {i}: {mc["busy"] * 100:.0f}% busy, '
                         f'{mc["other"] * 100:.0f}% by other processes, '
                         f'load {" ".join(mc["loadavg_start"])}')
    for i in range(0, len(a.libvirt_snaps) - 1, 2):
        s0, s1 = (json.load(open(f)) for f in a.libvirt_snaps[i:i + 2])
        mc = busy(dict(s0, own_s=0), dict(s1, own_s=0))
        lines.append(f'libvirt pass {i // 2 + 1}: {mc["busy"] * 100:.0f}% '
                     f'busy, load {" ".join(mc["loadavg_start"])}')
    if lines:
        w(f'- Machine load during the passes (share of all '
          f'{os.cpu_count()} CPUs; "other" excludes ternd and the '
          f'measuring clients; the libvirt figure includes libvirtd and its '
          f'client): ' + '; '.join(lines) + '. Other engineers\' test runs '
          f'(QEMU/TCG guests) share this VM, so passes with high "other" load '
          f'are disturbed; compare medians.')
    w('')
    if a.libvirt_md:
        w(f'libvirt\'s full table for this run: `{a.libvirt_md}`.\n')
    with open(a.out, 'w') as f:
        f.write('\n'.join(out) + '\n')
    if a.extra and os.path.exists(a.extra):
        with open(a.out, 'a') as f:
            f.write(open(a.extra).read())


def a_count(T):
    return T[0]['params']['getall_runs']


def main():
    ap = argparse.ArgumentParser()
    sp = ap.add_subparsers(dest='cmd', required=True)
    p = sp.add_parser('pass')
    p.add_argument('--ternd', required=True)
    p.add_argument('--tern', required=True)
    p.add_argument('--client', required=True)
    p.add_argument('--workdir', required=True)
    p.add_argument('--out', required=True)
    p.add_argument('--n', type=int, default=1000)
    p.add_argument('--getrec-calls', type=int, default=2000)
    p.add_argument('--getall-runs', type=int, default=20)
    p.add_argument('--vmlist-runs', type=int, default=10)
    p.add_argument('--event-runs', type=int, default=200)
    p.add_argument('--settle', type=float, default=2.0)
    p.set_defaults(func=do_pass)
    q = sp.add_parser('snap')
    q.add_argument('--out', required=True)
    q.set_defaults(func=do_snap)
    r = sp.add_parser('report')
    r.add_argument('--out', required=True)
    r.add_argument('--header', default='')
    r.add_argument('--tern', nargs='+', required=True)
    r.add_argument('--libvirt', nargs='*', default=[])
    r.add_argument('--baseline', nargs='*', default=[])
    r.add_argument('--libvirt-md', default='')
    r.add_argument('--extra', default='')
    r.add_argument('--libvirt-snaps', nargs='*', default=[])
    r.set_defaults(func=report)
    a = ap.parse_args()
    a.func(a)


if __name__ == '__main__':
    main()

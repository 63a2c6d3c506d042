/*
 * Minimal-overhead measuring client for ternd's local socket (bench/api).
 *
 * A raw AF_UNIX stream socket, HTTP/1.1, requests prebuilt once and written
 * with one write(); ternd answers each with Connection: close (libsoup 3.2
 * leaks kept-alive connections, src/rpc/guard.c), so the client connects
 * again before the next request, inside the timed path as any client
 * must; the reply is read until its
 * Content-Length is complete.  No JSON/XML parsing in the timed path (replies
 * are only checked with strstr afterwards).  Timestamps: CLOCK_MONOTONIC.
 *
 *   client SOCK create N PREFIX         create N VMs, each timed
 *   client SOCK getrec REF N            VM.get_record x N, JSON-RPC then
 *                                       XML-RPC, then the same JSON request
 *                                       against a trivial in-process echo
 *                                       server answering the same bytes
 *   client SOCK getall N                VM.get_all_records x N, JSON + XML
 *   client SOCK events REF N            event.from latency (see below)
 *
 * Env TB_PID: ternd's pid; daemon CPU time (sum of /proc/PID/task/x/schedstat)
 * is sampled around each timed loop.
 * Output: one JSON object on stdout; every sample in microseconds.
 *
 * Built by run.sh with plain `cc -O2`; no dependencies.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "client: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* ---- daemon CPU (ns), like api.py: sum over the daemon's threads ---- */
static long long
daemon_cpu_ns(void)
{
	const char *pid = getenv("TB_PID");
	char path[256];
	long long sum = 0;
	struct dirent *de;
	DIR *d;

	if (pid == NULL)
		return -1;
	snprintf(path, sizeof(path), "/proc/%s/task", pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		char p2[600];
		long long ns;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p2, sizeof(p2), "%s/%s/schedstat", path, de->d_name);
		if ((f = fopen(p2, "r")) == NULL)
			continue;
		if (fscanf(f, "%lld", &ns) == 1)
			sum += ns;
		fclose(f);
	}
	closedir(d);
	return sum;
}

/* ---- buffers and connections ---- */
typedef struct {
	char *p;
	size_t len, cap;
} Buf;

static void
buf_reserve(Buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	while (b->len + extra + 1 > b->cap)
		b->cap = b->cap ? b->cap * 2 : 65536;
	if ((b->p = realloc(b->p, b->cap)) == NULL)
		die("out of memory");
}

static void
buf_printf(Buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	buf_reserve(b, n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, n + 1, fmt, ap);
	va_end(ap);
	b->len += n;
}

typedef struct {
	int fd;          /* -1 once the server closed it */
	const char *path; /* to connect again; NULL for a socketpair */
	Buf in;          /* bytes read; a complete reply is in [0, rlen) */
	size_t hdrlen;   /* 0 until the header end was seen */
	size_t rlen;     /* header + body length once known */
} Conn;

static int
conn_open(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket: %s", strerror(errno));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect %s: %s", path, strerror(errno));
	return fd;
}

/* Build a complete HTTP request around BODY. */
static void
http_request(Buf *out, const char *url, const char *ctype, const char *body)
{
	out->len = 0;
	buf_printf(out, "POST %s HTTP/1.1\r\nHost: localhost\r\n"
		   "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n%s",
		   url, ctype, strlen(body), body);
}

static void
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("write: %s", strerror(errno));
		}
		p += w;
		n -= w;
	}
}

/* Drop the previous reply (keeping any pipelined bytes after it). */
static void
conn_consume(Conn *c)
{
	if (c->rlen) {
		memmove(c->in.p, c->in.p + c->rlen, c->in.len - c->rlen);
		c->in.len -= c->rlen;
	}
	c->hdrlen = c->rlen = 0;
}

/* Parse what is buffered; return 1 when a whole reply is there. */
static int
conn_complete(Conn *c)
{
	if (c->hdrlen == 0) {
		char *e, *h;
		long cl = -1;

		if (c->in.len < 4)
			return 0;
		c->in.p[c->in.len] = '\0';
		if ((e = strstr(c->in.p, "\r\n\r\n")) == NULL)
			return 0;
		c->hdrlen = e + 4 - c->in.p;
		for (h = c->in.p; h < e; h = strstr(h, "\r\n") + 2) {
			if (strncasecmp(h, "Content-Length:", 15) == 0)
				cl = strtol(h + 15, NULL, 10);
			if (strstr(h, "\r\n") == NULL)
				break;
		}
		if (cl < 0)
			die("reply without Content-Length");
		c->rlen = c->hdrlen + cl;
	}
	return c->in.len >= c->rlen;
}

/* Read once (the fd is readable or we are happy to block). */
static void
conn_read_some(Conn *c)
{
	ssize_t r;

	buf_reserve(&c->in, 65536);
	r = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len - 1);
	if (r < 0 && errno == EINTR)
		return;
	if (r <= 0)
		die("read: %s", r == 0 ? "connection closed" : strerror(errno));
	c->in.len += r;
	c->in.p[c->in.len] = '\0';
}

/* Connects again if the server closed the connection after its last
 * reply (Connection: close), dropping what was read. */
static void
conn_ready(Conn *c)
{
	conn_consume(c);
	if (c->fd >= 0 || c->path == NULL)
		return;
	c->fd = conn_open(c->path);
	c->in.len = 0;
}

/* After a complete reply: a connection the server closes is closed. */
static void
conn_done(Conn *c)
{
	char save = c->in.p[c->hdrlen - 2];

	c->in.p[c->hdrlen - 2] = '\0';
	if (c->path != NULL && strcasestr(c->in.p, "\r\nConnection: close")) {
		close(c->fd);
		c->fd = -1;
	}
	c->in.p[c->hdrlen - 2] = save;
}

/* Send one prebuilt request and wait for the whole reply. */
static void
rpc(Conn *c, const Buf *req)
{
	conn_ready(c);
	write_all(c->fd, req->p, req->len);
	while (!conn_complete(c))
		conn_read_some(c);
	c->in.p[c->rlen] = '\0';  /* body may be followed by nothing else */
	conn_done(c);
}

static const char *
body(Conn *c)
{
	return c->in.p + c->hdrlen;
}

static char *
json_string_after(const char *s, const char *key)
{
	/* "key" <ws> : <ws> "value" ; last occurrence of the key */
	const char *p = NULL, *q;
	char pat[64];

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	for (q = strstr(s, pat); q; q = strstr(q + 1, pat))
		p = q;
	if (p == NULL)
		return NULL;
	p += strlen(pat);
	while (*p == ' ' || *p == ':')
		p++;
	if (*p != '"')
		return NULL;
	q = strchr(++p, '"');
	return q ? strndup(p, q - p) : NULL;
}

static char *
login(Conn *c)
{
	Buf req = { 0 };
	char *s;

	http_request(&req, "/jsonrpc", "application/json",
		     "{\"jsonrpc\":\"2.0\",\"method\":\"session.login_with_password\","
		     "\"params\":[\"root\",\"\",\"1.0\",\"bench\"],\"id\":1}");
	rpc(c, &req);
	s = json_string_after(body(c), "result");
	if (s == NULL)
		die("login failed: %s", body(c));
	free(req.p);
	return s;
}

static void
print_samples(const char *name, const double *v, int n)
{
	printf("\"%s\":[", name);
	for (int i = 0; i < n; i++)
		printf("%s%.2f", i ? "," : "", v[i]);
	printf("]");
}

static void
print_cpu(const char *name, long long a, long long b, int calls)
{
	if (a < 0 || b < 0)
		printf(",\"%s\":null", name);
	else
		printf(",\"%s\":%.2f", name, (b - a) / 1e3 / calls);
}

/* ---- modes ---- */

static void
mode_create(const char *sock, int n, const char *prefix)
{
	Conn c = { .fd = -1, .path = sock };
	char *s = login(&c), *first = NULL;
	double *t = calloc(n, sizeof(double)), wall;
	Buf req = { 0 }, b = { 0 };
	long long cpu0, cpu1;

	cpu0 = daemon_cpu_ns();
	wall = now_us();
	for (int i = 0; i < n; i++) {
		double t0;

		/* request built outside the timed part */
		b.len = 0;
		buf_printf(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"VM.create\","
			   "\"params\":[\"%s\",{\"name_label\":\"%s%04d\","
			   "\"memory_static_max\":\"268435456\",\"VCPUs_max\":\"1\","
			   "\"VCPUs_at_startup\":\"1\",\"PV_kernel\":\"vmlinuz\"}],"
			   "\"id\":%d}", s, prefix, i, i + 2);
		http_request(&req, "/jsonrpc", "application/json", b.p);
		t0 = now_us();
		rpc(&c, &req);
		t[i] = now_us() - t0;
		if (strstr(body(&c), "\"error\"") ||
		    !strstr(body(&c), "OpaqueRef:"))
			die("VM.create failed: %s", body(&c));
		if (first == NULL)
			first = json_string_after(body(&c), "result");
	}
	wall = now_us() - wall;
	cpu1 = daemon_cpu_ns();
	printf("{\"first_ref\":\"%s\",\"wall_us\":%.0f,", first, wall);
	print_samples("create_us", t, n);
	print_cpu("create_daemon_cpu_us_per_call", cpu0, cpu1, n);
	printf("}\n");
}

/* A trivial server on a socketpair: reads each request by Content-Length
 * and answers with the canned reply REP.  Same read routine as the client. */
static void
echo_server(int fd, const char *rep, size_t replen)
{
	Conn c = { .fd = fd };

	for (;;) {
		conn_consume(&c);
		while (!conn_complete(&c)) {
			ssize_t r;

			buf_reserve(&c.in, 65536);
			r = read(fd, c.in.p + c.in.len, c.in.cap - c.in.len - 1);
			if (r <= 0)
				_exit(0);
			c.in.len += r;
			c.in.p[c.in.len] = '\0';
		}
		write_all(fd, rep, replen);
	}
}

static void
timed_loop(Conn *c, const Buf *req, int warm, int n, double *t,
	   const char *expect)
{
	for (int i = 0; i < warm + n; i++) {
		double t0 = now_us();

		rpc(c, req);
		if (i >= warm)
			t[i - warm] = now_us() - t0;
		if (expect && strstr(body(c), expect) == NULL)
			die("unexpected reply: %.400s", body(c));
	}
}

static void
mode_getrec(const char *sock, const char *ref, int n)
{
	Conn c = { .fd = -1, .path = sock };
	char *s = login(&c), *rep;
	double *tj = calloc(n, sizeof(double)), *tx = calloc(n, sizeof(double));
	double *te = calloc(n, sizeof(double));
	Buf req = { 0 }, xreq = { 0 }, b = { 0 };
	long long c0, c1, c2, c3;
	size_t replen, jbody, xbody;
	int sv[2];
	pid_t pid;

	buf_printf(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"VM.get_record\","
		   "\"params\":[\"%s\",\"%s\"],\"id\":7}", s, ref);
	http_request(&req, "/jsonrpc", "application/json", b.p);
	b.len = 0;
	buf_printf(&b, "<?xml version=\"1.0\"?><methodCall><methodName>"
		   "VM.get_record</methodName><params><param><value><string>%s"
		   "</string></value></param><param><value><string>%s</string>"
		   "</value></param></params></methodCall>", s, ref);
	http_request(&xreq, "/", "text/xml", b.p);

	c0 = daemon_cpu_ns();
	timed_loop(&c, &req, 50, n, tj, "\"name_label\"");
	c1 = daemon_cpu_ns();
	jbody = c.rlen - c.hdrlen;
	rep = malloc(c.rlen);
	memcpy(rep, c.in.p, c.rlen);
	replen = c.rlen;

	c2 = daemon_cpu_ns();
	timed_loop(&c, &xreq, 50, n, tx, "Success");
	c3 = daemon_cpu_ns();
	xbody = c.rlen - c.hdrlen;

	/* echo: the same client loop, the same request and reply bytes, a
	 * server that does nothing */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair: %s", strerror(errno));
	if ((pid = fork()) == 0) {
		close(sv[0]);
		echo_server(sv[1], rep, replen);
	}
	close(sv[1]);
	{
		Conn e = { .fd = sv[0] };

		timed_loop(&e, &req, 50, n, te, "\"name_label\"");
		close(sv[0]);
	}
	waitpid(pid, NULL, 0);

	printf("{\"json_reply_bytes\":%zu,\"xml_reply_bytes\":%zu,", jbody, xbody);
	print_samples("getrec_json_us", tj, n);
	printf(",");
	print_samples("getrec_xml_us", tx, n);
	printf(",");
	print_samples("echo_us", te, n);
	print_cpu("getrec_json_daemon_cpu_us_per_call", c0, c1, n + 50);
	print_cpu("getrec_xml_daemon_cpu_us_per_call", c2, c3, n + 50);
	printf("}\n");
}

static int
count(const char *s, const char *pat)
{
	int k = 0;

	for (s = strstr(s, pat); s; s = strstr(s + 1, pat))
		k++;
	return k;
}

static void
mode_getall(const char *sock, int n)
{
	Conn c = { .fd = -1, .path = sock };
	char *s = login(&c);
	double *tj = calloc(n, sizeof(double)), *tx = calloc(n, sizeof(double));
	Buf req = { 0 }, xreq = { 0 }, b = { 0 };
	long long c0, c1, c2, c3;
	size_t jbody, xbody;
	int nj, nx;

	buf_printf(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"VM.get_all_records\","
		   "\"params\":[\"%s\"],\"id\":9}", s);
	http_request(&req, "/jsonrpc", "application/json", b.p);
	b.len = 0;
	buf_printf(&b, "<?xml version=\"1.0\"?><methodCall><methodName>"
		   "VM.get_all_records</methodName><params><param><value>"
		   "<string>%s</string></value></param></params></methodCall>", s);
	http_request(&xreq, "/", "text/xml", b.p);

	c0 = daemon_cpu_ns();
	timed_loop(&c, &req, 2, n, tj, NULL);
	c1 = daemon_cpu_ns();
	jbody = c.rlen - c.hdrlen;
	nj = count(body(&c), "\"name_label\"");
	c2 = daemon_cpu_ns();
	timed_loop(&c, &xreq, 2, n, tx, NULL);
	c3 = daemon_cpu_ns();
	xbody = c.rlen - c.hdrlen;
	nx = count(body(&c), "<name>name_label</name>");
	printf("{\"json_records\":%d,\"xml_records\":%d,\"json_reply_bytes\":%zu,"
	       "\"xml_reply_bytes\":%zu,", nj, nx, jbody, xbody);
	print_samples("getall_json_us", tj, n);
	printf(",");
	print_samples("getall_xml_us", tx, n);
	print_cpu("getall_json_daemon_cpu_us_per_call", c0, c1, n + 2);
	print_cpu("getall_xml_daemon_cpu_us_per_call", c2, c3, n + 2);
	printf("}\n");
}

/*
 * Event latency.  Connection A sends event.from(s, ["vm"], token, 10) and is
 * left waiting in the daemon (we wait WAIT_US so that the request has surely
 * been parked); then connection B sends VM.set_name_label.  Both sockets are
 * polled from one thread and each reply is timestamped the moment its last
 * byte has been read.  Figures: A's reply minus B's reply ("from return"),
 * and A's reply minus B's send ("from the call").
 */
static void
mode_events(const char *sock, const char *ref, int n)
{
	Conn a = { .fd = -1, .path = sock }, bc = { .fd = -1, .path = sock };
	char *s = login(&a), *token;
	double *fr = calloc(n, sizeof(double)), *fc = calloc(n, sizeof(double));
	double *bl = calloc(n, sizeof(double));
	Buf req = { 0 }, b = { 0 }, breq = { 0 };
	int before = 0, warm = 5, k = 0;

	/* the current token (this first reply lists every VM) */
	buf_printf(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"event.from\","
		   "\"params\":[\"%s\",[\"vm\"],\"\",0.0],\"id\":1}", s);
	http_request(&req, "/jsonrpc", "application/json", b.p);
	rpc(&a, &req);
	if ((token = json_string_after(body(&a), "token")) == NULL)
		die("event.from: no token: %.400s", body(&a));

	for (int i = 0; i < warm + n; i++) {
		double t_send, t_a = 0, t_b = 0;
		char name[64];

		b.len = 0;
		buf_printf(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"event.from\","
			   "\"params\":[\"%s\",[\"vm\"],\"%s\",10.0],\"id\":%d}",
			   s, token, i);
		http_request(&req, "/jsonrpc", "application/json", b.p);
		snprintf(name, sizeof(name), "evname-%d", i);
		b.len = 0;
		buf_printf(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"VM.set_name_label\","
			   "\"params\":[\"%s\",\"%s\",\"%s\"],\"id\":%d}",
			   s, ref, name, i);
		http_request(&breq, "/jsonrpc", "application/json", b.p);

		conn_ready(&a);
		conn_ready(&bc);
		write_all(a.fd, req.p, req.len);
		usleep(3000);
		{
			struct pollfd p = { .fd = a.fd, .events = POLLIN };

			if (poll(&p, 1, 0) != 0)
				die("event.from answered before any change: %.300s",
				    a.in.p);
		}
		t_send = now_us();
		write_all(bc.fd, breq.p, breq.len);
		while (t_a == 0 || t_b == 0) {
			struct pollfd p[2] = {
				{ .fd = a.fd, .events = t_a == 0 ? POLLIN : 0 },
				{ .fd = bc.fd, .events = t_b == 0 ? POLLIN : 0 },
			};

			if (poll(p, 2, 15000) <= 0)
				die("event wait timed out");
			if (p[0].revents) {
				conn_read_some(&a);
				if (conn_complete(&a))
					t_a = now_us();
			}
			if (p[1].revents) {
				conn_read_some(&bc);
				if (conn_complete(&bc))
					t_b = now_us();
			}
		}
		a.in.p[a.rlen] = '\0';
		conn_done(&a);
		conn_done(&bc);
		if (strstr(body(&a), name) == NULL)
			die("event.from reply lacks the change: %.400s", body(&a));
		if (strstr(body(&bc), "\"error\""))
			die("set_name_label: %.300s", body(&bc));
		free(token);
		if ((token = json_string_after(body(&a), "token")) == NULL)
			die("event.from: no token: %.400s", body(&a));
		if (i >= warm) {
			fr[k] = t_a - t_b;
			fc[k] = t_a - t_send;
			bl[k] = t_b - t_send;
			if (t_a < t_b)
				before++;
			k++;
		}
	}
	printf("{\"event_before_return\":%d,", before);
	print_samples("event_from_return_us", fr, n);
	printf(",");
	print_samples("event_from_send_us", fc, n);
	printf(",");
	print_samples("set_name_label_us", bl, n);
	printf("}\n");
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 5 && strcmp(argv[2], "create") == 0)
		mode_create(argv[1], atoi(argv[3]), argv[4]);
	else if (argc >= 5 && strcmp(argv[2], "getrec") == 0)
		mode_getrec(argv[1], argv[3], atoi(argv[4]));
	else if (argc >= 4 && strcmp(argv[2], "getall") == 0)
		mode_getall(argv[1], atoi(argv[3]));
	else if (argc >= 5 && strcmp(argv[2], "events") == 0)
		mode_events(argv[1], argv[3], atoi(argv[4]));
	else
		die("usage: client SOCK create N PREFIX | getrec REF N | "
		    "getall N | events REF N");
	return 0;
}

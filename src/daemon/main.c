/*
 * ternd: one daemon per host.
 *
 * main reads the configuration, opens the store, makes or loads the TLS
 * certificate, builds the API and the QEMU driver, re-attaches to the VMs
 * that kept running while ternd was down, recovers journaled migrations,
 * opens the listeners and runs the main loop until SIGTERM or SIGINT.
 * Everything runs on that one loop; the only threads are GIO's and the
 * password-hash workers.  `ternd user ...` manages local users instead.
 */
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <malloc.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "migrate/migrate.h"
#include "migrate/qualify.h"
#include "qemu/driver.h"
#include "rpc/http.h"

/* The API of a serving ternd: see the end of main_serve for why it is
 * never freed.  Held here so it stays reachable until the process exits
 * (LeakSanitizer reports only what nothing points to: what this owns is
 * not a leak, what it lost is). */
static Api *main_api;

/*
 * glibc's malloc, tuned for a daemon that lives for months.  By default
 * every thread that allocates may get an arena of its own (up to 8 per
 * CPU: the relay, p2p and login workers here), each keeping what its
 * threads freed, and the mmap threshold climbs after each big free, so
 * later large buffers come from the heap and stay there.  The soak
 * (docs/reliability.md) found 60 MB held by malloc against 32 MB in use
 * after 150 migrations.  So: two arenas, fixed thresholds, and what is
 * free handed back to the kernel once a minute (malloc_trim walks the
 * arenas; a few hundred microseconds here).
 */
#define MAIN_TRIM_S 60

static gboolean
main_trim(gpointer data)
{
	malloc_trim(0);
	return G_SOURCE_CONTINUE;
}

static void
main_malloc_setup(void)
{
	mallopt(M_ARENA_MAX, 2);
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
}

static gboolean
main_quit(gpointer loop)
{
	g_info("ternd: shutting down");
	g_main_loop_quit(loop);
	return G_SOURCE_REMOVE;
}

static gboolean
main_parse(int *argc, char ***argv, Config *flags, GError **error)
{
	GOptionEntry entries[] = {
		{ "config", 'f', 0, G_OPTION_ARG_FILENAME, &flags->config_file,
		  "Configuration file (INI)", "FILE" },
		{ "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &flags->state_dir,
		  "State directory (database, certificate)", "DIR" },
		{ "run-dir", 0, 0, G_OPTION_ARG_FILENAME, &flags->run_dir,
		  "Runtime directory (QMP sockets, pidfiles, consoles)", "DIR" },
		{ "socket", 0, 0, G_OPTION_ARG_FILENAME, &flags->socket_path,
		  "Local Unix socket", "PATH" },
		{ "listen", 0, 0, G_OPTION_ARG_STRING, &flags->listen,
		  "TCP address:port to listen on (\"\" for none)", "ADDR" },
		{ "tls-cert", 0, 0, G_OPTION_ARG_FILENAME, &flags->tls_cert,
		  "TLS certificate (PEM)", "FILE" },
		{ "tls-key", 0, 0, G_OPTION_ARG_FILENAME, &flags->tls_key,
		  "TLS key (PEM)", "FILE" },
		{ "no-tls", 0, 0, G_OPTION_ARG_NONE, &flags->no_tls,
		  "Serve plain HTTP on the TCP port (loopback tests only)",
		  NULL },
		{ "advertise", 0, 0, G_OPTION_ARG_STRING, &flags->advertise,
		  "URL peers use to reach this host", "URL" },
		{ "accel", 0, 0, G_OPTION_ARG_STRING, &flags->accel,
		  "QEMU accelerator: tcg, kvm or auto", "ACCEL" },
		{ "cpu-model", 0, 0, G_OPTION_ARG_STRING, &flags->cpu_model,
		  "Default CPU model for guests", "MODEL" },
		{ "session-idle", 0, 0, G_OPTION_ARG_INT,
		  &flags->session_idle_s, "Idle seconds before a session ends",
		  "S" },
		{ "memory-reserve", 0, 0, G_OPTION_ARG_INT,
		  &flags->memory_reserve_mib,
		  "MiB kept for the host, not given to VMs", "MIB" },
		{ "foreground", 'F', 0, G_OPTION_ARG_NONE, &flags->foreground,
		  "Stay in the foreground", NULL },
		{ "log-level", 0, 0, G_OPTION_ARG_STRING, &flags->log_level,
		  "error, warning, info or debug", "LEVEL" },
		{ NULL }
	};
	g_autoptr(GOptionContext) ctx = g_option_context_new(
		"[user add|list|passwd|del ...]  - the tern host daemon");

	g_option_context_add_main_entries(ctx, entries, NULL);
	g_option_context_set_strict_posix(ctx, TRUE);
	return g_option_context_parse(ctx, argc, argv, error);
}

static char *
main_advertise(const Config *cfg, guint16 port)
{
	if (cfg->advertise != NULL)
		return g_strdup(cfg->advertise);
	g_autofree char *host = g_strdup(cfg->listen);
	char *colon = strrchr(host, ':');
	if (colon)
		*colon = 0;
	if (strcmp(host, "0.0.0.0") == 0 || *host == 0) {
		g_free(host);
		host = g_strdup("127.0.0.1");
	}
	return g_strdup_printf("%s://%s:%u", cfg->no_tls ? "http" : "https",
			       host, port);
}

static int
main_serve(Config *cfg)
{
	GError *e = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	g_autoptr(GTlsCertificate) cert = NULL;
	g_autofree char *fp = NULL;
	g_autofree char *url = NULL;

	if (g_mkdir_with_parents(cfg->state_dir, 0700) != 0 ||
	    g_mkdir_with_parents(cfg->run_dir, 0700) != 0) {
		g_critical("ternd: cannot make %s or %s", cfg->state_dir,
			   cfg->run_dir);
		return 1;
	}
	g_autofree char *db = g_build_filename(cfg->state_dir, "tern.db", NULL);
	g_autoptr(Store) store = store_open(db, &e);
	if (store == NULL)
		goto fail;
	store_set_event_bytes(store, (gsize)MAX(cfg->event_ring_kib, 1) << 10);

	/* The certificate serves the TCP port (API and migration channel);
	 * without one, the TLS stack is not even loaded. */
	if (!cfg->no_tls && *cfg->listen) {
		cert = tls_load(cfg->state_dir, cfg->tls_cert, cfg->tls_key,
				&e);
		if (cert == NULL)
			goto fail;
		fp = tls_fingerprint(cert);
	}

	ApiConfig ac = {
		.state_dir = cfg->state_dir,
		.run_dir = cfg->run_dir,
		.accel = cfg->accel,
		.cpu_model = cfg->cpu_model,
		.qemu_binary = cfg->qemu_binary,
		.session_idle_s = cfg->session_idle_s,
		.login_workers = cfg->login_workers,
		.login_queue = cfg->login_queue,
		.tls = cert != NULL,
		.tls_fingerprint = fp,
		.memory_reserve = (gint64)cfg->memory_reserve_mib << 20,
		.qemu_user = cfg->qemu_user,
		.qemu_sandbox = cfg->qemu_sandbox,
		.console_log_max = (gint64)MAX(cfg->console_log_max_kib, 0)
				   << 10,
		.task_keep_s = (guint)MAX(cfg->task_keep_s, 0),
		.task_keep_max = (guint)MAX(cfg->task_keep_max, 0),
		.boot_dir = cfg->boot_dir,
	};
	HttpConfig hc = {
		.unix_path = cfg->socket_path,
		.listen = *cfg->listen ? cfg->listen : NULL,
		.cert = cert,
		.max_body = (gsize)cfg->max_body_mib << 20,
		.max_headers = cfg->max_headers,
		.first_byte_s = cfg->first_byte_timeout_s,
		.limits = {
			.max_conns = cfg->max_connections,
			.max_per_addr = cfg->max_connections_per_address,
			.header_s = cfg->header_timeout_s,
			.body_s = cfg->body_timeout_s,
			.idle_s = cfg->keepalive_timeout_s,
			.bodies_in_flight = (gsize)cfg->bodies_in_flight_mib
					    << 20,
		},
	};
	/* Listen first so the advertised URL carries the real port. */
	Api *api = NULL;
	Http *http = http_new(NULL, &hc, &e);
	if (http == NULL)
		goto fail;
	url = main_advertise(cfg, http_port(http));
	ac.migrate_url = url;
	api = api_new(store, &ac, &e);
	if (api == NULL) {
		http_free(http);
		goto fail;
	}
	http_set_api(http, api);
	main_api = api;
	api->cert = cert;
	api->qemu = qemu_driver_new(api);
	qualify_caps_apply(api, qualify_caps(api));
	migrate_recover(api);

	g_unix_signal_add(SIGTERM, main_quit, loop);
	g_unix_signal_add(SIGINT, main_quit, loop);
	g_timeout_add_seconds(MAIN_TRIM_S, main_trim, NULL);
	/* A peer that hangs up is an error on that write (EPIPE), never the
	 * end of the daemon: the relay and the QMP client write to sockets
	 * whose other end may go at any time. */
	signal(SIGPIPE, SIG_IGN);
	g_message("ternd: serving on %s%s%s (socket %s)",
		  *cfg->listen ? url : "no TCP port",
		  fp ? ", certificate SHA-256 " : "", fp ? fp : "",
		  cfg->socket_path);
	g_main_loop_run(loop);

	/* Stop listening and close the database; the VMs run on.  The API,
	 * the driver and any operation still in flight are left to the
	 * process exit: tearing them down would call back into half-freed
	 * operations, and everything they own is either in QEMU (which
	 * outlives us) or in the journal (replayed at the next start). */
	http_free(http);
	return 0;
fail:
	g_critical("ternd: %s", e->message);
	g_error_free(e);
	return 1;
}

int
main(int argc, char **argv)
{
	Config flags = { .memory_reserve_mib = -1 };
	Config cfg = { 0 };
	GError *e = NULL;
	int rc;

	main_malloc_setup(); /* before any thread */
	if (sodium_init() < 0) {
		fprintf(stderr, "ternd: libsodium failed to start\n");
		return 1;
	}
	if (!main_parse(&argc, &argv, &flags, &e) ||
	    !config_load(&cfg, &flags, &e)) {
		fprintf(stderr, "ternd: %s\n", e->message);
		g_error_free(e);
		rc = 2;
		goto out;
	}
	log_setup(cfg.log_level, cfg.foreground);
	if (argc > 1 && strcmp(argv[1], "user") == 0) {
		rc = user_command(&cfg, argc - 1, argv + 1);
	} else if (argc > 1) {
		fprintf(stderr, "ternd: unknown command \"%s\"\n", argv[1]);
		rc = 2;
	} else if (!cfg.foreground && daemon(0, 1) != 0) {
		perror("ternd: daemon");
		rc = 1;
	} else {
		rc = main_serve(&cfg);
	}
out:
	config_clear(&cfg);
	config_clear(&flags);
	return rc;
}

/*
 * config: ternd's settings, from built-in defaults, then an INI file
 * (GKeyFile), then command-line flags; the later source wins.  The file's
 * groups and keys are documented in docs/configuration.md.  Also the log
 * writer: levels to stderr, filtered by the configured threshold.
 */
#include "daemon/daemon.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void
config_str(char **dst, GKeyFile *kf, const char *group, const char *key)
{
	g_autofree char *v = kf ? g_key_file_get_string(kf, group, key, NULL)
				: NULL;

	if (v != NULL) {
		g_free(*dst);
		*dst = g_strstrip(g_steal_pointer(&v));
	}
}

static void
config_int(int *dst, GKeyFile *kf, const char *group, const char *key)
{
	GError *e = NULL;
	int v;

	if (kf == NULL)
		return;
	v = g_key_file_get_integer(kf, group, key, &e);
	if (e == NULL)
		*dst = v;
	g_clear_error(&e);
}

/* The [limits] group: every key an int with a floor (0 means "no cap"
 * where the floor is 0; see docs/configuration.md). */
static const struct {
	const char *key;
	gsize offset;
	int min;
} config_limits[] = {
	{ "max_connections", G_STRUCT_OFFSET(Config, max_connections), 0 },
	{ "max_connections_per_address",
	  G_STRUCT_OFFSET(Config, max_connections_per_address), 0 },
	{ "max_headers", G_STRUCT_OFFSET(Config, max_headers), 0 },
	{ "bodies_in_flight_mib",
	  G_STRUCT_OFFSET(Config, bodies_in_flight_mib), 0 },
	{ "first_byte_timeout_s",
	  G_STRUCT_OFFSET(Config, first_byte_timeout_s), 1 },
	{ "header_timeout_s", G_STRUCT_OFFSET(Config, header_timeout_s), 0 },
	{ "body_timeout_s", G_STRUCT_OFFSET(Config, body_timeout_s), 0 },
	{ "keepalive_timeout_s",
	  G_STRUCT_OFFSET(Config, keepalive_timeout_s), 0 },
	{ "login_workers", G_STRUCT_OFFSET(Config, login_workers), 1 },
	{ "login_queue", G_STRUCT_OFFSET(Config, login_queue), 0 },
};

static void
config_flag(char **dst, const char *flag)
{
	if (flag != NULL) {
		g_free(*dst);
		*dst = g_strdup(flag);
	}
}

gboolean
config_load(Config *cfg, const Config *flags, GError **error)
{
	g_autoptr(GKeyFile) kf = NULL;

	memset(cfg, 0, sizeof *cfg);
	cfg->state_dir = g_strdup("/var/lib/tern");
	cfg->run_dir = g_strdup("/run/tern");
	cfg->listen = g_strdup("0.0.0.0:8443");
	cfg->log_level = g_strdup("info");
	cfg->accel = g_strdup("tcg");
	cfg->cpu_model = g_strdup("qemu64");
	cfg->qemu_binary = g_strdup("qemu-system-x86_64");
	cfg->session_idle_s = 24 * 3600;
	cfg->memory_reserve_mib = 512;
	cfg->max_body_mib = 16;
	cfg->max_connections = 256;
	cfg->max_connections_per_address = 32;
	cfg->max_headers = 100;
	cfg->bodies_in_flight_mib = 64;
	cfg->first_byte_timeout_s = 10;
	cfg->header_timeout_s = 10;
	cfg->body_timeout_s = 60;
	cfg->keepalive_timeout_s = 60;
	cfg->login_workers = 2;
	cfg->login_queue = 16;
	cfg->qemu_user = g_strdup("tern-qemu");
	cfg->qemu_sandbox = TRUE;
	cfg->console_log_max_kib = 1024;
	cfg->event_ring_kib = 16 * 1024;
	cfg->task_keep_s = 3600;
	cfg->task_keep_max = 1000;

	cfg->config_file = g_strdup(flags->config_file);
	if (cfg->config_file != NULL) {
		kf = g_key_file_new();
		if (!g_key_file_load_from_file(kf, cfg->config_file,
					       G_KEY_FILE_NONE, error))
			return FALSE;
	}
	config_str(&cfg->state_dir, kf, "daemon", "state_dir");
	config_str(&cfg->run_dir, kf, "daemon", "run_dir");
	config_str(&cfg->socket_path, kf, "daemon", "socket");
	config_str(&cfg->listen, kf, "daemon", "listen");
	config_str(&cfg->tls_cert, kf, "daemon", "tls_cert");
	config_str(&cfg->tls_key, kf, "daemon", "tls_key");
	config_str(&cfg->log_level, kf, "daemon", "log_level");
	config_str(&cfg->advertise, kf, "daemon", "advertise");
	config_int(&cfg->session_idle_s, kf, "daemon", "session_idle_s");
	config_int(&cfg->max_body_mib, kf, "daemon", "max_body_mib");
	for (gsize i = 0; i < G_N_ELEMENTS(config_limits); i++)
		config_int((int *)((char *)cfg + config_limits[i].offset), kf,
			   "limits", config_limits[i].key);
	if (kf && g_key_file_has_key(kf, "daemon", "tls", NULL))
		cfg->no_tls = !g_key_file_get_boolean(kf, "daemon", "tls",
						      NULL);
	config_str(&cfg->accel, kf, "qemu", "accel");
	config_str(&cfg->cpu_model, kf, "qemu", "cpu_model");
	config_str(&cfg->qemu_binary, kf, "qemu", "binary");
	config_str(&cfg->qemu_user, kf, "qemu", "user");
	if (kf && g_key_file_has_key(kf, "qemu", "sandbox", NULL))
		cfg->qemu_sandbox = g_key_file_get_boolean(kf, "qemu",
							   "sandbox", NULL);
	config_int(&cfg->console_log_max_kib, kf, "qemu",
		   "console_log_max_kib");
	config_int(&cfg->event_ring_kib, kf, "daemon", "event_ring_kib");
	config_int(&cfg->task_keep_s, kf, "daemon", "task_keep_s");
	config_int(&cfg->task_keep_max, kf, "daemon", "task_keep_max");
	config_int(&cfg->memory_reserve_mib, kf, "host", "memory_reserve_mib");
	config_str(&cfg->boot_dir, kf, "storage", "boot_dir");

	config_flag(&cfg->state_dir, flags->state_dir);
	config_flag(&cfg->run_dir, flags->run_dir);
	config_flag(&cfg->socket_path, flags->socket_path);
	config_flag(&cfg->listen, flags->listen);
	config_flag(&cfg->tls_cert, flags->tls_cert);
	config_flag(&cfg->tls_key, flags->tls_key);
	config_flag(&cfg->log_level, flags->log_level);
	config_flag(&cfg->accel, flags->accel);
	config_flag(&cfg->cpu_model, flags->cpu_model);
	config_flag(&cfg->advertise, flags->advertise);
	if (flags->no_tls)
		cfg->no_tls = TRUE;
	cfg->foreground = flags->foreground;
	if (flags->session_idle_s > 0)
		cfg->session_idle_s = flags->session_idle_s;
	if (flags->memory_reserve_mib >= 0 && flags->memory_reserve_mib != 0)
		cfg->memory_reserve_mib = flags->memory_reserve_mib;
	if (cfg->boot_dir == NULL || !*cfg->boot_dir) {
		g_free(cfg->boot_dir);
		cfg->boot_dir = g_build_filename(cfg->state_dir, "boot", NULL);
	}
	if (cfg->socket_path == NULL)
		cfg->socket_path = g_build_filename(cfg->run_dir,
						    "ternd.sock", NULL);
	for (gsize i = 0; i < G_N_ELEMENTS(config_limits); i++) {
		int v = *(int *)((char *)cfg + config_limits[i].offset);
		if (v < config_limits[i].min) {
			g_set_error(error, G_IO_ERROR,
				    G_IO_ERROR_INVALID_ARGUMENT,
				    "[limits] %s must be at least %d, not %d",
				    config_limits[i].key, config_limits[i].min,
				    v);
			return FALSE;
		}
	}
	if (!g_strv_contains((const char *const[]){ "tcg", "kvm", "auto",
						    NULL }, cfg->accel)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "accel must be tcg, kvm or auto, not \"%s\"",
			    cfg->accel);
		return FALSE;
	}
	return TRUE;
}

void
config_clear(Config *cfg)
{
	g_free(cfg->config_file);
	g_free(cfg->state_dir);
	g_free(cfg->run_dir);
	g_free(cfg->socket_path);
	g_free(cfg->listen);
	g_free(cfg->tls_cert);
	g_free(cfg->tls_key);
	g_free(cfg->log_level);
	g_free(cfg->accel);
	g_free(cfg->cpu_model);
	g_free(cfg->qemu_binary);
	g_free(cfg->advertise);
	g_free(cfg->qemu_user);
	g_free(cfg->boot_dir);
	memset(cfg, 0, sizeof *cfg);
}

/* ---- Logging -------------------------------------------------------- */

static GLogLevelFlags log_threshold = G_LOG_LEVEL_INFO;

static int
log_rank(GLogLevelFlags l)
{
	if (l & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
		return 0;
	if (l & G_LOG_LEVEL_WARNING)
		return 1;
	if (l & G_LOG_LEVEL_MESSAGE)
		return 2;
	if (l & G_LOG_LEVEL_INFO)
		return 3;
	return 4;
}

static GLogWriterOutput
log_writer(GLogLevelFlags level, const GLogField *fields, gsize n,
	   gpointer data)
{
	static const char *const names[] = { "error", "warning", "notice",
					     "info", "debug" };
	const char *msg = "";

	if (log_rank(level) > log_rank(log_threshold))
		return G_LOG_WRITER_HANDLED;
	for (gsize i = 0; i < n; i++)
		if (strcmp(fields[i].key, "MESSAGE") == 0)
			msg = fields[i].value;
	g_autoptr(GDateTime) now = g_date_time_new_now_local();
	g_autofree char *ts = g_date_time_format(now, "%H:%M:%S.%f");
	fprintf(stderr, "%.12s ternd[%d] %s: %s\n", ts, (int)getpid(),
		names[log_rank(level)], msg);
	return G_LOG_WRITER_HANDLED;
}

void
log_setup(const char *level, gboolean foreground)
{
	static const struct {
		const char *name;
		GLogLevelFlags flag;
	} levels[] = {
		{ "error", G_LOG_LEVEL_CRITICAL },
		{ "warning", G_LOG_LEVEL_WARNING },
		{ "info", G_LOG_LEVEL_INFO },
		{ "debug", G_LOG_LEVEL_DEBUG },
	};

	for (guint i = 0; i < G_N_ELEMENTS(levels); i++)
		if (g_strcmp0(level, levels[i].name) == 0)
			log_threshold = levels[i].flag;
	g_log_set_writer_func(log_writer, NULL, NULL);
}

/*
 * daemon: what ternd's main needs from its helpers: configuration (an INI
 * file read with GKeyFile, then flags), the TLS certificate, logging and
 * the local user administration command.
 */
#pragma once

#include <gio/gio.h>

#include "api/api.h"

typedef struct {
	char *config_file;
	char *state_dir;
	char *run_dir;
	char *socket_path;
	char *listen;             /* "addr:port"; "" for none */
	char *tls_cert;
	char *tls_key;
	gboolean no_tls;          /* plain HTTP on the TCP port */
	gboolean foreground;
	char *log_level;          /* error, warning, info, debug */
	char *accel;
	char *cpu_model;
	char *qemu_binary;
	char *advertise;          /* URL peers use to reach us */
	int session_idle_s;
	int memory_reserve_mib;
	int max_body_mib;
	/* [limits]: what a stranger may cost before authentication. */
	int max_connections;
	int max_connections_per_address;
	int max_headers;
	int bodies_in_flight_mib;
	int first_byte_timeout_s;
	int header_timeout_s;
	int body_timeout_s;
	int keepalive_timeout_s;
	int login_workers;
	int login_queue;
	char *qemu_user;          /* -runas; "" runs QEMU as ternd's user */
	gboolean qemu_sandbox;    /* -sandbox on,... */
	int console_log_max_kib;  /* per VM; 0: no cap */
	int event_ring_kib;       /* bytes of event snapshots kept */
	int task_keep_s;          /* finished tasks go after this */
	int task_keep_max;        /* and beyond this many */
	char *boot_dir;           /* [storage] boot_dir: the boot SR */
} Config;

/* Fills CFG from defaults, then the file (cfg->config_file, if any), then
 * the flags already parsed into FLAGS (non-NULL fields win). */
gboolean config_load(Config *cfg, const Config *flags, GError **error);
void config_clear(Config *cfg);

GTlsCertificate *tls_load(const char *state_dir, const char *cert_path,
			  const char *key_path, GError **error);
/* "AB:CD:..." SHA-256 of the certificate's DER. */
char *tls_fingerprint(GTlsCertificate *cert);

void log_setup(const char *level, gboolean foreground);

/* `ternd user ...`: returns the process exit code. */
int user_command(const Config *cfg, int argc, char **argv);

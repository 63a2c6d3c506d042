/*
 * migrate-int: what the migration files share: the parsed options, the
 * per-side state, and the QEMU preparation both sides run.
 */
#pragma once

#include "migrate/channel.h"
#include "migrate/migrate.h"
#include "migrate/qualify.h"
#include "qemu/qmp.h"

/* migrate_send's options (MIGRATION.md), parsed and checked. */
typedef struct {
	gboolean direct;          /* mode=direct; default tunnelled */
	gboolean secure;          /* default TRUE */
	double bandwidth_mib;     /* 0 = no cap */
	gint64 downtime_ms;       /* 0 = QEMU's default (300 ms) */
	char *dest_name;
	gboolean paused;
	gint64 parallel;          /* multifd channels; 1 = none */
	gboolean auto_converge;
	gboolean postcopy;
	gint64 max_duration_s;    /* default MIGRATE_MAX_DURATION_S */
	gboolean escalate;        /* climb the policy ladder (policy.c) */
	gboolean p2p;
} MigrateOptions;

gboolean migrate_options_parse(JsonObject *options, MigrateOptions *o,
			       GError **error);
void migrate_options_clear(MigrateOptions *o);

char *migrate_random_hex(gsize bytes);
void migrate_chan_set_handler(Chan *c, ChanFn fn, gpointer data);
void migrate_ignore_reply(Qmp *qmp, JsonNode *ret, const GError *error,
			  gpointer data);

/* Sets up the VM's QEMU for one migration: TLS credentials from PSK
 * (when secure), capabilities and parameters for the side.  DONE gets the
 * first error, if any. */
void migrate_qemu_prepare(Api *api, const char *vm_ref, const char *psk,
			  gboolean source, const MigrateOptions *o,
			  QmpReplyFn done, gpointer data);

/* Removes the migration's key file and QEMU's credentials object, once
 * the stream no longer needs them. */
void migrate_qemu_forget_key(Api *api, const char *vm_ref);

typedef enum {
	DST_QUALIFY,
	DST_STARTING,
	DST_RECEIVING,
	DST_RESUMING,
	DST_RUNNING,
	DST_ABORTED,
} DstPhase;

typedef struct {
	Api *api;
	char *id;                 /* migration uuid, from the source */
	char *secret;             /* shared with the source, for queries */
	char *vm_uuid;
	char *vm_ref;             /* our new record */
	char *psk;
	char *data_key;           /* names the data connection */
	char *direct_uri;         /* QEMU's own listener (direct mode) */
	DstPhase phase;
	MigrateOptions opts;
	gboolean paused;          /* leave paused on arrival */
	gint64 resume_us;         /* when QEMU resumed (RUNNING tells it) */
	Chan *ctl;
	Chan *data;
	int refs;                 /* own + one per pending call (dst_hold) */
	gboolean dead;            /* ended: pending callbacks only let go */
} Dst;

void migrate_dst_recover(Api *api, StoreJournal *j);
void migrate_src_recover(Api *api, StoreJournal *j);

/* Opens a channel to the ternd at URL: over TLS when URL is https (the
 * certificate pinned to FINGERPRINT when one is given).  DONE gets the
 * channel, whose messages then go to FN. */
void migrate_src_open(const char *url, const char *fingerprint, ChanFn fn,
		      gpointer data, ChanConnectFn done);

/* Peer to peer (p2p.c): logs in to the destination named in DEST (url,
 * user, password, fingerprint, trust_on_first_use) from a worker thread
 * and asks it for a token to receive VM_UUID.  DONE runs on the main loop;
 * migrate_p2p_finish gives it the token map, or NULL and an error that is
 * OURS (an XAPI error to pass on as it is) or not (the login failed). */
gboolean migrate_p2p_fetch(const char *state_dir, JsonObject *dest,
			   const char *vm_uuid, GAsyncReadyCallback done,
			   gpointer data, GError **error);
JsonNode *migrate_p2p_finish(GAsyncResult *res, gboolean *ours,
			     GError **error);

#define MIGRATE_MAX_DURATION_S 600

/* The convergence policy of one migration (policy.c). */
typedef struct Policy Policy;
Policy *policy_new(Api *api, const char *vm_ref, Call *call,
		   const MigrateOptions *o);
void policy_stop(Policy *p);
void policy_free(Policy *p);
void migrate_src_abort_vm(Api *api, const char *vm_ref, const char *why);

/* The channel probe (probe.c): BPS is 0 when it failed. */
typedef void (*ProbeFn)(double bps, gpointer data);
void migrate_probe(const char *url, const char *token, gint64 bytes,
		   ProbeFn done, gpointer data);
void migrate_probe_accept(Chan *c, JsonObject *msg, gboolean token_ok);

/* The encrypted tunnel of tunnelled, secure migrations (relay.c), on the
 * source: encrypts what QEMU writes to LOCAL_FD (its socketpair end) onto
 * NET_FD (the connection to the destination, whose QEMU decrypts with its
 * own TLS) with TLS-PSK in a thread.  Takes both descriptors.  DONE runs
 * on the main loop when the relay ends; ERROR is NULL when the stream
 * ended cleanly. */
typedef void (*RelayDoneFn)(const char *error, guint64 bytes, gpointer data);
gboolean relay_start(int local_fd, int net_fd, const char *psk_hex,
		     RelayDoneFn done, gpointer data, GError **error);
/* A socketpair for QEMU and the relay; FALSE with ERROR on failure. */
gboolean relay_socketpair(int sv[2], GError **error);
/* The TLS of every encrypted stream, QEMU's and the relay's alike: 1.3,
 * AES-128-GCM only.  GnuTLS's ChaCha20 runs at a tenth of AES-GCM's
 * speed here, and a TLS 1.3 pre-shared key is bound to the suite's hash:
 * were one side to pick a SHA-384 suite, the key would not fit and QEMU
 * would answer "Insufficient credentials". */
#define MIGRATE_TLS_PRIORITY \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:-CHACHA20-POLY1305:-AES-256-GCM:" \
	"-AES-256-CCM:-AES-128-CCM"
/* Does the source send this migration's stream through the relay? */
#define MIGRATE_USES_RELAY(o) ((o)->secure && !(o)->direct)

/*
 * migrate-dst: the destination side of a live migration.
 *
 * host.migrate_receive mints a token: random (CSPRNG), single use, valid
 * for MIGRATE_TOKEN_TTL_S, optionally bound to one VM, with a fresh
 * TLS pre-shared key for QEMU's stream.  The source presents the token on
 * the migration channel (channel.h) with the VM's description; the
 * destination qualifies it (qualify.c), creates the record, starts QEMU
 * paused with -incoming defer and answers READY.  The stream arrives on a
 * second connection whose socket is handed to QEMU (tunnelled) or on
 * QEMU's own port (direct).
 *
 * The destination's state machine, one transition function (dst_set):
 *
 *   QUALIFY --> STARTING --> RECEIVING --> RESUMING --> RUNNING
 *      |            |             |
 *      +------------+-------------+--> ABORTED
 *
 * The rule that keeps a VM from running twice: once QEMU has the whole
 * stream (MIGRATION completed) the destination resumes, whatever happens
 * to the control connection; before that, losing the source (ABORT, the
 * connection closing, QEMU failing) aborts: QEMU killed, record removed.
 * Each phase is journaled before it acts, so a restarted ternd finishes or
 * rolls back by the same rule (migrate_recover).
 */
#include "migrate/migrate-int.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <glib/gstdio.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

#include "common/tlsserver.h"
#include "common/valid.h"
#include "common/xerr.h"
#include "migrate/testhook.h"
#include "migrate/qualify-int.h"
#include "qemu/driver.h"

#define MIGRATE_TOKEN_TTL_S 60
/* How long a decided migration's journal row (its tombstone) answers a
 * source's TERN-QUERY; see "Tombstones" below. */
#define DST_TOMBSTONE_TTL_S (24 * 3600)

typedef struct {
	char *token;
	char *vm;           /* bound VM: a uuid or the source's ref; NULL */
	char *psk;          /* hex key for QEMU's TLS */
	gint64 expires_us;
	gboolean probed;    /* the one channel probe it allows was made */
} Token;

/* What a presented token is for: a migration (used up), a test
 * (assert_can_migrate or migrate_check's qualification: left as is) or a
 * channel probe (migrate_check: allowed once, and the token stays good
 * for the migration that follows). */
typedef enum { TOKEN_USE, TOKEN_TEST, TOKEN_PROBE } TokenUse;

static GHashTable *dst_tokens;   /* token -> Token */
static GHashTable *dst_active;   /* data_key -> Dst */
static GHashTable *dst_by_id;    /* migration_id -> Dst */

static const char *const dst_phase_names[] = {
	[DST_QUALIFY] = "qualify", [DST_STARTING] = "starting",
	[DST_RECEIVING] = "receiving", [DST_RESUMING] = "resuming",
	[DST_RUNNING] = "running", [DST_ABORTED] = "aborted",
};

static void
token_free(Token *t)
{
	sodium_memzero(t->psk, strlen(t->psk));
	g_free(t->token);
	g_free(t->vm);
	g_free(t->psk);
	g_free(t);
}

static void
dst_tables(void)
{
	if (dst_tokens != NULL)
		return;
	dst_tokens = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					   (GDestroyNotify)token_free);
	dst_active = g_hash_table_new(g_str_hash, g_str_equal);
	dst_by_id = g_hash_table_new(g_str_hash, g_str_equal);
}

char *
migrate_random_hex(gsize bytes)
{
	g_autofree guint8 *b = g_malloc(bytes);
	char *hex = g_malloc(bytes * 2 + 1);

	randombytes_buf(b, bytes);
	sodium_bin2hex(hex, bytes * 2 + 1, b, bytes);
	return hex;
}

static void
dst_expire_tokens(void)
{
	GHashTableIter it;
	Token *t;
	gint64 now = g_get_real_time();

	g_hash_table_iter_init(&it, dst_tokens);
	while (g_hash_table_iter_next(&it, NULL, (gpointer *)&t))
		if (t->expires_us < now)
			g_hash_table_iter_remove(&it);
}

/* host.migrate_receive(session, host, network, options) -> map */
void
migrate_dst_receive(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	StoreObj *host = call_arg_obj(call, 1, "host", &e);
	JsonObject *opts = host && call_arg_string(call, 2, &e)
				   ? call_arg_map(call, 3, &e)
				   : NULL;

	if (opts == NULL)
		return call_fail(call, e);
	if (strcmp(host->ref, api->host_ref) != 0)
		return call_fail(call, xerr_new("HANDLE_INVALID", "host",
						host->ref, NULL));
	dst_tables();
	dst_expire_tokens();

	Token *t = g_new0(Token, 1);
	t->token = migrate_random_hex(32);
	t->psk = migrate_random_hex(32);
	t->expires_us = g_get_real_time() +
			(gint64)MIGRATE_TOKEN_TTL_S * G_USEC_PER_SEC;
	JsonNode *bn = json_object_get_member(opts, "vm");
	const char *bound = bn && JSON_NODE_HOLDS_VALUE(bn) &&
		json_node_get_value_type(bn) == G_TYPE_STRING
		? json_node_get_string(bn) : NULL;
	if (bn != NULL && (bound == NULL ||
			   (*bound && !valid_uuid(bound) && !valid_ref(bound)))) {
		token_free(t);
		return call_fail(call, xerr_new("INVALID_VALUE", "vm",
			bound ? bound : "(not a string)",
			"options.vm must be a VM uuid or ref (OpaqueRef:...)",
			NULL));
	}
	/* Bound as given: a uuid, or the source host's ref of the VM (the
	 * source sends both with the migration). */
	if (bound != NULL && *bound)
		t->vm = g_strdup(bound);
	g_hash_table_insert(dst_tokens, t->token, t);

	g_autoptr(GDateTime) exp = g_date_time_new_from_unix_utc(
		t->expires_us / G_USEC_PER_SEC);
	g_autofree char *expires = g_date_time_format(exp, "%Y%m%dT%H:%M:%SZ");
	JsonObject *m = json_object_new();
	json_object_set_string_member(m, "token", t->token);
	json_object_set_string_member(m, "url", api->cfg.migrate_url);
	json_object_set_string_member(m, "host", api->host_ref);
	json_object_set_string_member(m, "expires", expires);
	json_object_set_string_member(m, "fingerprint",
		api->cfg.tls_fingerprint ? api->cfg.tls_fingerprint : "");
	json_object_set_string_member(m, "psk", t->psk);
	json_object_set_string_member(m, "protocol", "tern-migrate-1");
	if (t->vm)
		json_object_set_string_member(m, "vm", t->vm);
	g_info("migrate: issued a token%s%s, valid %d s",
	       t->vm ? " bound to VM " : "", t->vm ? t->vm : "",
	       MIGRATE_TOKEN_TTL_S);
	call_return(call, json_node_init_object(json_node_alloc(), m));
	json_object_unref(m);
}

/* Checks a token for USE (see TokenUse); a migration uses it up.  The VM
 * it is presented for is VM_UUID and, on the source, VM_REF (either may be
 * NULL); a bound token matches either.  Returns its PSK. */
static char *
dst_take_token(const char *token, const char *vm_uuid, const char *vm_ref,
	       TokenUse use, GError **error)
{
	Token *t;

	dst_tables();
	dst_expire_tokens();
	t = token ? g_hash_table_lookup(dst_tokens, token) : NULL;
	if (t == NULL || (use == TOKEN_PROBE && t->probed)) {
		/* Wrong, expired and replayed tokens look the same from here,
		 * and say nothing more to whoever presented them. */
		xerr_set(error, "SESSION_AUTHENTICATION_FAILED", "migration",
			 "the migration token is not valid (wrong, expired or "
			 "already used)", NULL);
		return NULL;
	}
	if (t->vm != NULL && (vm_uuid != NULL || vm_ref != NULL) &&
	    g_strcmp0(t->vm, vm_uuid) != 0 && g_strcmp0(t->vm, vm_ref) != 0) {
		xerr_set(error, "SESSION_AUTHENTICATION_FAILED", "migration",
			 "the migration token was issued for another VM",
			 NULL);
		return NULL;
	}
	char *psk = g_strdup(t->psk);
	if (use == TOKEN_PROBE)
		t->probed = TRUE;
	else if (use == TOKEN_USE)
		g_hash_table_remove(dst_tokens, token);
	return psk;
}

/* Kills a QEMU the driver does not know, found by its pid file. */
static void
dst_kill_orphan(Api *api, const char *uuid)
{
	g_autofree char *pidfile = g_build_filename(api->cfg.run_dir, "vms",
						    uuid, "qemu.pid", NULL);
	g_autofree char *text = NULL;
	g_autofree char *cmdline = NULL;
	gsize len = 0;

	if (!g_file_get_contents(pidfile, &text, NULL, NULL))
		return;
	int pid = (int)g_ascii_strtoll(text, NULL, 10);
	g_autofree char *proc = g_strdup_printf("/proc/%d/cmdline", pid);
	if (pid <= 0 || !g_file_get_contents(proc, &cmdline, &len, NULL))
		return;
	for (gsize i = 0; i + 1 < len; i++)
		if (cmdline[i] == 0)
			cmdline[i] = ' ';
	if (strstr(cmdline, uuid) == NULL)
		return; /* the pid was reused: not ours */
	g_info("migrate: recovery: killing the incoming QEMU %d of VM %s",
	       pid, uuid);
	kill(pid, SIGKILL);
}

/* Removes what an incoming VM left in RUN_DIR/vms/<uuid>/ (the driver's
 * files and migrate-qemu's, dh-params.pem included), two levels deep,
 * never following a symlink. */
static void
dst_remove_dir_at(const char *dir, int depth)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *p = g_build_filename(dir, name, NULL);
		if (depth > 0 && g_file_test(p, G_FILE_TEST_IS_DIR) &&
		    !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
			dst_remove_dir_at(p, depth - 1);
		else
			g_remove(p);
	}
	g_rmdir(dir);
}

/* Kills the incoming VM's QEMU, whether the driver knows it or not, and
 * removes its files.  UUID names a directory: checked first. */
static void
dst_forget_vm(Api *api, const char *vm_ref, const char *uuid)
{
	StoreObj gone = { .ref = (char *)vm_ref, .uuid = (char *)uuid };

	if (uuid == NULL || !g_uuid_string_is_valid(uuid))
		return;
	dst_kill_orphan(api, uuid);
	qemu_driver_forget(api, &gone);
	g_autofree char *dir = g_build_filename(api->cfg.run_dir, "vms", uuid,
						NULL);
	dst_remove_dir_at(dir, 1);
}

/* ---- The destination state machine ---------------------------------- */

static void dst_abort(Dst *d, const char *why);

static void
dst_journal(Dst *d)
{
	g_autoptr(JsonObject) data = json_object_new();
	g_autoptr(JsonNode) n = NULL;

	json_object_set_string_member(data, "vm_ref", d->vm_ref ? d->vm_ref
								: "");
	json_object_set_string_member(data, "secret", d->secret);
	json_object_set_boolean_member(data, "paused", d->paused);
	if (d->phase == DST_RUNNING || d->phase == DST_ABORTED)
		json_object_set_int_member(data, "decided_us",
					   g_get_real_time());
	n = json_node_init_object(json_node_alloc(), data);
	g_autofree char *text = json_to_string(n, FALSE);
	StoreJournal j = {
		.id = d->id, .side = "dst", .vm_uuid = d->vm_uuid,
		.phase = (char *)dst_phase_names[d->phase], .data = text,
	};
	GError *e = NULL;
	if (!store_journal_put(d->api->store, &j, &e)) {
		g_warning("migrate: journal: %s", e->message);
		g_error_free(e);
	}
}

/* The one transition function: phases only move forward. */
static void
dst_set(Dst *d, DstPhase next)
{
	g_assert(next > d->phase || next == DST_ABORTED);
	g_info("migrate: dst %s: %s -> %s", d->id, dst_phase_names[d->phase],
	       dst_phase_names[next]);
	d->phase = next;
	dst_journal(d);
}

/*
 * Ownership, as on the source (migrate-src.c): every QMP call or QEMU start
 * a Dst is waiting for holds a reference (dst_hold); its callback starts
 * with dst_back, which drops it and says whether the migration is alive.
 * dst_free marks the Dst dead and drops the machine's own reference; the
 * memory goes with the last one.
 */
static Dst *
dst_hold(Dst *d)
{
	d->refs++;
	return d;
}

static void dst_destroy(Dst *d);

static gboolean
dst_back(Dst *d)
{
	g_assert(d->refs > 0);
	if (--d->refs == 0) {
		g_assert(d->dead);
		dst_destroy(d);
		return FALSE;
	}
	return !d->dead;
}

static void
dst_free(Dst *d)
{
	if (d->dead)
		return;
	d->dead = TRUE;
	if (d->data_key)
		g_hash_table_remove(dst_active, d->data_key);
	g_hash_table_remove(dst_by_id, d->id);
	chan_free(d->ctl);
	chan_free(d->data);
	d->ctl = d->data = NULL;
	if (d->vm_ref != NULL) {
		QemuVm *qv = qemu_vm_lookup(d->api, d->vm_ref);
		if (qv != NULL)
			qemu_vm_set_hook(qv, NULL, NULL);
	}
	(void)dst_back(d);
}

static void
dst_destroy(Dst *d)
{
	if (d->psk)
		sodium_memzero(d->psk, strlen(d->psk));
	g_free(d->psk);
	g_free(d->id);
	g_free(d->secret);
	g_free(d->vm_ref);
	g_free(d->vm_uuid);
	g_free(d->data_key);
	g_free(d->direct_uri);
	migrate_options_clear(&d->opts);
	g_free(d);
}

static void
dst_send_error(Chan *c, const char *verb, const GError *error,
	       JsonArray *blockers)
{
	g_autofree char *code = NULL;
	g_auto(GStrv) params = NULL;
	g_autoptr(JsonObject) m = json_object_new();
	JsonArray *a = json_array_new();

	xerr_split(error, &code, &params);
	json_array_add_string_element(a, code);
	for (guint i = 0; params[i]; i++)
		json_array_add_string_element(a, params[i]);
	json_object_set_array_member(m, "error", a);
	if (blockers)
		json_object_set_array_member(m, "blockers",
					     json_array_ref(blockers));
	chan_send(c, verb, m);
}

/* Ends the destination's part; the record stays only if the VM runs.
 * The journal row stays as the tombstone unless the source ACKED the
 * outcome (DONE): only then can no question about it come any more. */
static void
dst_finish(Dst *d, gboolean acked)
{
	if (acked && d->phase == DST_RUNNING)
		store_journal_delete(d->api->store, d->id, NULL);
	dst_free(d);
}

static void
dst_abort(Dst *d, const char *why)
{
	Api *api = d->api;

	if (d->phase >= DST_RESUMING)
		return; /* past the point of no return: the VM stays here */
	g_info("migrate: dst %s: aborting: %s", d->id, why);
	dst_set(d, DST_ABORTED);
	if (d->vm_ref != NULL) {
		StoreObj *vm = store_get_typed(api->store, "VM", d->vm_ref);
		qemu_vm_kill(api, d->vm_ref);
		dst_forget_vm(api, d->vm_ref, d->vm_uuid);
		if (vm != NULL) {
			store_remove(api->store, vm, NULL);
			event_notify(api);
		}
	}
	if (d->ctl != NULL) {
		g_autoptr(GError) e = xerr_new("VM_MIGRATE_FAILED", "", "",
					       api->host_ref, why, NULL);
		dst_send_error(d->ctl, "FAILED", e, NULL);
	}
	/* Keep the journal row a while: a source that lost us asks. */
	dst_free(d);
}

static void dst_held(const char *id);

static void
dst_resumed(Dst *d, gint64 resume_us)
{
	Api *api = d->api;
	StoreObj *vm = store_get_typed(api->store, "VM", d->vm_ref);
	QemuVm *qv = qemu_vm_lookup(api, d->vm_ref);

	if (qv)
		qemu_vm_set_hook(qv, NULL, NULL);
	migrate_qemu_forget_key(api, d->vm_ref);
	if (vm != NULL) {
		g_autofree char *now = api_now_datetime();
		JsonObject *rec = store_obj_dup(vm);
		json_object_set_string_member(rec, "power_state",
					      d->paused ? "Paused" : "Running");
		json_object_set_object_member(rec, "current_operations",
					      json_object_new());
		json_object_set_int_member(rec, "domid",
					   qv ? qemu_vm_pid(qv) : -1);
		store_replace(api->store, vm, rec, NULL);
		vm_update_operations(api, vm, NULL);
		event_notify(api);
	}
	dst_set(d, DST_RUNNING);
	d->resume_us = resume_us;
	testhook_phase("dst", "running", d->id, dst_held);
}

/* Tells the source the VM runs here (after a test hold, testhook.h). */
static void
dst_held(const char *id)
{
	Dst *d = dst_by_id ? g_hash_table_lookup(dst_by_id, id) : NULL;

	if (d == NULL || d->phase != DST_RUNNING)
		return;
	if (d->ctl != NULL) {
		g_autoptr(JsonObject) m = json_object_new();
		json_object_set_int_member(m, "resume_us", d->resume_us);
		json_object_set_string_member(m, "vm_ref", d->vm_ref);
		chan_send(d->ctl, "RUNNING", m);
	}
	/* The source says DONE, or goes away; either ends our part. */
	if (d->ctl == NULL)
		dst_finish(d, FALSE);
}

static void
dst_cont_done(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	Dst *d = data;

	if (!dst_back(d))
		return;
	if (error != NULL)
		g_warning("migrate: dst %s: cont: %s", d->id, error->message);
	/* RESUME (the event) finishes the job; a failed cont leaves the VM
	 * paused here, never back on the source. */
	if (error != NULL)
		dst_resumed(d, 0);
}

static void
dst_resume(Dst *d)
{
	StoreObj *vm = store_get_typed(d->api->store, "VM", d->vm_ref);

	/* The record says what QEMU is, paused with the whole stream, before
	 * RESUMING is journaled: a ternd restarted from here re-attaches to
	 * a non-Halted record's QEMU and recovery can finish the resume. */
	if (vm != NULL)
		vm_set(d->api, vm, NULL, "power_state",
		       json_node_init_string(json_node_alloc(), "Paused"),
		       NULL);
	dst_set(d, DST_RESUMING);
	if (d->paused) {
		dst_resumed(d, 0);
		return;
	}
	qemu_vm_call(d->api, d->vm_ref, "cont", NULL, dst_cont_done,
		     dst_hold(d));
}

static void
dst_on_event(Qmp *qmp, const char *event, JsonObject *data, gint64 ts,
	     gpointer user_data)
{
	Dst *d = user_data;

	if (strcmp(event, "RESUME") == 0 && d->phase == DST_RESUMING) {
		dst_resumed(d, ts);
		return;
	}
	if (strcmp(event, "MIGRATION") != 0 || data == NULL)
		return;
	const char *status = json_object_get_string_member_with_default(
		data, "status", "");
	g_debug("migrate: dst %s: QEMU status %s", d->id, status);
	if (strcmp(status, "completed") == 0 && d->phase == DST_RECEIVING)
		dst_resume(d);
	else if (strcmp(status, "failed") == 0)
		dst_abort(d, "QEMU could not load the migration stream");
}

/* Watches for the QEMU process of an incoming VM dying. */
static void
dst_vm_gone(Api *api, const char *vm_ref, const GError *error, gpointer data)
{
	const char *id = data;
	Dst *d = dst_by_id ? g_hash_table_lookup(dst_by_id, id) : NULL;

	if (d != NULL && d->phase < DST_RESUMING)
		dst_abort(d, "the destination QEMU exited");
}

static void
dst_ready(Dst *d)
{
	g_autoptr(JsonObject) m = json_object_new();

	json_object_set_string_member(m, "vm_ref", d->vm_ref);
	json_object_set_string_member(m, "data_key", d->data_key);
	if (d->direct_uri)
		json_object_set_string_member(m, "direct_uri", d->direct_uri);
	chan_send(d->ctl, "READY", m);
}

static void
dst_incoming_done(Qmp *qmp, JsonNode *ret, const GError *error,
		  gpointer data)
{
	Dst *d = data;

	if (!dst_back(d))
		return;
	if (error != NULL) {
		g_autofree char *why = g_strdup_printf(
			"migrate-incoming: %s", error->message);
		return dst_abort(d, why);
	}
	if (d->data != NULL) {
		/* Tunnelled: QEMU owns the socket now; tell the source. */
		chan_send(d->data, "OK", NULL);
	} else {
		dst_ready(d);
	}
}

static void
dst_getfd_done(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	Dst *d = data;
	g_autoptr(JsonObject) a = json_object_new();

	if (!dst_back(d))
		return;
	if (error != NULL)
		return dst_abort(d, error->message);
	json_object_set_string_member(a, "uri", "fd:tern-migrate");
	qemu_vm_call(d->api, d->vm_ref, "migrate-incoming", a,
		     dst_incoming_done, dst_hold(d));
}

/* The source opened the data connection: hand its socket to QEMU, whose
 * own TLS decrypts a secure tunnel (the source's relay encrypts it). */
static void
dst_take_data(Dst *d, Chan *data)
{
	QemuVm *qv = qemu_vm_lookup(d->api, d->vm_ref);
	g_autoptr(JsonObject) a = json_object_new();
	int fd;

	d->data = data;
	chan_pause(data);
	if (qv == NULL || (fd = chan_dup_fd(data)) < 0)
		return dst_abort(d, "no QEMU for the incoming stream");
	dst_set(d, DST_RECEIVING);
	json_object_set_string_member(a, "fdname", "tern-migrate");
	qmp_call_with_fd(qemu_vm_qmp(qv), "getfd", a, fd, dst_getfd_done,
			 dst_hold(d));
	close(fd);
}

static void
dst_prepared(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	Dst *d = data;

	if (!dst_back(d))
		return;
	if (error != NULL) {
		g_autofree char *why = g_strdup_printf("preparing QEMU: %s",
						       error->message);
		return dst_abort(d, why);
	}
	if (d->direct_uri == NULL) {
		/* Tunnelled: wait for the data connection. */
		dst_ready(d);
		return;
	}
	dst_set(d, DST_RECEIVING);
	g_autoptr(JsonObject) a = json_object_new();
	json_object_set_string_member(a, "uri", d->direct_uri);
	qemu_vm_call(d->api, d->vm_ref, "migrate-incoming", a,
		     dst_incoming_done, dst_hold(d));
}

/* TRUE when a live incoming migration is bringing VM UUID here. */
static gboolean
dst_uuid_in_use(const char *uuid)
{
	GHashTableIter it;
	gpointer value;

	g_hash_table_iter_init(&it, dst_by_id);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		Dst *other = value;

		if (!other->dead && g_strcmp0(other->vm_uuid, uuid) == 0)
			return TRUE;
	}
	return FALSE;
}

static void
dst_started(Api *api, const char *vm_ref, const GError *error, gpointer data)
{
	Dst *d = data;
	g_autofree char *uuid = g_strdup(d->vm_uuid);

	if (!dst_back(d)) {
		/* Aborted while QEMU started: it must not outlive the
		 * record that dst_abort already removed.  A newer migration
		 * of the same VM may be arriving in the same directory by
		 * now: then only this QEMU goes, by its own pid. */
		g_info("migrate: dst: QEMU of VM %s started after the abort; "
		       "killing it", uuid);
		if (dst_uuid_in_use(uuid)) {
			StoreObj gone = { .ref = (char *)vm_ref,
					  .uuid = uuid };
			qemu_vm_kill(api, vm_ref);
			qemu_driver_forget(api, &gone);
		} else {
			dst_forget_vm(api, vm_ref, uuid);
		}
		return;
	}
	if (error != NULL) {
		g_autofree char *why = g_strdup_printf("starting QEMU: %s",
						       error->message);
		return dst_abort(d, why);
	}
	QemuVm *qv = qemu_vm_lookup(api, vm_ref);
	StoreObj *vm = store_get_typed(api->store, "VM", vm_ref);
	if (vm != NULL)
		vm_set(api, vm, NULL, "domid", json_node_init_int(
			       json_node_alloc(), qemu_vm_pid(qv)), NULL);
	qemu_vm_set_hook(qv, dst_on_event, d);
	qemu_vm_on_exit_full(qv, dst_vm_gone, g_strdup(d->id), g_free);
	migrate_qemu_prepare(api, vm_ref, d->psk, FALSE, &d->opts,
			     dst_prepared, dst_hold(d));
}

static gboolean
dst_pick_direct_uri(Dst *d, GSocketConnection *conn, GError **error)
{
	g_autoptr(GSocketAddress) local =
		g_socket_connection_get_local_address(conn, error);
	g_autoptr(GSocket) probe = NULL;
	g_autoptr(GSocketAddress) bound = NULL;

	if (local == NULL || !G_IS_INET_SOCKET_ADDRESS(local))
		return FALSE;
	GInetAddress *ip = g_inet_socket_address_get_address(
		G_INET_SOCKET_ADDRESS(local));
	g_autofree char *ips = g_inet_address_to_string(ip);
	/* Ask the kernel for a free port on the address the source reached
	 * us at; QEMU listens there. */
	probe = g_socket_new(g_inet_address_get_family(ip),
			     G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
			     error);
	g_autoptr(GSocketAddress) any = g_inet_socket_address_new(ip, 0);
	if (probe == NULL || !g_socket_bind(probe, any, TRUE, error) ||
	    (bound = g_socket_get_local_address(probe, error)) == NULL)
		return FALSE;
	guint16 port = g_inet_socket_address_get_port(
		G_INET_SOCKET_ADDRESS(bound));
	g_socket_close(probe, NULL);
	d->direct_uri = g_strdup_printf("tcp:%s:%u", ips, port);
	return TRUE;
}

static JsonObject *
dst_vm_record(Dst *d, JsonObject *given, JsonObject *facts)
{
	JsonObject *rec = json_object_new();
	g_autoptr(JsonObject) defaults = vm_default_record();
	g_autoptr(GList) keys = json_object_get_members(defaults);

	/* Start from our defaults so that an old or odd source cannot leave
	 * fields out; copy what the source sent for each known field. */
	for (GList *l = keys; l; l = l->next) {
		JsonNode *v = json_object_get_member(given, l->data);
		json_object_set_member(rec, l->data,
			json_node_copy(v ? v : json_object_get_member(
				defaults, l->data)));
	}
	json_object_set_string_member(rec, "uuid", d->vm_uuid);
	/* The guest must see the same machine and CPU it had: pin what the
	 * source resolved ("pc" means a different machine on a newer QEMU). */
	JsonObject *platform = json_object_get_object_member(rec, "platform");
	static const char *const pins[][2] = { { "machine", "machine" },
					       { "cpu", "cpu_model" } };
	for (guint i = 0; platform && i < G_N_ELEMENTS(pins); i++) {
		const char *v = json_object_get_string_member_with_default(
			facts, pins[i][1], NULL);
		if (v != NULL && *v)
			json_object_set_string_member(platform, pins[i][0], v);
	}
	if (d->opts.dest_name)
		json_object_set_string_member(rec, "name_label",
					      d->opts.dest_name);
	json_object_set_string_member(rec, "power_state", "Halted");
	json_object_set_string_member(rec, "resident_on", "OpaqueRef:NULL");
	json_object_set_int_member(rec, "domid", -1);
	JsonObject *cur = json_object_new();
	json_object_set_string_member(cur, d->id, "migrate_receive");
	json_object_set_object_member(rec, "current_operations", cur);
	json_object_set_array_member(rec, "allowed_operations",
				     json_array_new());
	return rec;
}

static void dst_on_ctl(Chan *c, const char *verb, JsonObject *msg,
		       const GError *error, gpointer data);

/* TERN-MIGRATE/1: the source presents a token and the VM. */
static void
dst_begin(Api *api, Chan *c, JsonObject *msg, GSocketConnection *conn)
{
	GError *e = NULL;
	JsonObject *facts = json_object_get_object_member(msg, "facts");
	/* The record qualified is the record started (qualify.c checks the
	 * files of facts.record). */
	JsonObject *vm = qualify_obj(facts, "record");
	JsonObject *options = json_object_get_object_member(msg, "options");
	const char *id = json_object_get_string_member_with_default(
		msg, "migration_id", "");
	const char *secret = json_object_get_string_member_with_default(
		msg, "secret", "");
	gboolean test = json_object_get_boolean_member_with_default(msg, "test",
								    FALSE);
	gboolean live = json_object_get_boolean_member_with_default(msg, "live",
								    TRUE);
	const char *uuid = qualify_str(vm, "uuid") ? qualify_str(vm, "uuid")
						   : "";
	g_autofree char *psk = NULL;

	if (facts == NULL || vm == NULL || options == NULL || !*id ||
	    strlen(secret) < 32 || !*uuid) {
		g_autoptr(GError) bad = xerr_new("INTERNAL_ERROR",
			"migration channel: incomplete request", NULL);
		dst_send_error(c, "REFUSED", bad, NULL);
		chan_free(c);
		return;
	}
	if (!valid_uuid(uuid)) {
		/* It names the VM's run directory: never a path of its own. */
		g_autoptr(GError) bad = xerr_new("UUID_INVALID", "VM", uuid,
						 NULL);
		g_info("migrate: refused a VM with the uuid \"%s\"", uuid);
		dst_send_error(c, "REFUSED", bad, NULL);
		chan_free(c);
		return;
	}
	psk = dst_take_token(json_object_get_string_member_with_default(
				     msg, "token", NULL), uuid,
			     qualify_str(facts, "vm_ref"),
			     test ? TOKEN_TEST : TOKEN_USE, &e);
	if (psk == NULL) {
		g_info("migrate: refused a migration: %s", e->message);
		dst_send_error(c, "REFUSED", e, NULL);
		g_error_free(e);
		chan_free(c);
		return;
	}

	g_autoptr(JsonArray) blockers = qualify_check(api, facts, options);
	if (json_array_get_length(blockers) > 0 || test) {
		if (json_array_get_length(blockers) > 0) {
			g_autoptr(GError) qe = qualify_error(blockers,
				json_object_get_string_member_with_default(
					facts, "vm_ref", ""));
			dst_send_error(c, "REFUSED", qe, blockers);
		} else {
			chan_send(c, "QUALIFIED", NULL);
		}
		chan_free(c);
		return;
	}

	dst_tables();
	Dst *d = g_new0(Dst, 1);
	d->refs = 1;
	d->api = api;
	d->id = g_strdup(id);
	d->secret = g_strdup(secret);
	d->vm_uuid = g_strdup(uuid);
	d->psk = g_steal_pointer(&psk);
	d->ctl = c;
	d->phase = DST_QUALIFY;
	if (!migrate_options_parse(options, &d->opts, &e)) {
		dst_send_error(c, "REFUSED", e, NULL);
		g_error_free(e);
		d->ctl = NULL;
		chan_free(c);
		dst_free(d);
		return;
	}
	d->paused = d->opts.paused ||
		    g_strcmp0(json_object_get_string_member_with_default(
				      vm, "power_state", ""), "Paused") == 0;
	g_hash_table_insert(dst_by_id, d->id, d);
	migrate_chan_set_handler(c, dst_on_ctl, d);
	/* The source pings during the stream; its silence for
	 * CHAN_DEADLINE_S is its going away. */
	chan_set_keepalive(c);

	StoreObj *o = vm_add(api, dst_vm_record(d, vm, facts), &e);
	if (o == NULL) {
		dst_send_error(c, "REFUSED", e, NULL);
		g_error_free(e);
		return dst_abort(d, "could not create the VM record");
	}
	d->vm_ref = g_strdup(o->ref);
	event_notify(api);

	if (!live || g_strcmp0(json_object_get_string_member_with_default(
				       vm, "power_state", ""), "Halted") == 0) {
		/* Offline: the definition is all that moves. */
		dst_set(d, DST_RESUMING);
		vm_op_end(api, d->vm_ref);
		dst_set(d, DST_RUNNING);
		g_autoptr(JsonObject) m = json_object_new();
		json_object_set_string_member(m, "vm_ref", d->vm_ref);
		json_object_set_boolean_member(m, "offline", TRUE);
		chan_send(c, "READY", m);
		d->ctl = NULL;
		chan_free(c);
		dst_finish(d, FALSE);
		return;
	}
	if (d->opts.direct && !dst_pick_direct_uri(d, conn, &e)) {
		g_autofree char *why = g_strdup_printf("no port for QEMU: %s",
						       e->message);
		g_error_free(e);
		return dst_abort(d, why);
	}
	d->data_key = migrate_random_hex(32);
	g_hash_table_insert(dst_active, d->data_key, d);
	dst_set(d, DST_STARTING);
	vm_set(api, o, NULL, "resident_on",
	       json_node_init_string(json_node_alloc(), api->host_ref), NULL);
	g_auto(VmStorage) st = { 0 };
	if (!vm_storage_resolve(api, o, &st, &e)) {
		g_autofree char *why = g_strdup_printf("the VM's files: %s",
						       e->message);
		g_error_free(e);
		return dst_abort(d, why);
	}
	QemuStartOpts so = { .paused = TRUE, .incoming = TRUE,
			     .kernel = st.kernel, .initrd = st.initrd,
			     .disks = st.disks };
	qemu_vm_start(api, o, &so, dst_started, dst_hold(d));
}

static void
dst_on_ctl(Chan *c, const char *verb, JsonObject *msg, const GError *error,
	   gpointer data)
{
	Dst *d = data;

	if (verb == NULL) {
		d->ctl = NULL;
		chan_free(c);
		if (d->phase == DST_RUNNING)
			dst_finish(d, FALSE);
		else
			dst_abort(d, "the source went away");
		return;
	}
	if (strcmp(verb, "ABORT") == 0) {
		dst_abort(d, json_object_get_string_member_with_default(
				     msg, "reason", "the source aborted"));
	} else if (strcmp(verb, "DONE") == 0 && d->phase == DST_RUNNING) {
		d->ctl = NULL;
		chan_free(c);
		dst_finish(d, TRUE);
	}
}

/* TERN-QUERY/1: a source that lost us asks how the migration ended. */
static void
dst_query(Api *api, Chan *c, JsonObject *msg)
{
	const char *id = json_object_get_string_member_with_default(
		msg, "migration_id", "");
	const char *secret = json_object_get_string_member_with_default(
		msg, "secret", "");
	Dst *d = dst_by_id ? g_hash_table_lookup(dst_by_id, id) : NULL;
	/* Owned: a journal row's phase must outlive the rows' list. */
	g_autofree char *state = g_strdup("unknown");
	g_autoptr(JsonObject) m = json_object_new();

	if (d != NULL && sodium_memcmp(d->secret, secret,
				       MIN(strlen(secret) + 1,
					   strlen(d->secret) + 1)) == 0) {
		g_free(state);
		state = g_strdup(d->phase == DST_RUNNING ? "running"
			: d->phase == DST_ABORTED ? "aborted" : "receiving");
	} else {
		g_autoptr(GPtrArray) rows = store_journal_list(api->store);
		for (guint i = 0; i < rows->len; i++) {
			StoreJournal *j = rows->pdata[i];
			if (strcmp(j->id, id) != 0 || strcmp(j->side, "dst"))
				continue;
			g_autoptr(JsonNode) n = json_from_string(j->data, NULL);
			const char *s2 = n && JSON_NODE_HOLDS_OBJECT(n)
				? json_object_get_string_member_with_default(
					json_node_get_object(n), "secret", "")
				: "";
			if (strlen(s2) == strlen(secret) &&
			    sodium_memcmp(s2, secret, strlen(s2)) == 0) {
				g_free(state);
				state = g_strdup(j->phase);
			}
		}
		/* No row and no migration: "unknown", never "aborted".  A
		 * migration that passed the source's switchover was
		 * journaled here before READY, and its row outlives the
		 * decision (the tombstone), so no row means the question is
		 * wrong or too late, and the source must not resume. */
	}
	g_info("migrate: dst: a source asked about migration %s: %s", id,
	       state);
	json_object_set_string_member(m, "state", state);
	chan_send(c, "STATE", m);
}

/* ---- Accepting connections from the API port ------------------------- */

typedef struct {
	Api *api;
	GSocketConnection *conn;
	gboolean tls;
} Accept;

static void accept_on_line(Chan *c, const char *verb, JsonObject *msg,
			   const GError *error, gpointer data);

static void
accept_free(Accept *a)
{
	g_object_unref(a->conn);
	g_free(a);
}

static void
accept_start_tls(Accept *a, Chan *c)
{
	GError *e = NULL;
	GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(a->conn));
	g_autoptr(GIOStream) base = chan_steal_stream(c);

	if (a->api->cert == NULL ||
	    !g_output_stream_write_all(out, "TLS {}\n", 7, NULL, NULL, &e)) {
		g_clear_error(&e);
		accept_free(a);
		return;
	}
	g_autoptr(GIOStream) tls = tlsserver_new(base, a->api->cert, &e);
	if (tls == NULL) {
		g_warning("migrate: TLS: %s", e->message);
		g_error_free(e);
		accept_free(a);
		return;
	}
	a->tls = TRUE;
	chan_set_deadline(chan_new(tls, accept_on_line, a), CHAN_DEADLINE_S);
}

static void
accept_on_line(Chan *c, const char *verb, JsonObject *msg,
	       const GError *error, gpointer data)
{
	Accept *a = data;
	Api *api = a->api;

	if (verb == NULL) {
		chan_free(c);
		accept_free(a);
		return;
	}
	if (strcmp(verb, "TERN-TLS/1") == 0 && !a->tls)
		return accept_start_tls(a, c);
	if (strcmp(verb, "TERN-MIGRATE/1") == 0 && (a->tls || !api->cfg.tls)) {
		dst_begin(api, c, msg, a->conn);
	} else if (strcmp(verb, "TERN-QUERY/1") == 0 &&
		   (a->tls || !api->cfg.tls)) {
		dst_query(api, c, msg);
		migrate_chan_set_handler(c, NULL, NULL);
	} else if (strcmp(verb, "TERN-PROBE/1") == 0) {
		g_autofree char *psk = dst_take_token(
			json_object_get_string_member_with_default(msg,
				"token", NULL), NULL, NULL, TOKEN_PROBE, NULL);
		migrate_chan_set_handler(c, NULL, NULL);
		migrate_probe_accept(c, msg, psk != NULL);
	} else if (strcmp(verb, "TERN-DATA/1") == 0) {
		const char *key = json_object_get_string_member_with_default(
			msg, "data_key", "");
		Dst *d = dst_active ? g_hash_table_lookup(dst_active, key)
				    : NULL;
		if (d == NULL || d->data != NULL ||
		    d->phase != DST_STARTING || d->direct_uri != NULL) {
			chan_free(c);
		} else {
			migrate_chan_set_handler(c, NULL, NULL);
			dst_take_data(d, c);
		}
	} else {
		g_info("migrate: refused a channel opening with %s", verb);
		chan_free(c);
	}
	accept_free(a);
}

void
migrate_dst_accept(Api *api, GSocketConnection *conn)
{
	Accept *a = g_new0(Accept, 1);

	a->api = api;
	a->conn = g_object_ref(conn);
	g_socket_set_option(g_socket_connection_get_socket(conn), IPPROTO_TCP,
			    TCP_NODELAY, 1, NULL);
	/* A stranger may connect: the first line (and the TLS handshake)
	 * must come within the deadline. */
	chan_set_deadline(chan_new(G_IO_STREAM(conn), accept_on_line, a),
			  CHAN_DEADLINE_S);
}

/* ---- Recovery ------------------------------------------------------- */

/*
 * Tombstones.  A decided migration's row (phase "running" or "aborted",
 * with decided_us) is kept for DST_TOMBSTONE_TTL_S, or until the source
 * acknowledges RUNNING with DONE, so that a source that lost the channel
 * after its switchover learns the outcome (TERN-QUERY).  A question about
 * a migration with no row is answered "unknown", never "aborted": the
 * source resumes its copy only on "aborted".
 *
 * Recovery after a restart, by the phase the row was left in:
 *   qualify, starting, receiving  the record is Halted, so the driver did
 *       not re-attach its QEMU: kill it by its pid file (checked against
 *       /proc/<pid>/cmdline), remove the record and its files, and
 *       journal "aborted".  RUNNING was never sent from these phases, so
 *       the source has not let its copy go.
 *   resuming  the decision was taken; the record was made Paused first,
 *       so the driver re-attached: cont, and journal "running".  With no
 *       QEMU left the VM is lost here: the row says "lost", and the
 *       source, which resumes only on "aborted", keeps its paused copy.
 *   running, aborted  tombstones: expired ones are deleted.
 */

static void
dst_recover_put(Api *api, StoreJournal *j, const char *phase,
		const char *vm_ref, const char *secret)
{
	g_autoptr(JsonObject) data = json_object_new();

	json_object_set_string_member(data, "vm_ref", vm_ref);
	json_object_set_string_member(data, "secret", secret);
	json_object_set_int_member(data, "decided_us", g_get_real_time());
	g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), data);
	g_autofree char *text = json_to_string(n, FALSE);
	StoreJournal out = { .id = j->id, .side = j->side,
			     .vm_uuid = j->vm_uuid, .phase = (char *)phase,
			     .data = text };
	store_journal_put(api->store, &out, NULL);
}

/* Removes the incoming VM: QEMU, record and files. */
static void
dst_recover_remove(Api *api, StoreJournal *j, const char *vm_ref)
{
	StoreObj *vm = store_get_typed(api->store, "VM", vm_ref);

	qemu_vm_kill(api, vm_ref);
	dst_forget_vm(api, vm_ref, j->vm_uuid);
	if (vm != NULL)
		store_remove(api->store, vm, NULL);
	event_notify(api);
}

void
migrate_dst_recover(Api *api, StoreJournal *j)
{
	g_autoptr(JsonNode) n = json_from_string(j->data, NULL);
	JsonObject *data = n && JSON_NODE_HOLDS_OBJECT(n)
		? json_node_get_object(n) : NULL;
	const char *vm_ref = data
		? json_object_get_string_member_with_default(data, "vm_ref", "")
		: "";
	const char *secret = data
		? json_object_get_string_member_with_default(data, "secret", "")
		: "";
	gboolean paused = data && json_object_get_boolean_member_with_default(
		data, "paused", FALSE);

	if (strcmp(j->phase, "running") == 0 ||
	    strcmp(j->phase, "aborted") == 0 || strcmp(j->phase, "lost") == 0) {
		gint64 at = data ? json_object_get_int_member_with_default(
			data, "decided_us", 0) : 0;
		if (at == 0)
			dst_recover_put(api, j, j->phase, vm_ref, secret);
		else if (g_get_real_time() - at >
			 (gint64)DST_TOMBSTONE_TTL_S * G_USEC_PER_SEC)
			store_journal_delete(api->store, j->id, NULL);
		return;
	}
	if (strcmp(j->phase, "resuming") == 0) {
		StoreObj *vm = store_get_typed(api->store, "VM", vm_ref);
		if (vm != NULL && qemu_vm_lookup(api, vm_ref) != NULL) {
			/* Decided before the crash: finish resuming. */
			g_info("migrate: recovery: resuming incoming VM %s",
			       j->vm_uuid);
			if (!paused)
				qemu_vm_call(api, vm_ref, "cont", NULL,
					     migrate_ignore_reply, NULL);
			vm_op_end(api, vm_ref);
			dst_recover_put(api, j, "running", vm_ref, secret);
			event_notify(api);
			return;
		}
		g_warning("migrate: recovery: incoming VM %s has no QEMU left "
			  "after its switchover; it is lost here", j->vm_uuid);
		dst_recover_remove(api, j, vm_ref);
		dst_recover_put(api, j, "lost", vm_ref, secret);
		return;
	}
	g_info("migrate: recovery: incoming VM %s had not arrived whole; "
	       "rolling back", j->vm_uuid);
	dst_recover_remove(api, j, vm_ref);
	dst_recover_put(api, j, "aborted", vm_ref, secret);
}

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
#include <sodium.h>
#include <string.h>
#include <unistd.h>

#include "common/xerr.h"
#include "qemu/driver.h"

#define MIGRATE_TOKEN_TTL_S 60

typedef struct {
	char *token;
	char *vm;           /* bound VM uuid, or NULL */
	char *psk;          /* hex key for QEMU's TLS */
	gint64 expires_us;
} Token;

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
	const char *bound = json_object_get_string_member_with_default(opts,
								       "vm",
								       NULL);
	if (bound != NULL && *bound) {
		/* A ref is meaningless here; bind by uuid, which moves. */
		t->vm = g_strdup(g_str_has_prefix(bound, "OpaqueRef:")
					 ? bound + strlen("OpaqueRef:")
					 : bound);
	}
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

/* Checks and, unless TEST, consumes a token.  Returns its PSK. */
static char *
dst_take_token(const char *token, const char *vm_uuid, gboolean test,
	       GError **error)
{
	Token *t;

	dst_tables();
	dst_expire_tokens();
	t = token ? g_hash_table_lookup(dst_tokens, token) : NULL;
	if (t == NULL) {
		/* Wrong, expired and replayed tokens look the same from here,
		 * and say nothing more to whoever presented them. */
		xerr_set(error, "SESSION_AUTHENTICATION_FAILED", "migration",
			 "the migration token is not valid (wrong, expired or "
			 "already used)", NULL);
		return NULL;
	}
	if (t->vm != NULL && vm_uuid != NULL && g_strcmp0(t->vm, vm_uuid)) {
		xerr_set(error, "SESSION_AUTHENTICATION_FAILED", "migration",
			 "the migration token was issued for another VM",
			 NULL);
		return NULL;
	}
	char *psk = g_strdup(t->psk);
	if (!test)
		g_hash_table_remove(dst_tokens, token);
	return psk;
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

static void
dst_free(Dst *d)
{
	if (d->data_key)
		g_hash_table_remove(dst_active, d->data_key);
	g_hash_table_remove(dst_by_id, d->id);
	chan_free(d->ctl);
	chan_free(d->data);
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

/* Ends the destination's part; the record stays only if the VM runs. */
static void
dst_finish(Dst *d)
{
	if (d->phase == DST_ABORTED || d->phase == DST_RUNNING)
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
		if (vm != NULL) {
			qemu_driver_forget(api, vm);
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
	if (d->ctl != NULL) {
		g_autoptr(JsonObject) m = json_object_new();
		json_object_set_int_member(m, "resume_us", resume_us);
		json_object_set_string_member(m, "vm_ref", d->vm_ref);
		chan_send(d->ctl, "RUNNING", m);
	}
	/* The source says DONE, or goes away; either ends our part. */
	if (d->ctl == NULL)
		dst_finish(d);
}

static void
dst_cont_done(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	Dst *d = data;

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
	dst_set(d, DST_RESUMING);
	if (d->paused) {
		dst_resumed(d, 0);
		return;
	}
	qemu_vm_call(d->api, d->vm_ref, "cont", NULL, dst_cont_done, d);
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

	if (error != NULL)
		return dst_abort(d, error->message);
	json_object_set_string_member(a, "uri", "fd:tern-migrate");
	qemu_vm_call(d->api, d->vm_ref, "migrate-incoming", a,
		     dst_incoming_done, d);
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
	qmp_call_with_fd(qemu_vm_qmp(qv), "getfd", a, fd, dst_getfd_done, d);
	close(fd);
}

static void
dst_prepared(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	Dst *d = data;

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
		     dst_incoming_done, d);
}

static void
dst_started(Api *api, const char *vm_ref, const GError *error, gpointer data)
{
	Dst *d = data;

	if (error != NULL) {
		g_autofree char *why = g_strdup_printf("starting QEMU: %s",
						       error->message);
		g_autofree char *code = NULL;
		g_auto(GStrv) params = NULL;
		xerr_split(error, &code, &params);
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
			     dst_prepared, d);
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
	JsonObject *vm = json_object_get_object_member(msg, "vm");
	JsonObject *options = json_object_get_object_member(msg, "options");
	const char *id = json_object_get_string_member_with_default(
		msg, "migration_id", "");
	const char *secret = json_object_get_string_member_with_default(
		msg, "secret", "");
	gboolean test = json_object_get_boolean_member_with_default(msg, "test",
								    FALSE);
	gboolean live = json_object_get_boolean_member_with_default(msg, "live",
								    TRUE);
	const char *uuid = vm ? json_object_get_string_member_with_default(
					vm, "uuid", "") : "";
	g_autofree char *psk = NULL;

	if (facts == NULL || vm == NULL || options == NULL || !*id ||
	    strlen(secret) < 32 || !*uuid) {
		g_autoptr(GError) bad = xerr_new("INTERNAL_ERROR",
			"migration channel: incomplete request", NULL);
		dst_send_error(c, "REFUSED", bad, NULL);
		chan_free(c);
		return;
	}
	psk = dst_take_token(json_object_get_string_member_with_default(
				     msg, "token", NULL), uuid, test, &e);
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
		dst_finish(d);
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
	QemuStartOpts so = { .paused = TRUE, .incoming = TRUE };
	qemu_vm_start(api, o, &so, dst_started, d);
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
			dst_finish(d);
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
		dst_finish(d);
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
	const char *state = "unknown";
	g_autoptr(JsonObject) m = json_object_new();

	if (d != NULL && sodium_memcmp(d->secret, secret,
				       MIN(strlen(secret) + 1,
					   strlen(d->secret) + 1)) == 0) {
		state = d->phase == DST_RUNNING ? "running"
			: d->phase == DST_ABORTED ? "aborted" : "receiving";
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
			    sodium_memcmp(s2, secret, strlen(s2)) == 0)
				state = j->phase;
		}
		/* No row and no migration: it never started here. */
		if (strcmp(state, "unknown") == 0 && d == NULL)
			state = "aborted";
	}
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
	g_autoptr(GIOStream) tls = g_tls_server_connection_new(base,
		a->api->cert, &e);
	if (tls == NULL) {
		g_warning("migrate: TLS: %s", e->message);
		g_error_free(e);
		accept_free(a);
		return;
	}
	a->tls = TRUE;
	chan_new(tls, accept_on_line, a);
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
				"token", NULL), NULL, FALSE, NULL);
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
	chan_new(G_IO_STREAM(conn), accept_on_line, a);
}

/* ---- Recovery ------------------------------------------------------- */

typedef struct {
	Api *api;
	StoreJournal *j;
	char *vm_ref;
} Recover;

static void
dst_recover_status(Qmp *qmp, JsonNode *ret, const GError *error,
		   gpointer data)
{
	Recover *r = data;
	Api *api = r->api;
	const char *status = !error && JSON_NODE_HOLDS_OBJECT(ret)
		? json_object_get_string_member_with_default(
			  json_node_get_object(ret), "status", "")
		: "";
	StoreObj *vm = store_get_typed(api->store, "VM", r->vm_ref);

	if (strcmp(status, "completed") == 0 && vm != NULL) {
		/* The whole stream arrived before we died: run it here. */
		g_info("migrate: recovery: %s arrived whole, resuming it",
		       r->j->vm_uuid);
		qemu_vm_call(api, r->vm_ref, "cont", NULL, NULL, NULL);
		vm_op_end(api, r->vm_ref);
		StoreJournal j = *r->j;
		j.phase = "running";
		store_journal_put(api->store, &j, NULL);
	} else {
		g_info("migrate: recovery: incoming %s was not complete, "
		       "rolling back", r->j->vm_uuid);
		qemu_vm_kill(api, r->vm_ref);
		if (vm != NULL) {
			qemu_driver_forget(api, vm);
			store_remove(api->store, vm, NULL);
		}
		StoreJournal j = *r->j;
		j.phase = "aborted";
		store_journal_put(api->store, &j, NULL);
	}
	event_notify(api);
	store_journal_free(r->j);
	g_free(r->vm_ref);
	g_free(r);
}

void
migrate_dst_recover(Api *api, StoreJournal *j)
{
	g_autoptr(JsonNode) n = json_from_string(j->data, NULL);
	const char *vm_ref = n && JSON_NODE_HOLDS_OBJECT(n)
		? json_object_get_string_member_with_default(
			  json_node_get_object(n), "vm_ref", "")
		: "";

	if (strcmp(j->phase, "running") == 0 ||
	    strcmp(j->phase, "aborted") == 0) {
		/* Settled; kept only to answer a source's question. */
		return;
	}
	Recover *r = g_new0(Recover, 1);
	r->api = api;
	r->vm_ref = g_strdup(vm_ref);
	r->j = g_new0(StoreJournal, 1);
	r->j->id = g_strdup(j->id);
	r->j->side = g_strdup(j->side);
	r->j->vm_uuid = g_strdup(j->vm_uuid);
	r->j->phase = g_strdup(j->phase);
	r->j->data = g_strdup(j->data);
	if (strcmp(j->phase, "resuming") == 0) {
		/* Decided before the crash: finish resuming. */
		qemu_vm_call(api, vm_ref, "cont", NULL, NULL, NULL);
		vm_op_end(api, vm_ref);
		StoreJournal done = *j;
		done.phase = "running";
		store_journal_put(api->store, &done, NULL);
		store_journal_free(r->j);
		g_free(r->vm_ref);
		g_free(r);
		return;
	}
	qemu_vm_call(api, vm_ref, "query-migrate", NULL, dst_recover_status, r);
}

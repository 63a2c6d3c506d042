/*
 * migrate-src: the source side, VM.migrate_send as one state machine.
 *
 *   CONNECT --> QUALIFY --> PREPARE --> TRANSFER --> SWITCHOVER --> CONFIRM --> DONE
 *      |           |           |           |                          |
 *      +-----------+-----------+-----------+--> ABORTED               +--> (outcome asked
 *                                                                          of the destination)
 *
 * CONNECT    p2p only: log in to the destination and get a token there.
 * QUALIFY    open the control channel, present the token and the VM; the
 *            destination qualifies it and starts QEMU waiting (READY).
 * PREPARE    TLS credentials and parameters on our QEMU, data connection.
 * TRANSFER   QEMU streams; query-migrate feeds the task's figures.
 * SWITCHOVER QEMU paused before switching over (pause-before-switchover):
 *            the point of no return.  Cancel is withdrawn from the task,
 *            the phase is journaled, and only then does QEMU go on.
 * CONFIRM    the destination says RUNNING; our QEMU is killed, our record
 *            removed.  Without word from it, we ask it (TERN-QUERY) and
 *            never resume our copy unless it answers "aborted" ("unknown"
 *            is not enough: see migrate-dst.c, "Tombstones").
 *
 * Every wait on the destination is bounded (channel.h: 30 s of silence
 * fails a channel; the control channel pings every 10 s), so a frozen
 * destination is an abort before SWITCHOVER and a question after it.
 *
 * Before SWITCHOVER every failure (cancel, max_duration, the destination
 * going away, QEMU failing) ends in ABORTED: QEMU's migration cancelled,
 * the VM running here as before, nothing left on the destination.
 */
#include "migrate/migrate-int.h"

#include <sodium.h>
#include <string.h>
#include <unistd.h>

#include "common/xerr.h"
#include "migrate/predict.h"
#include "migrate/testhook.h"
#include "qemu/driver.h"

typedef enum {
	SRC_CONNECT,
	SRC_QUALIFY,
	SRC_PREPARE,
	SRC_TRANSFER,
	SRC_SWITCHOVER,
	SRC_CONFIRM,
	SRC_DONE,
	SRC_ABORTED,
} SrcPhase;

static const char *const src_phase_names[] = {
	[SRC_CONNECT] = "connect", [SRC_QUALIFY] = "qualify",
	[SRC_PREPARE] = "prepare", [SRC_TRANSFER] = "transfer",
	[SRC_SWITCHOVER] = "switchover", [SRC_CONFIRM] = "confirm",
	[SRC_DONE] = "done", [SRC_ABORTED] = "aborted",
};

typedef enum { SRC_SEND, SRC_TEST, SRC_CHECK } SrcKind;

/* VM.assert_can_migrate and VM.migrate_check answer within this, or fail
 * (each channel wait is bounded too; this also bounds the probe). */
#define SRC_CHECK_DEADLINE_S 120

/* After the switchover, without word from the destination: ask every
 * 500 ms for this long (then the task ends "outcome unknown"), and every
 * SRC_QUERY_SLOW_MS after that until the destination answers. */
#define SRC_QUERY_FAST_S 60
#define SRC_QUERY_SLOW_MS 5000

typedef struct {
	Api *api;
	Call *call;
	SrcKind kind;
	SrcPhase phase;
	char *id;
	char *secret;
	char *vm_ref;
	char *vm_uuid;
	gboolean live;
	gboolean was_running;
	JsonObject *options;
	MigrateOptions opts;
	char *url;
	char *token;
	char *psk;
	char *fingerprint;
	Chan *ctl;
	Chan *data;
	char *dst_vm_ref;
	char *data_key;
	char *direct_uri;
	gboolean qemu_completed;
	gboolean finishing;       /* the final query-migrate is under way */
	gboolean dst_running;
	gint64 start_us;
	gint64 stop_us;
	const char *qemu_state;   /* "Paused"/"Running" from QEMU's last
				   * STOP/RESUME event; NULL before one */
	gint64 resume_us;
	guint poll_id;
	Policy *policy;
	guint query_id;
	gint64 query_until_us;
	gulong cancel_id;
	guint cancel_idle_id;
	JsonObject *stats;        /* last query-migrate "ram" and friends */
	JsonObject *blockers_reply; /* SRC_CHECK: waiting for the prediction */
	int check_pending;        /* SRC_CHECK: probe and dirty rate */
	double probe_bps;
	JsonObject *prediction;
	char *last_state;         /* the destination's last STATE answer */
	guint check_id;           /* SRC_TEST/SRC_CHECK: the whole call's
				   * deadline, probe included */
	int refs;                 /* the machine's own, plus one per pending
				   * call back into it (see "Ownership") */
	gboolean dead;            /* ended: pending callbacks only let go */
} Src;

static GHashTable *src_by_vm;    /* vm ref -> Src (sends only) */
static GHashTable *src_by_id;    /* migration id -> Src (all) */

static void src_abort(Src *s, GError *error);
static void src_finish(Src *s);

/* ---- Ownership ------------------------------------------------------ */

/*
 * A Src is ended by src_free, but QMP calls, channel opens and the p2p
 * login it started may still be on their way back.  Every such call holds
 * a reference (src_hold, as its user data); its callback first calls
 * src_back, which lets go of that reference and says whether the
 * migration is still alive.  src_free marks the Src dead, stops what it
 * owns (timers, channels, the task) and drops the machine's own
 * reference; the memory goes with the last reference (redis's rule: never
 * freed under a callback that still points to it).
 */
static Src *
src_hold(Src *s)
{
	s->refs++;
	return s;
}

static void src_destroy(Src *s);

/* Lets go of a pending call's reference: TRUE when S is still alive. */
static gboolean
src_back(Src *s)
{
	g_assert(s->refs > 0);
	if (--s->refs == 0) {
		g_assert(s->dead);
		src_destroy(s);
		return FALSE;
	}
	return !s->dead;
}

/* ---- Bookkeeping ---------------------------------------------------- */

static void
src_journal(Src *s)
{
	g_autoptr(JsonObject) data = json_object_new();

	json_object_set_string_member(data, "vm_ref", s->vm_ref);
	json_object_set_string_member(data, "secret", s->secret);
	json_object_set_string_member(data, "url", s->url ? s->url : "");
	json_object_set_string_member(data, "fingerprint",
				      s->fingerprint ? s->fingerprint : "");
	json_object_set_boolean_member(data, "was_running", s->was_running);
	g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), data);
	g_autofree char *text = json_to_string(n, FALSE);
	StoreJournal j = {
		.id = s->id, .side = "src", .vm_uuid = s->vm_uuid,
		.phase = (char *)src_phase_names[s->phase], .data = text,
	};
	GError *e = NULL;
	if (!store_journal_put(s->api->store, &j, &e)) {
		g_warning("migrate: journal: %s", e->message);
		g_error_free(e);
	}
}

/* The one transition function; phases never go backwards. */
static void
src_set(Src *s, SrcPhase next)
{
	g_assert(next > s->phase || next == SRC_ABORTED);
	g_info("migrate: src %s: %s -> %s", s->id, src_phase_names[s->phase],
	       src_phase_names[next]);
	s->phase = next;
	if (next >= SRC_PREPARE && s->kind == SRC_SEND)
		src_journal(s);
	if (s->call != NULL) {
		g_autoptr(JsonObject) kv = json_object_new();
		json_object_set_string_member(kv, "phase",
					      src_phase_names[next]);
		call_task_update_many(s->call, kv);
	}
}

/* Ends the migration's state: marks it dead and lets go of everything that
 * could call back into it; the memory follows the last reference. */
static void
src_free(Src *s)
{
	if (s->dead)
		return;
	s->dead = TRUE;
	if (s->kind == SRC_SEND && s->vm_ref != NULL) {
		/* No event may reach a dead migration either. */
		QemuVm *qv = qemu_vm_lookup(s->api, s->vm_ref);
		if (qv != NULL)
			qemu_vm_set_hook(qv, NULL, NULL);
	}
	if (s->poll_id)
		g_source_remove(s->poll_id);
	policy_free(s->policy);
	if (s->cancel_idle_id)
		g_source_remove(s->cancel_idle_id);
	if (s->query_id)
		g_source_remove(s->query_id);
	if (s->check_id)
		g_source_remove(s->check_id);
	s->poll_id = s->cancel_idle_id = s->query_id = s->check_id = 0;
	s->policy = NULL;
	if (s->cancel_id && s->call)
		g_cancellable_disconnect(s->call->cancel, s->cancel_id);
	s->cancel_id = 0;
	if (src_by_vm && g_hash_table_lookup(src_by_vm, s->vm_ref) == s)
		g_hash_table_remove(src_by_vm, s->vm_ref);
	if (src_by_id && g_hash_table_lookup(src_by_id, s->id) == s)
		g_hash_table_remove(src_by_id, s->id);
	if (s->blockers_reply)
		json_object_unref(s->blockers_reply);
	if (s->prediction)
		json_object_unref(s->prediction);
	s->blockers_reply = s->prediction = NULL;
	chan_free(s->ctl);
	chan_free(s->data);
	s->ctl = s->data = NULL;
	if (s->call)
		call_unref(s->call);
	s->call = NULL;
	(void)src_back(s);
}

static void
src_destroy(Src *s)
{
	if (s->psk)
		sodium_memzero(s->psk, strlen(s->psk));
	if (s->options)
		json_object_unref(s->options);
	if (s->stats)
		json_object_unref(s->stats);
	migrate_options_clear(&s->opts);
	g_free(s->psk);
	g_free(s->id);
	g_free(s->secret);
	g_free(s->vm_ref);
	g_free(s->vm_uuid);
	g_free(s->url);
	g_free(s->token);
	g_free(s->fingerprint);
	g_free(s->dst_vm_ref);
	g_free(s->data_key);
	g_free(s->direct_uri);
	g_free(s->last_state);
	g_free(s);
}

/* Answers the call with ERROR (taken) and lets go of it. */
static void
src_fail_call(Src *s, GError *error)
{
	if (s->call == NULL) {
		g_error_free(error);
		return;
	}
	if (s->cancel_id) {
		g_cancellable_disconnect(s->call->cancel, s->cancel_id);
		s->cancel_id = 0;
	}
	call_fail(s->call, error);
	call_unref(s->call);
	s->call = NULL;
}

static GError *
src_error(Src *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static GError *
src_error(Src *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_autofree char *msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	return xerr_new("VM_MIGRATE_FAILED", s->vm_ref, s->api->host_ref,
			s->url ? s->url : "", msg, NULL);
}

/* An XAPI error sent by the destination as [code, params...]. */
static GError *
src_remote_error(JsonObject *msg)
{
	JsonArray *a = json_object_has_member(msg, "error")
			       ? json_object_get_array_member(msg, "error")
			       : NULL;
	guint n = a ? json_array_get_length(a) : 0;
	g_autoptr(GPtrArray) params = g_ptr_array_new();

	if (n == 0)
		return xerr_new("INTERNAL_ERROR",
				"the destination refused without a reason",
				NULL);
	for (guint i = 1; i < n; i++)
		g_ptr_array_add(params,
				(gpointer)json_array_get_string_element(a, i));
	g_ptr_array_add(params, NULL);
	GError *e = NULL;
	xerr_setv(&e, json_array_get_string_element(a, 0),
		  (const char *const *)params->pdata);
	return e;
}

/* The last parameter of the destination's error: its human reason. */
static char *
src_remote_reason(JsonObject *msg)
{
	JsonArray *a = json_object_has_member(msg, "error")
			       ? json_object_get_array_member(msg, "error")
			       : NULL;
	guint n = a ? json_array_get_length(a) : 0;

	return g_strdup(n ? json_array_get_string_element(a, n - 1)
			  : "the destination failed");
}

/* ---- Figures -------------------------------------------------------- */

static char *
fmt_i(gint64 v)
{
	return g_strdup_printf("%" G_GINT64_FORMAT, v);
}

static void
src_put(JsonObject *kv, const char *k, gint64 v)
{
	g_autofree char *s = fmt_i(v);

	json_object_set_string_member(kv, k, s);
}

static void
src_stats_apply(Src *s, JsonNode *ret, const GError *error)
{
	if (error != NULL || !JSON_NODE_HOLDS_OBJECT(ret) || s->call == NULL)
		return;
	JsonObject *r = json_node_get_object(ret);
	JsonObject *ram = json_object_has_member(r, "ram")
				  ? json_object_get_object_member(r, "ram")
				  : NULL;
	if (ram == NULL)
		return;
	gint64 sent = json_object_get_int_member_with_default(ram,
		"transferred", 0);
	gint64 remaining = json_object_get_int_member_with_default(ram,
		"remaining", 0);
	gint64 total = json_object_get_int_member_with_default(ram, "total",
							       0);
	double mbps = json_object_get_double_member_with_default(ram, "mbps",
								 0);
	gint64 dirty = json_object_get_int_member_with_default(ram,
		"dirty-pages-rate", 0) * json_object_get_int_member_with_default(
		ram, "page-size", 4096);
	gint64 iter = json_object_get_int_member_with_default(ram,
		"dirty-sync-count", 0);
	gint64 expected = json_object_get_int_member_with_default(r,
		"expected-downtime", 0);
	g_autoptr(JsonObject) kv = json_object_new();

	if (s->stats)
		json_object_unref(s->stats);
	s->stats = json_object_ref(r);
	src_put(kv, "iteration", iter);
	src_put(kv, "transferred_bytes", sent);
	src_put(kv, "remaining_bytes", remaining);
	src_put(kv, "total_bytes", total);
	g_autofree char *m = g_strdup_printf("%.1f", mbps);
	json_object_set_string_member(kv, "mbps", m);
	src_put(kv, "dirty_rate", dirty);
	src_put(kv, "expected_downtime_ms", expected);
	double bytes_s = mbps * 1e6 / 8;
	src_put(kv, "eta_s", bytes_s > 0 ? (gint64)(remaining / bytes_s) : -1);
	call_task_update_many(s->call, kv);
	/* Progress: what is sent of what must be sent, never backwards. */
	if (total > 0 && sent + remaining > 0)
		call_set_progress(s->call, 0.05 + 0.9 * (double)sent /
						  (double)(sent + remaining));
}

static void
src_stats(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	Src *s = data;

	if (src_back(s))
		src_stats_apply(s, ret, error);
}

static gboolean
src_poll(gpointer data)
{
	Src *s = data;

	qemu_vm_call(s->api, s->vm_ref, "query-migrate", NULL, src_stats,
		     src_hold(s));
	return G_SOURCE_CONTINUE;
}

static void
src_final_figures(Src *s)
{
	g_autoptr(JsonObject) kv = json_object_new();
	JsonObject *r = s->stats;

	src_put(kv, "total_ms", (g_get_real_time() - s->start_us) / 1000);
	if (r != NULL) {
		src_put(kv, "downtime_ms",
			json_object_get_int_member_with_default(r, "downtime",
								0));
		src_put(kv, "qemu_total_ms",
			json_object_get_int_member_with_default(r,
				"total-time", 0));
		src_put(kv, "setup_ms",
			json_object_get_int_member_with_default(r,
				"setup-time", 0));
		JsonObject *ram = json_object_has_member(r, "ram")
			? json_object_get_object_member(r, "ram") : NULL;
		if (ram) {
			src_put(kv, "bytes",
				json_object_get_int_member_with_default(ram,
					"transferred", 0));
			g_autofree char *m = g_strdup_printf("%.1f",
				json_object_get_double_member_with_default(
					ram, "mbps", 0));
			json_object_set_string_member(kv, "mbps", m);
		}
	}
	if (s->stop_us > 0 && s->resume_us > 0)
		src_put(kv, "blackout_ms", (s->resume_us - s->stop_us) / 1000);
	src_put(kv, "remaining_bytes", 0);
	src_put(kv, "eta_s", 0);
	call_task_update_many(s->call, kv);
}

/* ---- Ending --------------------------------------------------------- */

static void src_finish(Src *s);

static void
src_final_stats(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	Src *s = data;

	if (!src_back(s))
		return;
	/* QEMU fills total-time and downtime in when it reports completed;
	 * the figures come from this answer, not the last periodic poll. */
	src_stats_apply(s, ret, error);
	src_finish(s);
}

/* Both conditions hold: QEMU sent everything, the destination runs. */
static void
src_finish_after_stats(Src *s)
{
	if (s->finishing)
		return;
	s->finishing = TRUE;
	if (s->poll_id) {
		g_source_remove(s->poll_id);
		s->poll_id = 0;
	}
	qemu_vm_call(s->api, s->vm_ref, "query-migrate", NULL,
		     src_final_stats, src_hold(s));
}

static void
src_finish(Src *s)
{
	Api *api = s->api;
	StoreObj *vm = store_get_typed(api->store, "VM", s->vm_ref);

	src_set(s, SRC_DONE);
	if (s->ctl)
		chan_send(s->ctl, "DONE", NULL);
	/* The destination runs the VM: only now does our copy go. */
	qemu_vm_kill(api, s->vm_ref);
	if (vm != NULL) {
		qemu_driver_forget(api, vm);
		store_remove(api->store, vm, NULL);
	}
	store_journal_delete(api->store, s->id, NULL);
	event_notify(api);
	if (s->live && s->stats)
		predict_learn(api, &s->opts, s->stats,
			      (g_get_real_time() - s->start_us) / 1000, 0);
	if (s->call) {
		src_final_figures(s);
		call_return_string(s->call, s->dst_vm_ref);
	}
	g_info("migrate: src %s: VM %s now runs at %s as %s", s->id,
	       s->vm_uuid, s->url, s->dst_vm_ref);
	src_free(s);
}

static void
src_end_op(Src *s)
{
	QemuVm *qv = qemu_vm_lookup(s->api, s->vm_ref);

	migrate_qemu_forget_key(s->api, s->vm_ref);
	if (qv)
		qemu_vm_set_hook(qv, NULL, NULL);
	vm_op_end(s->api, s->vm_ref);
}

/* Rolls back to "the VM runs here, as before". */
static void
src_resume_checked(Qmp *qmp, JsonNode *ret, const GError *error,
		   gpointer data)
{
	Src *s = data;

	if (!src_back(s))
		return;
	gboolean running = !error && JSON_NODE_HOLDS_OBJECT(ret) &&
		json_object_get_boolean_member_with_default(
			json_node_get_object(ret), "running", FALSE);
	const char *status = !error && JSON_NODE_HOLDS_OBJECT(ret)
		? json_object_get_string_member_with_default(
			  json_node_get_object(ret), "status", "")
		: "";

	/* QEMU cancels asynchronously: wait until it has settled. */
	if (strcmp(status, "finish-migrate") == 0 ||
	    strcmp(status, "inmigrate") == 0) {
		qemu_vm_call(s->api, s->vm_ref, "query-status", NULL,
			     src_resume_checked, src_hold(s));
		return;
	}
	if (!running && s->was_running)
		qemu_vm_call(s->api, s->vm_ref, "cont", NULL,
			     migrate_ignore_reply, NULL);
	src_end_op(s);
	StoreObj *vm = store_get_typed(s->api->store, "VM", s->vm_ref);
	/* No QEMU any more (it died): the driver marked the VM Halted. */
	if (vm != NULL && qemu_vm_lookup(s->api, s->vm_ref) != NULL)
		vm_set(s->api, vm, NULL, "power_state",
		       json_node_init_string(json_node_alloc(),
			       s->was_running ? "Running" : "Paused"), NULL);
	event_notify(s->api);
	src_free(s);
}

static void
src_abort(Src *s, GError *error)
{
	Api *api = s->api;
	SrcPhase from = s->phase;

	/* A callback that a kill or close runs synchronously may ask again. */
	if (s->dead || s->phase == SRC_ABORTED) {
		g_error_free(error);
		return;
	}
	g_return_if_fail(s->phase < SRC_SWITCHOVER);
	g_info("migrate: src %s: aborting: %s", s->id, error->message);
	src_set(s, SRC_ABORTED);
	if (s->poll_id) {
		g_source_remove(s->poll_id);
		s->poll_id = 0;
	}
	if (s->ctl) {
		g_autoptr(JsonObject) m = json_object_new();
		json_object_set_string_member(m, "reason", error->message);
		chan_send(s->ctl, "ABORT", m);
	}
	store_journal_delete(api->store, s->id, NULL);
	src_fail_call(s, error);
	if (from >= SRC_PREPARE && s->live) {
		qemu_vm_call(api, s->vm_ref, "migrate_cancel", NULL,
			     migrate_ignore_reply, NULL);
		qemu_vm_call(api, s->vm_ref, "query-status", NULL,
			     src_resume_checked, src_hold(s));
		return;
	}
	src_end_op(s);
	src_free(s);
}

/* ---- After the switchover: make sure of the destination ------------- */

static void src_ask_destination(Src *s);

static void
src_on_query(Chan *c, const char *verb, JsonObject *msg, const GError *error,
	     gpointer data)
{
	Src *s = data;
	const char *state = verb && strcmp(verb, "STATE") == 0
		? json_object_get_string_member_with_default(msg, "state", "")
		: "";

	chan_free(c);
	if (!src_back(s))
		return;
	g_info("migrate: src %s: the destination says: %s", s->id,
	       *state ? state : error ? error->message : "nothing");
	if (strcmp(state, "running") == 0) {
		s->dst_running = TRUE;
		src_finish(s);
	} else if (strcmp(state, "aborted") == 0) {
		/* The destination never ran it: ours is the only copy. */
		g_info("migrate: src %s: the destination rolled back; "
		       "resuming here", s->id);
		s->phase = SRC_ABORTED;
		store_journal_delete(s->api->store, s->id, NULL);
		src_fail_call(s, src_error(s, "the destination failed after "
			"the switchover; the VM runs on the source"));
		qemu_vm_call(s->api, s->vm_ref, "query-status", NULL,
			     src_resume_checked, src_hold(s));
	} else {
		/* "unknown", "receiving", "lost" or no answer: not a reason to
		 * resume, ever; ask again. */
		g_free(s->last_state);
		s->last_state = g_strdup(*state ? state : "no answer");
		src_ask_destination(s);
	}
}

static void
src_query_open(Chan *c, const GError *error, gpointer data)
{
	Src *s = data;
	g_autoptr(JsonObject) m = json_object_new();

	if (!src_back(s)) {
		chan_free(c);
		return;
	}
	if (error != NULL)
		return src_ask_destination(s);
	/* The channel's handler (src_on_query) holds S from here. */
	src_hold(s);
	chan_set_deadline(c, CHAN_DEADLINE_S);
	json_object_set_string_member(m, "migration_id", s->id);
	json_object_set_string_member(m, "secret", s->secret);
	chan_send(c, "TERN-QUERY/1", m);
}

static gboolean
src_query_again(gpointer data)
{
	Src *s = data;

	s->query_id = 0;
	if (g_get_real_time() > s->query_until_us && s->call != NULL) {
		/* Never guess: the task ends, but the VM stays paused here,
		 * journaled, and we go on asking (every
		 * SRC_QUERY_SLOW_MS) until the destination answers. */
		g_warning("migrate: src %s: cannot learn the outcome from %s; "
			  "the VM stays paused here until it can", s->id,
			  s->url);
		src_fail_call(s, src_error(s, "the outcome is unknown after "
			"the switchover (the destination's last answer: %s); "
			"the VM stays paused on the source until ternd learns "
			"the outcome", s->last_state ? s->last_state
						     : "unreachable"));
	}
	migrate_src_open(s->url, s->fingerprint, src_on_query, src_hold(s),
			 src_query_open);
	return G_SOURCE_REMOVE;
}

/* While we ask, the record says what our QEMU is (paused at the
 * switchover; running if QEMU resumed itself after its stream failed). */
static void
src_show_qemu_state(Src *s)
{
	StoreObj *vm = store_get_typed(s->api->store, "VM", s->vm_ref);

	if (vm == NULL || s->qemu_state == NULL ||
	    qemu_vm_lookup(s->api, s->vm_ref) == NULL ||
	    strcmp(vm_power_state(vm), s->qemu_state) == 0)
		return;
	vm_set(s->api, vm, NULL, "power_state",
	       json_node_init_string(json_node_alloc(), s->qemu_state), NULL);
	event_notify(s->api);
}

/* Asks again: every 500 ms for the first SRC_QUERY_FAST_S, then every
 * SRC_QUERY_SLOW_MS for as long as the outcome is unknown. */
static void
src_ask_destination(Src *s)
{
	if (s->query_until_us == 0) {
		s->query_until_us = g_get_real_time() +
				    SRC_QUERY_FAST_S * G_USEC_PER_SEC;
		src_show_qemu_state(s);
	}
	if (s->query_id == 0)
		s->query_id = g_timeout_add(
			g_get_real_time() > s->query_until_us
				? SRC_QUERY_SLOW_MS : 500,
			src_query_again, s);
}

/* ---- Prediction ----------------------------------------------------- */

static Src *
src_lookup_id(const char *id)
{
	return src_by_id ? g_hash_table_lookup(src_by_id, id) : NULL;
}

static void
src_check_answer(Src *s)
{
	JsonObject *r = json_object_new();

	json_object_set_array_member(r, "blockers", json_array_new());
	if (s->prediction)
		json_object_set_object_member(r, "prediction",
			json_object_ref(s->prediction));
	call_return(s->call, json_node_init_object(json_node_alloc(), r));
	json_object_unref(r);
	s->phase = SRC_ABORTED;
	src_end_op(s);
	src_free(s);
}

static void
src_predicted(JsonObject *prediction, gpointer data)
{
	g_autofree char *id = data;
	Src *s = src_lookup_id(id);

	if (s == NULL)
		return; /* the migration ended first */
	if (s->prediction)
		json_object_unref(s->prediction);
	s->prediction = json_object_ref(prediction);
	if (s->kind == SRC_CHECK) {
		src_check_answer(s);
		return;
	}
	if (s->call == NULL)
		return;
	/* Kept in the task, as strings like every other figure. */
	g_autoptr(JsonObject) kv = json_object_new();
	g_autoptr(GList) keys = json_object_get_members(prediction);
	for (GList *l = keys; l; l = l->next) {
		JsonNode *n = json_object_get_member(prediction, l->data);
		g_autofree char *k = g_strconcat("predicted_", l->data, NULL);
		g_autofree char *v = json_node_get_value_type(n) ==
					     G_TYPE_STRING
			? g_strdup(json_node_get_string(n))
			: json_node_get_value_type(n) == G_TYPE_BOOLEAN
			? g_strdup(json_node_get_boolean(n) ? "true" : "false")
			: g_strdup_printf("%.3f", json_node_get_double(n));
		json_object_set_string_member(kv, k, v);
	}
	call_task_update_many(s->call, kv);
}

static void
src_probed(double bps, gpointer data)
{
	g_autofree char *id = data;
	Src *s = src_lookup_id(id);
	StoreObj *vm;

	if (s == NULL)
		return;
	s->probe_bps = bps;
	vm = store_get_typed(s->api->store, "VM", s->vm_ref);
	if (vm == NULL)
		return src_check_answer(s);
	predict_measure(s->api, vm, &s->opts, bps, src_predicted,
			g_strdup(s->id));
}

/* migrate_check with no blocker: probe the channel, measure the guest,
 * answer with the prediction. */
static void
src_check_predict(Src *s)
{
	migrate_probe(s->url, s->token, 64 * 1024 * 1024, src_probed,
		      g_strdup(s->id));
}

/* ---- Control channel ------------------------------------------------ */

static void src_start_transfer(Src *s);
static void src_held(const char *id);
static void src_prepare_qemu(Src *s);
static void src_ctl_open(Chan *c, const GError *error, gpointer data);

static void
src_on_ctl(Chan *c, const char *verb, JsonObject *msg, const GError *error,
	   gpointer data)
{
	Src *s = data;

	if (verb == NULL || strcmp(verb, "FAILED") == 0) {
		g_autofree char *why = verb ? src_remote_reason(msg)
			: error && g_error_matches(error, G_IO_ERROR,
						   G_IO_ERROR_TIMED_OUT)
			? g_strdup_printf("the destination stopped answering "
					  "on the control channel (%s)",
					  error->message)
			: error ? g_strdup_printf("the control channel to the "
				"destination failed: %s", error->message)
			: NULL;
		chan_free(c);
		s->ctl = NULL;
		if (s->phase < SRC_SWITCHOVER)
			return src_abort(s, src_error(s, "%s",
				why ? why : "the destination closed the "
					    "channel"));
		if (!s->dst_running)
			src_ask_destination(s);
		return;
	}
	if (strcmp(verb, "REFUSED") == 0 && s->phase == SRC_QUALIFY) {
		chan_free(c);
		s->ctl = NULL;
		if (s->kind == SRC_CHECK) {
			JsonObject *r = json_object_new();
			JsonArray *b = json_object_has_member(msg, "blockers")
				? json_array_ref(json_object_get_array_member(
					  msg, "blockers"))
				: json_array_new();
			if (json_array_get_length(b) == 0) {
				g_autoptr(GError) e = src_remote_error(msg);
				JsonObject *o = json_object_new();
				json_object_set_string_member(o, "code",
					"MIGRATION_REFUSED");
				json_object_set_string_member(o, "message",
							      e->message);
				json_array_add_object_element(b, o);
			}
			json_object_set_array_member(r, "blockers", b);
			call_return(s->call, json_node_init_object(
				json_node_alloc(), r));
			json_object_unref(r);
			s->phase = SRC_ABORTED;
			src_end_op(s);
			src_free(s);
			return;
		}
		return src_abort(s, src_remote_error(msg));
	}
	if (strcmp(verb, "QUALIFIED") == 0 && s->phase == SRC_QUALIFY) {
		chan_free(c);
		s->ctl = NULL;
		if (s->kind == SRC_CHECK)
			return src_check_predict(s);
		call_return(s->call, NULL);
		s->phase = SRC_ABORTED;
		src_end_op(s);
		src_free(s);
		return;
	}
	if (strcmp(verb, "READY") == 0 && s->phase == SRC_QUALIFY) {
		s->dst_vm_ref = g_strdup(json_object_get_string_member_with_default(
			msg, "vm_ref", ""));
		if (json_object_get_boolean_member_with_default(msg, "offline",
								FALSE)) {
			chan_free(c);
			s->ctl = NULL;
			s->phase = SRC_CONFIRM;
			src_finish(s);
			return;
		}
		s->data_key = g_strdup(json_object_get_string_member_with_default(
			msg, "data_key", ""));
		if (json_object_has_member(msg, "direct_uri"))
			s->direct_uri = g_strdup(json_object_get_string_member(
				msg, "direct_uri"));
		src_start_transfer(s);
		return;
	}
	if (strcmp(verb, "RUNNING") == 0) {
		s->resume_us = json_object_get_int_member_with_default(
			msg, "resume_us", 0);
		s->dst_running = TRUE;
		if (s->phase >= SRC_SWITCHOVER && s->qemu_completed)
			src_finish_after_stats(s);
		return;
	}
}

/* ---- Transfer ------------------------------------------------------- */

static void
src_migrate_started(Qmp *qmp, JsonNode *ret, const GError *error,
		    gpointer data)
{
	Src *s = data;

	if (!src_back(s))
		return;
	if (error != NULL)
		return src_abort(s, src_error(s, "QEMU would not migrate: %s",
					      error->message));
	src_set(s, SRC_TRANSFER);
	s->poll_id = g_timeout_add(200, src_poll, s);
}

static void
src_migrate(Src *s, const char *uri)
{
	g_autoptr(JsonObject) a = json_object_new();

	json_object_set_string_member(a, "uri", uri);
	qemu_vm_call(s->api, s->vm_ref, "migrate", a, src_migrate_started,
		     src_hold(s));
}

static void
src_getfd_done(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	Src *s = data;

	if (!src_back(s))
		return;
	if (error != NULL)
		return src_abort(s, src_error(s, "getfd: %s", error->message));
	src_migrate(s, "fd:tern-migrate");
}

static void
src_relay_done(const char *error, guint64 bytes, gpointer data)
{
	g_autofree char *id = data;

	if (error != NULL)
		g_info("migrate: src %s: relay: %s", id, error);
}

static void
src_on_data(Chan *c, const char *verb, JsonObject *msg, const GError *error,
	    gpointer data)
{
	Src *s = data;

	if (verb == NULL || strcmp(verb, "OK") != 0) {
		if (s->phase < SRC_SWITCHOVER && s->phase != SRC_ABORTED &&
		    s->data == c) {
			s->data = NULL;
			chan_free(c);
			return src_abort(s, src_error(s, "the destination "
				"closed the data connection"));
		}
		return;
	}
	/* The destination's QEMU owns its end; ours goes to our QEMU, or,
	 * for a secure tunnel, to the relay (relay.c). */
	chan_pause(c);
	QemuVm *qv = qemu_vm_lookup(s->api, s->vm_ref);
	int fd = chan_dup_fd(c);
	if (qv == NULL || fd < 0)
		return src_abort(s, src_error(s, "no QEMU to send from"));
	if (MIGRATE_USES_RELAY(&s->opts)) {
		int sv[2];
		GError *e = NULL;
		if (!relay_socketpair(sv, &e) ||
		    !relay_start(sv[1], fd, s->psk, src_relay_done,
				 g_strdup(s->id), &e)) {
			close(fd);
			return src_abort(s, e);
		}
		fd = sv[0];
	}
	g_autoptr(JsonObject) a = json_object_new();
	json_object_set_string_member(a, "fdname", "tern-migrate");
	qmp_call_with_fd(qemu_vm_qmp(qv), "getfd", a, fd, src_getfd_done,
			 src_hold(s));
	close(fd);
}

static void
src_data_open(Chan *c, const GError *error, gpointer data)
{
	Src *s = data;
	g_autoptr(JsonObject) m = json_object_new();

	if (!src_back(s)) {
		chan_free(c);
		return;
	}
	if (error != NULL)
		return src_abort(s, src_error(s, "data connection: %s",
					      error->message));
	s->data = c;
	chan_set_deadline(c, CHAN_DEADLINE_S);
	json_object_set_string_member(m, "data_key", s->data_key);
	chan_send(c, "TERN-DATA/1", m);
}

static void
src_prepared(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	Src *s = data;

	if (!src_back(s))
		return;
	if (error != NULL)
		return src_abort(s, src_error(s, "preparing QEMU: %s",
					      error->message));
	if (s->direct_uri != NULL)
		src_migrate(s, s->direct_uri);
	else
		chan_connect(s->url, src_on_data, src_hold(s), src_data_open);
}

static void
src_on_event(Qmp *qmp, const char *event, JsonObject *data, gint64 ts,
	     gpointer user_data)
{
	Src *s = user_data;

	if (strcmp(event, "STOP") == 0 || strcmp(event, "RESUME") == 0) {
		if (strcmp(event, "STOP") == 0)
			s->stop_us = ts;
		s->qemu_state = strcmp(event, "STOP") == 0 ? "Paused"
							   : "Running";
		if (s->query_until_us != 0)
			src_show_qemu_state(s);
		return;
	}
	if (strcmp(event, "MIGRATION") != 0 || data == NULL)
		return;
	const char *status = json_object_get_string_member_with_default(
		data, "status", "");
	g_debug("migrate: src %s: QEMU status %s", s->id, status);
	if (strcmp(status, "pre-switchover") == 0 &&
	    s->phase == SRC_TRANSFER) {
		/* The point of no return, journaled before it is passed. */
		call_task_set_cancellable(s->call, FALSE);
		policy_stop(s->policy);
		src_set(s, SRC_SWITCHOVER);
		testhook_phase("src", "switchover", s->id, src_held);
	} else if (strcmp(status, "completed") == 0 &&
		   s->phase >= SRC_SWITCHOVER) {
		s->qemu_completed = TRUE;
		if (s->phase == SRC_SWITCHOVER)
			src_set(s, SRC_CONFIRM);
		if (s->dst_running)
			src_finish_after_stats(s);
	} else if ((strcmp(status, "failed") == 0 ||
		    strcmp(status, "cancelled") == 0) &&
		   s->phase < SRC_SWITCHOVER && s->phase != SRC_ABORTED) {
		src_abort(s, src_error(s, "QEMU reports the migration %s",
				       status));
	} else if (strcmp(status, "failed") == 0 &&
		   s->phase >= SRC_SWITCHOVER && !s->dst_running) {
		/* Failed after the switchover: QEMU resumes only if the
		 * destination does not run the VM; ask it. */
		src_ask_destination(s);
	}
}

static void
src_start_transfer(Src *s)
{
	src_set(s, SRC_PREPARE);
	testhook_phase("src", "prepare", s->id, src_held);
}

static void
src_prepare_qemu(Src *s)
{
	QemuVm *qv = qemu_vm_lookup(s->api, s->vm_ref);

	if (qv == NULL)
		return src_abort(s, src_error(s, "the VM has no QEMU"));
	qemu_vm_set_hook(qv, src_on_event, s);
	migrate_qemu_prepare(s->api, s->vm_ref, s->psk, TRUE, &s->opts,
			     src_prepared, src_hold(s));
}

/* Goes on from a test hold (testhook.h) if the migration still waits
 * there. */
static void
src_held(const char *id)
{
	Src *s = src_by_id ? g_hash_table_lookup(src_by_id, id) : NULL;

	if (s == NULL || s->dead)
		return;
	if (s->phase == SRC_QUALIFY) {
		migrate_src_open(s->url, s->fingerprint, src_on_ctl,
				 src_hold(s), src_ctl_open);
	} else if (s->phase == SRC_PREPARE) {
		src_prepare_qemu(s);
	} else if (s->phase == SRC_SWITCHOVER) {
		g_autoptr(JsonObject) a = json_object_new();
		json_object_set_string_member(a, "state", "pre-switchover");
		qemu_vm_call(s->api, s->vm_ref, "migrate-continue", a,
			     migrate_ignore_reply, NULL);
	}
}

/* ---- Opening the channel -------------------------------------------- */

static void
src_ctl_open(Chan *c, const GError *error, gpointer data)
{
	Src *s = data;
	StoreObj *vm;
	g_autoptr(JsonObject) m = json_object_new();

	if (!src_back(s)) {
		chan_free(c);
		return;
	}
	vm = store_get_typed(s->api->store, "VM", s->vm_ref);
	if (error != NULL || vm == NULL)
		return src_abort(s, src_error(s, "cannot reach the "
			"destination: %s", error ? error->message
						 : "the VM is gone"));
	s->ctl = c;
	chan_set_deadline(c, CHAN_DEADLINE_S);
	chan_set_keepalive(c);
	json_object_set_string_member(m, "token", s->token);
	json_object_set_string_member(m, "migration_id", s->id);
	json_object_set_string_member(m, "secret", s->secret);
	JsonObject *facts = qualify_src_facts(s->api, vm, s->live);
	/* The destination names the VM by our ref in its XAPI errors. */
	json_object_set_string_member(facts, "vm_ref", s->vm_ref);
	json_object_set_object_member(m, "facts", facts);
	json_object_set_object_member(m, "vm", store_obj_dup(vm));
	json_object_set_object_member(m, "options",
				      json_object_ref(s->options));
	json_object_set_boolean_member(m, "live", s->live);
	json_object_set_boolean_member(m, "test", s->kind != SRC_SEND);
	chan_send(c, "TERN-MIGRATE/1", m);
}

static void
src_cancelled(GCancellable *cancel, gpointer data)
{
	Src *s = data;

	/* Runs from task.cancel on the main loop; cancel is refused once
	 * the switchover starts, but check the phase anyway. */
	if (s->phase < SRC_SWITCHOVER && s->phase != SRC_ABORTED) {
		g_autofree char *task = g_strdup(s->call->task_ref);
		src_abort(s, xerr_new("TASK_CANCELLED", task, NULL));
	}
}

static gboolean
src_cancel_idle(gpointer data)
{
	Src *s = data;

	s->cancel_idle_id = 0;
	src_cancelled(NULL, data);
	return G_SOURCE_REMOVE;
}

static void
src_cancel_signal(GCancellable *cancel, gpointer data)
{
	/* Never abort inside the signal emission (it runs with the
	 * cancellable's lock); go round the main loop once. */
	Src *s = data;

	if (s->cancel_idle_id == 0)
		s->cancel_idle_id = g_idle_add(src_cancel_idle, s);
}

static gboolean
src_check_late(gpointer data)
{
	Src *s = data;

	s->check_id = 0;
	if (s->phase != SRC_ABORTED)
		src_abort(s, src_error(s, "the destination did not answer "
				       "within %d s", SRC_CHECK_DEADLINE_S));
	return G_SOURCE_REMOVE;
}

void
migrate_src_abort_vm(Api *api, const char *vm_ref, const char *why)
{
	Src *s = src_by_vm ? g_hash_table_lookup(src_by_vm, vm_ref) : NULL;

	if (s != NULL && s->phase < SRC_SWITCHOVER && s->phase != SRC_ABORTED)
		src_abort(s, src_error(s, "%s", why));
}

static void
src_got_token(Src *s, JsonObject *dest)
{
	s->url = g_strdup(json_object_get_string_member_with_default(dest,
		"url", ""));
	s->token = g_strdup(json_object_get_string_member_with_default(dest,
		"token", ""));
	s->psk = g_strdup(json_object_get_string_member_with_default(dest,
		"psk", ""));
	s->fingerprint = g_strdup(json_object_get_string_member_with_default(
		dest, "fingerprint", ""));
	if (!*s->url || !*s->token || (s->opts.secure && strlen(s->psk) < 32))
		return src_abort(s, xerr_new("INVALID_VALUE", "dest",
			"the destination map needs url, token and psk (from "
			"host.migrate_receive)", NULL));
	src_set(s, SRC_QUALIFY);
	testhook_phase("src", "qualify", s->id, src_held);
}

/* p2p: the token came from the destination (p2p.c), or an error. */
static void
p2p_done(GObject *obj, GAsyncResult *res, gpointer data)
{
	Src *s = data;
	GError *e = NULL;
	gboolean ours;
	g_autoptr(JsonNode) map = migrate_p2p_finish(res, &ours, &e);

	if (!src_back(s)) {
		g_clear_error(&e);
		return;
	}
	if (map == NULL && !ours) {
		GError *out = src_error(s, "peer-to-peer login to the "
					"destination failed: %s", e->message);
		g_error_free(e);
		return src_abort(s, out);
	}
	if (map == NULL)
		return src_abort(s, e);
	src_got_token(s, json_node_get_object(map));
}

static void
src_begin(Call *call, SrcKind kind)
{
	GError *e = NULL;
	Api *api = call->api;
	StoreObj *vm = call_arg_obj(call, 1, "VM", &e);
	JsonObject *dest = vm ? call_arg_map(call, 2, &e) : NULL;
	JsonObject *options = NULL;
	gboolean live = TRUE;

	if (dest == NULL)
		return call_fail(call, e);
	if (kind == SRC_CHECK) {
		options = call_arg_map(call, 3, &e);
		live = strcmp(vm_power_state(vm), "Halted") != 0;
	} else {
		JsonObject *vdi, *vif;
		if (!call_arg_bool(call, 3, &live, &e) ||
		    (vdi = call_arg_map(call, 4, &e)) == NULL ||
		    (vif = call_arg_map(call, 5, &e)) == NULL ||
		    (options = call_arg_map(call, 6, &e)) == NULL)
			return call_fail(call, e);
		if (json_object_get_size(vdi) || json_object_get_size(vif))
			return call_fail(call, xerr_new("INVALID_VALUE",
				"vdi_map", "storage and network maps are not "
				"supported yet", NULL));
	}
	if (options == NULL)
		return call_fail(call, e);

	Src *s = g_new0(Src, 1);
	s->refs = 1;
	s->api = api;
	s->kind = kind;
	s->id = store_new_uuid();
	s->secret = migrate_random_hex(32);
	s->vm_ref = g_strdup(vm->ref);
	s->vm_uuid = g_strdup(vm->uuid);
	s->live = live;
	s->options = json_object_ref(options);
	s->start_us = g_get_real_time();
	s->was_running = strcmp(vm_power_state(vm), "Running") == 0;
	if (!migrate_options_parse(options, &s->opts, &e) ||
	    !vm_check_power(vm, live ? "Running|Paused" : "Halted|Paused",
			    &e) ||
	    !vm_op_begin(api, vm, kind == SRC_SEND ? "migrate_send"
						   : "assert_can_migrate",
			 &e)) {
		src_free(s);
		return call_fail(call, e);
	}
	s->call = call_ref(call);
	if (src_by_id == NULL)
		src_by_id = g_hash_table_new(g_str_hash, g_str_equal);
	g_hash_table_insert(src_by_id, s->id, s);
	if (kind == SRC_SEND && live)
		predict_measure(api, vm, &s->opts, 0, src_predicted,
				g_strdup(s->id));
	if (kind == SRC_SEND) {
		if (src_by_vm == NULL)
			src_by_vm = g_hash_table_new(g_str_hash, g_str_equal);
		g_hash_table_insert(src_by_vm, s->vm_ref, s);
		if (call->cancel)
			s->cancel_id = g_cancellable_connect(call->cancel,
			G_CALLBACK(src_cancel_signal), s, NULL);
		s->policy = policy_new(api, s->vm_ref, call, &s->opts);
	}
	call_set_progress(call, 0.01);
	if (kind != SRC_SEND)
		s->check_id = g_timeout_add_seconds(SRC_CHECK_DEADLINE_S,
						    src_check_late, s);

	if (json_object_has_member(dest, "token")) {
		src_got_token(s, dest);
		return;
	}
	/* Peer to peer: the map names the destination and credentials. */
	if (!migrate_p2p_fetch(api->cfg.state_dir, dest, vm->uuid, p2p_done,
			       src_hold(s), &e)) {
		src_back(s);
		return src_abort(s, e);
	}
}

void
migrate_src_send(Call *call)
{
	src_begin(call, SRC_SEND);
}

void
migrate_assert_can_migrate(Call *call)
{
	src_begin(call, SRC_TEST);
}

void
migrate_check(Call *call)
{
	src_begin(call, SRC_CHECK);
}

/* VM.migrate_set_bandwidth(session, vm, MiB/s): changes the cap of the
 * migration that runs, at once (QEMU's max-bandwidth). */
void
migrate_set_bandwidth(Call *call)
{
	GError *e = NULL;
	StoreObj *vm = call_arg_obj(call, 1, "VM", &e);
	double mib = 0;

	if (vm == NULL || !call_arg_float(call, 2, &mib, &e))
		return call_fail(call, e);
	Src *s = src_by_vm ? g_hash_table_lookup(src_by_vm, vm->ref) : NULL;
	if (s == NULL || s->phase >= SRC_SWITCHOVER)
		return call_fail(call, xerr_new("OPERATION_NOT_ALLOWED",
			"the VM has no migration in progress", NULL));
	if (!(mib > 0) || mib > 1e6)
		return call_fail(call, xerr_new("INVALID_VALUE", "bandwidth",
						"must be > 0 MiB/s", NULL));
	s->opts.bandwidth_mib = mib;
	g_autoptr(JsonObject) a = json_object_new();
	json_object_set_int_member(a, "max-bandwidth",
				   (gint64)(mib * 1024 * 1024));
	qemu_vm_call(call->api, vm->ref, "migrate-set-parameters", a,
		     migrate_ignore_reply, NULL);
	g_autofree char *v = g_strdup_printf("%.1f", mib);
	if (s->call)
		call_task_update(s->call, "bandwidth_mib", v);
	call_return(call, NULL);
}

/* ---- Recovery ------------------------------------------------------- */

typedef struct {
	Api *api;
	StoreJournal *j;
	char *vm_ref;
} SrcRecover;

static void
src_recover_status(Qmp *qmp, JsonNode *ret, const GError *error,
		   gpointer data)
{
	Src *s = data;
	const char *status = !error && JSON_NODE_HOLDS_OBJECT(ret)
		? json_object_get_string_member_with_default(
			  json_node_get_object(ret), "status", "")
		: "";

	if (!src_back(s))
		return;
	g_info("migrate: recovery: %s: QEMU migration status \"%s\"",
	       s->id, status);
	if (error != NULL) {
		/* No QEMU: if the destination runs it, the record goes. */
		s->phase = SRC_CONFIRM;
		src_ask_destination(s);
		return;
	}
	if (strcmp(status, "completed") == 0 ||
	    strcmp(status, "pre-switchover") == 0 ||
	    strcmp(status, "device") == 0 || s->phase >= SRC_SWITCHOVER) {
		if (strcmp(status, "pre-switchover") == 0) {
			g_autoptr(JsonObject) a = json_object_new();
			json_object_set_string_member(a, "state",
						      "pre-switchover");
			qemu_vm_call(s->api, s->vm_ref, "migrate_cancel", NULL,
				     migrate_ignore_reply, NULL);
		}
		s->phase = SRC_CONFIRM;
		src_ask_destination(s);
		return;
	}
	/* Not past the switchover: the destination drops it when our
	 * channel closes; make sure QEMU stops and the VM runs here. */
	s->phase = SRC_TRANSFER;
	src_abort(s, src_error(s, "ternd restarted during the migration"));
}

void
migrate_src_recover(Api *api, StoreJournal *j)
{
	g_autoptr(JsonNode) n = json_from_string(j->data, NULL);
	JsonObject *d = n && JSON_NODE_HOLDS_OBJECT(n)
				? json_node_get_object(n) : NULL;
	Src *s;

	if (d == NULL) {
		store_journal_delete(api->store, j->id, NULL);
		return;
	}
	s = g_new0(Src, 1);
	s->refs = 1;
	s->api = api;
	s->kind = SRC_SEND;
	s->id = g_strdup(j->id);
	s->vm_uuid = g_strdup(j->vm_uuid);
	s->vm_ref = g_strdup(json_object_get_string_member_with_default(d,
		"vm_ref", ""));
	s->secret = g_strdup(json_object_get_string_member_with_default(d,
		"secret", ""));
	s->url = g_strdup(json_object_get_string_member_with_default(d, "url",
								     ""));
	s->fingerprint = g_strdup(json_object_get_string_member_with_default(
		d, "fingerprint", ""));
	s->was_running = json_object_get_boolean_member_with_default(d,
		"was_running", TRUE);
	s->live = TRUE;
	s->options = json_object_new();
	s->opts.secure = TRUE;
	s->phase = strcmp(j->phase, "switchover") == 0 ||
				   strcmp(j->phase, "confirm") == 0
			   ? SRC_SWITCHOVER
			   : SRC_PREPARE;
	if (src_by_vm == NULL)
		src_by_vm = g_hash_table_new(g_str_hash, g_str_equal);
	g_hash_table_insert(src_by_vm, s->vm_ref, s);
	QemuVm *qv = qemu_vm_lookup(api, s->vm_ref);
	if (qv)
		qemu_vm_set_hook(qv, src_on_event, s);
	qemu_vm_call(api, s->vm_ref, "query-migrate", NULL, src_recover_status,
		     src_hold(s));
}

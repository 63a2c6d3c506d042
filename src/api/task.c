/*
 * task: the record of an asynchronous call.
 *
 * Async.<class>.<method> creates a task, answers with its reference and
 * runs the call; when the call ends, task_finish writes its result or error
 * into the record.  status moves pending -> success | failure, or
 * pending -> cancelling -> cancelled; it never goes back.  task.cancel is
 * allowed only while "cancel" is in allowed_operations: the call that runs
 * the task removes it when it reaches a point of no return (a migration's
 * switchover).
 *
 * A task is its owner's: every session may read it, but only the user
 * who started it, or a pool-operator and above, may cancel or destroy it
 * (task_check_owner).  The owner is kept by user name, the only identity
 * a session has that is not its secret.
 *
 * Tasks are never kept forever.  XAPI keeps a task until its client
 * destroys it, and clients that forget fill the daemon; here a finished
 * task is destroyed cfg.task_keep_s after it ended (an hour by default),
 * or at once when more than cfg.task_keep_max tasks have finished (oldest
 * first).  A running task is never collected.
 */
#include "api/api.h"

#include <string.h>

#include "common/xerr.h"

void
task_set_field(Api *api, StoreObj *task, const char *field, JsonNode *value)
{
	JsonObject *rec = store_obj_dup(task);

	json_object_set_member(rec, field, value);
	store_replace(api->store, task, rec, NULL);
}

StoreObj *
task_create(Api *api, const char *name, Session *session, GError **error)
{
	JsonObject *rec = json_object_new();
	g_autofree char *uuid = store_new_uuid();
	g_autofree char *now = api_now_datetime();
	JsonArray *ops = json_array_new();

	json_array_add_string_element(ops, "cancel");
	json_object_set_string_member(rec, "uuid", uuid);
	json_object_set_string_member(rec, "name_label", name);
	json_object_set_string_member(rec, "name_description", "");
	json_object_set_string_member(rec, "status", "pending");
	json_object_set_double_member(rec, "progress", 0.0);
	json_object_set_string_member(rec, "created", now);
	json_object_set_string_member(rec, "finished", "19700101T00:00:00Z");
	json_object_set_string_member(rec, "result", "");
	json_object_set_array_member(rec, "error_info", json_array_new());
	json_object_set_array_member(rec, "allowed_operations", ops);
	json_object_set_object_member(rec, "current_operations",
				      json_object_new());
	json_object_set_string_member(rec, "resident_on", api->host_ref);
	/* The owner's session is not kept in the record: a session's
	 * reference is its secret, and tasks are readable by every role. */
	json_object_set_string_member(rec, "owner",
				      session ? session->user : "");
	json_object_set_object_member(rec, "other_config", json_object_new());
	return store_add(api->store, "task", rec, error);
}

/* ---- Retention of finished tasks ---------------------------------- */

/* The defaults, when the configuration says 0. */
#define TASK_KEEP_S 3600
#define TASK_KEEP_MAX 1000

typedef struct {
	char *ref;
	gint64 done_us;   /* monotonic */
} TaskDone;

static void
task_done_free(TaskDone *d)
{
	g_free(d->ref);
	g_free(d);
}

static gboolean task_gc_timeout(gpointer data);

/* Destroys what has expired or is over the count, then waits for the
 * next expiry. */
static void
task_gc(Api *api)
{
	gint64 now = g_get_monotonic_time();
	gint64 keep_us = (gint64)(api->cfg.task_keep_s ? api->cfg.task_keep_s
						       : TASK_KEEP_S) *
			 G_USEC_PER_SEC;
	guint keep_max = api->cfg.task_keep_max ? api->cfg.task_keep_max
						: TASK_KEEP_MAX;
	gboolean removed = FALSE;
	TaskDone *d;

	while ((d = g_queue_peek_head(api->tasks_done)) != NULL) {
		if (now - d->done_us < keep_us &&
		    g_queue_get_length(api->tasks_done) <= keep_max)
			break;
		if (g_hash_table_contains(api->task_calls, d->ref))
			break; /* its call is still answering; next pass */
		g_queue_pop_head(api->tasks_done);
		StoreObj *t = store_get_typed(api->store, "task", d->ref);
		if (t != NULL) {
			g_debug("task: %s collected", d->ref);
			store_remove(api->store, t, NULL);
			removed = TRUE;
		}
		task_done_free(d);
	}
	if (removed)
		event_notify(api);
	if (api->task_gc_id != 0)
		g_source_remove(api->task_gc_id);
	api->task_gc_id = 0;
	if (d != NULL) {
		gint64 wait_ms = (d->done_us + keep_us - now) / 1000 + 1;
		api->task_gc_id = g_timeout_add((guint)CLAMP(wait_ms, 1,
							     G_MAXUINT),
						task_gc_timeout, api);
	}
}

static gboolean
task_gc_timeout(gpointer data)
{
	Api *api = data;

	api->task_gc_id = 0;
	task_gc(api);
	return G_SOURCE_REMOVE;
}

void
task_gc_init(Api *api)
{
	api->tasks_done = g_queue_new();
}

void
task_gc_free(Api *api)
{
	if (api->task_gc_id != 0)
		g_source_remove(api->task_gc_id);
	api->task_gc_id = 0;
	g_queue_free_full(api->tasks_done, (GDestroyNotify)task_done_free);
	api->tasks_done = NULL;
}

static void
task_gc_forget(Api *api, const char *ref)
{
	for (GList *l = api->tasks_done->head; l; l = l->next) {
		TaskDone *d = l->data;
		if (strcmp(d->ref, ref) == 0) {
			g_queue_delete_link(api->tasks_done, l);
			task_done_free(d);
			return;
		}
	}
}

void
task_finish(Api *api, StoreObj *task, JsonNode *result, const GError *error,
	    gboolean cancelled)
{
	JsonObject *rec = store_obj_dup(task);
	g_autofree char *now = api_now_datetime();

	json_object_set_string_member(rec, "finished", now);
	json_object_set_array_member(rec, "allowed_operations",
				     json_array_new());
	if (error == NULL) {
		g_autofree char *text = NULL;
		if (JSON_NODE_HOLDS_VALUE(result) &&
		    json_node_get_value_type(result) == G_TYPE_STRING)
			text = g_strdup(json_node_get_string(result));
		else
			text = json_to_string(result, FALSE);
		json_object_set_string_member(rec, "status", "success");
		json_object_set_double_member(rec, "progress", 1.0);
		json_object_set_string_member(rec, "result", text);
	} else {
		g_autofree char *code = NULL;
		g_auto(GStrv) params = NULL;
		JsonArray *info = json_array_new();

		xerr_split(error, &code, &params);
		json_array_add_string_element(info, code);
		for (guint i = 0; params[i]; i++)
			json_array_add_string_element(info, params[i]);
		json_object_set_string_member(rec, "status",
			cancelled ? "cancelled" : "failure");
		json_object_set_array_member(rec, "error_info", info);
	}
	store_replace(api->store, task, rec, NULL);

	TaskDone *d = g_new0(TaskDone, 1);
	d->ref = g_strdup(task->ref);
	d->done_us = g_get_monotonic_time();
	g_queue_push_tail(api->tasks_done, d);
	task_gc(api);
}

static StoreObj *
task_self(Call *call, GError **error)
{
	return call_arg_obj(call, 1, "task", error);
}

static gboolean
task_may(StoreObj *t, const char *op)
{
	JsonArray *a = json_object_get_array_member(t->rec,
						    "allowed_operations");

	for (guint i = 0; a && i < json_array_get_length(a); i++)
		if (strcmp(json_array_get_string_element(a, i), op) == 0)
			return TRUE;
	return FALSE;
}

/* Others may read a task; changing it takes its owner or a
 * pool-operator. */
static gboolean
task_check_owner(Call *call, StoreObj *t, GError **error)
{
	const char *owner = json_object_get_string_member_with_default(
		t->rec, "owner", "");

	if (call->session->role >= ROLE_POOL_OPERATOR ||
	    strcmp(owner, call->session->user) == 0)
		return TRUE;
	g_autofree char *perm = g_ascii_strdown(call->name, -1);
	g_autofree char *msg = g_strdup_printf(
		"task %s belongs to %s: only its owner or a pool-operator and "
		"above may change it", t->ref, owner);
	xerr_set(error, "RBAC_PERMISSION_DENIED", perm, msg, NULL);
	return FALSE;
}

static void
task_cancel(Call *call)
{
	GError *e = NULL;
	StoreObj *t = task_self(call, &e);

	if (t == NULL || !task_check_owner(call, t, &e))
		return call_fail(call, e);
	Call *running = g_hash_table_lookup(call->api->task_calls, t->ref);
	if (running == NULL || !task_may(t, "cancel")) {
		g_autofree char *why = g_strdup_printf(
			"task %s cannot be cancelled now (status %s)", t->ref,
			json_object_get_string_member(t->rec, "status"));
		return call_fail(call, xerr_new("OPERATION_NOT_ALLOWED", why,
						NULL));
	}
	task_set_field(call->api, t, "status",
		       json_node_init_string(json_node_alloc(), "cancelling"));
	event_notify(call->api);
	g_cancellable_cancel(running->cancel);
	call_return(call, NULL);
}

static void
task_destroy(Call *call)
{
	GError *e = NULL;
	StoreObj *t = task_self(call, &e);

	if (t == NULL || !task_check_owner(call, t, &e))
		return call_fail(call, e);
	if (g_hash_table_contains(call->api->task_calls, t->ref)) {
		return call_fail(call, xerr_new("OPERATION_NOT_ALLOWED",
			"the task is still running", NULL));
	}
	task_gc_forget(call->api, t->ref);
	store_remove(call->api->store, t, NULL);
	event_notify(call->api);
	call_return(call, NULL);
}

static const Method task_methods[] = {
	{ .name = "cancel", .fn = task_cancel, .nargs = 2,
	  .role = ROLE_VM_OPERATOR },
	{ .name = "destroy", .fn = task_destroy, .nargs = 2,
	  .role = ROLE_VM_OPERATOR },
	{ NULL }
};

static const Field task_fields[] = {
	{ "uuid", FT_STRING },
	{ "name_label", FT_STRING },
	{ "name_description", FT_STRING },
	{ "status", FT_STRING },
	{ "progress", FT_FLOAT },
	{ "created", FT_DATETIME },
	{ "finished", FT_DATETIME },
	{ "result", FT_STRING },
	{ "error_info", FT_SET },
	{ "allowed_operations", FT_SET },
	{ "current_operations", FT_MAP },
	{ "resident_on", FT_REF },
	{ "other_config", FT_MAP, TRUE },
	{ NULL }
};

const ClassDef task_class = {
	.name = "task",
	.fields = task_fields,
	.methods = task_methods,
	.set_role = ROLE_VM_OPERATOR,
	.named = TRUE,
};

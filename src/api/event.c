/*
 * event: event.from, the long poll that tells clients what changed.
 *
 * The store numbers every change.  A token is "<boot>:<n>": the id of this
 * daemon's run and the last event the client has seen, so a token from
 * an earlier run or older than the store's ring is refused with
 * EVENTS_LOST and the client re-reads everything.  The empty token asks for
 * the current state: one "add" event per object of the named classes.
 *
 * A call that finds nothing to report waits: it is kept in api->waiters
 * with a timeout.  Every change calls event_notify, which schedules one
 * idle pass over the waiters, so a burst of changes wakes each waiter once
 * and a single change reaches a waiter on the next main-loop turn.
 */
#include "api/api.h"

#include <string.h>

#include "common/xerr.h"

typedef struct {
	Call *call;
	char **classes;   /* lower case; "*" for all */
	guint64 after;
	guint timeout_id;
} Waiter;

/* The classes event.from reports (sessions never: see session.c). */
static const char *const event_classes_served[] = {
	"pool", "host", "VM", "task", "SR", "PBD", "VDI", "VBD", "network",
	"VIF", "PIF", NULL };

static char *event_boot;
static guint event_idle_id;

static const char *
event_boot_id(void)
{
	if (event_boot == NULL)
		event_boot = g_strdup_printf("%08x", g_random_int());
	return event_boot;
}

static char *
event_token(guint64 n)
{
	return g_strdup_printf("%s:%" G_GUINT64_FORMAT, event_boot_id(), n);
}

static gboolean
event_wanted(char **classes, const char *cls)
{
	for (guint i = 0; classes[i]; i++)
		if (strcmp(classes[i], "*") == 0 ||
		    g_ascii_strcasecmp(classes[i], cls) == 0)
			return TRUE;
	return FALSE;
}

static JsonObject *
event_record(guint64 id, gint64 ts_us, const char *cls, const char *op,
	     const char *ref, JsonObject *snapshot)
{
	JsonObject *ev = json_object_new();
	g_autofree char *lcls = g_ascii_strdown(cls, -1);
	g_autofree char *ts = g_strdup_printf("%.6f", ts_us / 1e6);

	json_object_set_int_member(ev, "id", (gint64)id);
	json_object_set_string_member(ev, "timestamp", ts);
	json_object_set_string_member(ev, "class", lcls);
	json_object_set_string_member(ev, "operation", op);
	json_object_set_string_member(ev, "ref", ref);
	if (snapshot)
		json_object_set_object_member(ev, "snapshot",
					      json_object_ref(snapshot));
	return ev;
}

static JsonNode *
event_reply(Api *api, JsonArray *events, char **classes, guint64 last)
{
	JsonObject *r = json_object_new();
	JsonObject *counts = json_object_new();
	g_autofree char *tok = event_token(last);
	const char *const *all = event_classes_served;

	for (guint i = 0; all[i]; i++) {
		if (!event_wanted(classes, all[i]))
			continue;
		g_autofree char *l = g_ascii_strdown(all[i], -1);
		json_object_set_int_member(counts, l,
					   store_count(api->store, all[i]));
	}
	json_object_set_array_member(r, "events", events);
	json_object_set_object_member(r, "valid_ref_counts", counts);
	json_object_set_string_member(r, "token", tok);
	JsonNode *n = json_node_init_object(json_node_alloc(), r);
	json_object_unref(r);
	return n;
}

/* The events after AFTER for CLASSES; NULL when they are lost. */
static JsonArray *
event_collect(Api *api, char **classes, guint64 after)
{
	g_autoptr(GPtrArray) evs = store_events_since(api->store, after);

	if (evs == NULL)
		return NULL;
	JsonArray *a = json_array_new();
	for (guint i = 0; i < evs->len; i++) {
		StoreEvent *ev = evs->pdata[i];
		if (event_wanted(classes, ev->cls))
			json_array_add_object_element(a, event_record(
				ev->id, ev->timestamp_us, ev->cls,
				ev->operation, ev->ref, ev->snapshot));
	}
	return a;
}

static void
waiter_free(Waiter *w)
{
	if (w->timeout_id)
		g_source_remove(w->timeout_id);
	g_strfreev(w->classes);
	call_unref(w->call);
	g_free(w);
}

static void
waiter_answer(Api *api, Waiter *w, JsonArray *events)
{
	api->waiters = g_list_remove(api->waiters, w);
	call_return(w->call, event_reply(api, events, w->classes,
					 store_last_event(api->store)));
	waiter_free(w);
}

static gboolean
waiter_timeout(gpointer data)
{
	Waiter *w = data;
	Api *api = w->call->api;

	w->timeout_id = 0;
	waiter_answer(api, w, json_array_new());
	return G_SOURCE_REMOVE;
}

static gboolean
event_wake(gpointer data)
{
	Api *api = data;
	GList *copy = g_list_copy(api->waiters);

	event_idle_id = 0;
	for (GList *l = copy; l; l = l->next) {
		Waiter *w = l->data;
		JsonArray *a = event_collect(api, w->classes, w->after);
		if (a == NULL) {
			api->waiters = g_list_remove(api->waiters, w);
			call_fail(w->call, xerr_new("EVENTS_LOST", NULL));
			waiter_free(w);
		} else if (json_array_get_length(a) > 0) {
			waiter_answer(api, w, a);
		} else {
			json_array_unref(a);
			w->after = store_last_event(api->store);
		}
	}
	g_list_free(copy);
	return G_SOURCE_REMOVE;
}

void
event_notify(Api *api)
{
	if (api->waiters != NULL && event_idle_id == 0)
		event_idle_id = g_idle_add_full(G_PRIORITY_HIGH_IDLE,
						event_wake, api, NULL);
}

static char **
event_classes(JsonArray *a, GError **error)
{
	GPtrArray *v = g_ptr_array_new();

	for (guint i = 0; i < json_array_get_length(a); i++) {
		JsonNode *n = json_array_get_element(a, i);
		if (!JSON_NODE_HOLDS_VALUE(n) ||
		    json_node_get_value_type(n) != G_TYPE_STRING) {
			g_ptr_array_free(v, TRUE);
			xerr_set(error, "FIELD_TYPE_ERROR", "classes", NULL);
			return NULL;
		}
		g_ptr_array_add(v, g_strdup(json_node_get_string(n)));
	}
	g_ptr_array_add(v, NULL);
	return (char **)g_ptr_array_free(v, FALSE);
}

static JsonArray *
event_current_state(Api *api, char **classes)
{
	JsonArray *a = json_array_new();
	const char *const *all = event_classes_served;

	for (guint c = 0; all[c]; c++) {
		if (!event_wanted(classes, all[c]))
			continue;
		g_autoptr(GPtrArray) objs = store_list(api->store, all[c]);
		for (guint i = 0; i < objs->len; i++) {
			StoreObj *o = objs->pdata[i];
			json_array_add_object_element(a, event_record(
				0, g_get_real_time(), o->cls, "add", o->ref,
				o->rec));
		}
	}
	return a;
}

static void
event_from(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	JsonArray *ca = call_arg_array(call, 1, &e);
	const char *token = ca ? call_arg_string(call, 2, &e) : NULL;
	double timeout = 0;

	if (token == NULL || !call_arg_float(call, 3, &timeout, &e))
		return call_fail(call, e);
	g_auto(GStrv) classes = event_classes(ca, &e);
	if (classes == NULL)
		return call_fail(call, e);

	if (*token == 0) {
		JsonArray *a = event_current_state(api, classes);
		return call_return(call, event_reply(api, a, classes,
					store_last_event(api->store)));
	}
	const char *colon = strchr(token, ':');
	guint64 after = 0;
	if (colon == NULL ||
	    strncmp(token, event_boot_id(), colon - token) != 0 ||
	    !g_ascii_string_to_unsigned(colon + 1, 10, 0, G_MAXUINT64, &after,
					NULL) ||
	    after > store_last_event(api->store))
		return call_fail(call, xerr_new("EVENTS_LOST", NULL));

	JsonArray *a = event_collect(api, classes, after);
	if (a == NULL)
		return call_fail(call, xerr_new("EVENTS_LOST", NULL));
	if (json_array_get_length(a) > 0 || timeout <= 0)
		return call_return(call, event_reply(api, a, classes,
					store_last_event(api->store)));
	json_array_unref(a);

	Waiter *w = g_new0(Waiter, 1);
	w->call = call_ref(call);
	w->classes = g_steal_pointer(&classes);
	w->after = store_last_event(api->store);
	w->timeout_id = g_timeout_add((guint)(MIN(timeout, 3600.0) * 1000),
				      waiter_timeout, w);
	api->waiters = g_list_prepend(api->waiters, w);
}

static void
event_inject(Call *call)
{
	GError *e = NULL;
	const char *cls = call_arg_string(call, 1, &e);
	const char *ref = cls ? call_arg_string(call, 2, &e) : NULL;

	if (ref == NULL)
		return call_fail(call, e);
	StoreObj *o = store_get(call->api->store, ref);
	if (o == NULL || g_ascii_strcasecmp(o->cls, cls) != 0)
		return call_fail(call, xerr_new("HANDLE_INVALID", cls, ref,
						NULL));
	g_autofree char *tok = event_token(store_inject(call->api->store, o));
	event_notify(call->api);
	call_return_string(call, tok);
}

static const Method event_methods[] = {
	{ .name = "from", .fn = event_from, .nargs = 4 },
	{ .name = "inject", .fn = event_inject, .nargs = 3 },
	{ NULL }
};

const ClassDef event_class = {
	.name = "event",
	.methods = event_methods,
};

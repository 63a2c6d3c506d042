/*
 * dispatch: the method table, shared by XML-RPC and JSON-RPC, and the life
 * of a Call.
 *
 * api_new builds one hash table of every method: the ones each class file
 * lists, plus the accessors generated from the class's field table
 * (get_<field>, set_<field>, add_to_/remove_from_ for maps, add_/remove_
 * for sets, get_record, get_all, get_all_records, get_by_uuid and, for
 * named classes, get_by_name_label).  Every entry carries its minimum role;
 * api_dispatch checks the count of arguments, the session and the role, in
 * that order, before a handler runs, so handlers only validate the values.
 *
 * A Call is reference counted: the dispatcher holds one reference until the
 * handler returns and the handler takes another if it answers later.  The
 * reply callback runs exactly once.
 */
#include "api/api.h"

#include <string.h>

#include "common/xerr.h"

static const char *const role_names[ROLE_COUNT] = {
	[ROLE_READ_ONLY] = "read-only",
	[ROLE_VM_OPERATOR] = "vm-operator",
	[ROLE_VM_ADMIN] = "vm-admin",
	[ROLE_VM_POWER_ADMIN] = "vm-power-admin",
	[ROLE_POOL_OPERATOR] = "pool-operator",
	[ROLE_POOL_ADMIN] = "pool-admin",
};

const char *
role_name(Role r)
{
	return r < ROLE_COUNT ? role_names[r] : "unknown";
}

gboolean
role_parse(const char *name, Role *out)
{
	for (int r = 0; r < ROLE_COUNT; r++) {
		if (g_ascii_strcasecmp(name, role_names[r]) == 0) {
			*out = r;
			return TRUE;
		}
	}
	return FALSE;
}

/* ---- Calls ---------------------------------------------------------- */

Call *
call_ref(Call *call)
{
	call->refs++;
	return call;
}

void
call_unref(Call *call)
{
	if (call == NULL || --call->refs > 0)
		return;
	g_free(call->name);
	if (call->args)
		json_array_unref(call->args);
	g_free(call->origin.peer);
	g_free(call->task_ref);
	g_clear_object(&call->cancel);
	g_free(call);
}

static void
call_finish(Call *call, JsonNode *value, const GError *error)
{
	if (call->done)
		return;
	call->done = TRUE;
	if (call->task_ref != NULL) {
		Api *api = call->api;
		StoreObj *task = store_get_typed(api->store, "task",
						 call->task_ref);
		gboolean cancelled = error != NULL &&
				     xerr_is(error, "TASK_CANCELLED");

		if (task != NULL)
			task_finish(api, task, value, error, cancelled);
		event_notify(api);
		/* Drops the table's reference; the caller still holds one. */
		if (g_hash_table_remove(api->task_calls, call->task_ref))
			call_unref(call);
		return;
	}
	call->reply(value, error, call->reply_data);
}

void
call_return(Call *call, JsonNode *value)
{
	g_autoptr(JsonNode) v = value;

	if (v == NULL) {
		v = json_node_new(JSON_NODE_VALUE);
		json_node_set_string(v, "");
	}
	call_finish(call, v, NULL);
}

void
call_return_string(Call *call, const char *s)
{
	JsonNode *n = json_node_new(JSON_NODE_VALUE);

	json_node_set_string(n, s ? s : "");
	call_return(call, n);
}

void
call_fail(Call *call, GError *error)
{
	g_autoptr(GError) e = error;

	call_finish(call, NULL, e);
}

/* ---- Arguments ------------------------------------------------------ */

static JsonNode *
call_arg(Call *call, guint i)
{
	return i < json_array_get_length(call->args)
		       ? json_array_get_element(call->args, i)
		       : NULL;
}

static void
call_type_error(Call *call, guint i, GError **error)
{
	g_autofree char *what = g_strdup_printf("argument %u", i);

	xerr_set(error, "FIELD_TYPE_ERROR", what, NULL);
}

const char *
call_arg_string(Call *call, guint i, GError **error)
{
	JsonNode *n = call_arg(call, i);

	if (n == NULL || json_node_get_value_type(n) != G_TYPE_STRING) {
		call_type_error(call, i, error);
		return NULL;
	}
	return json_node_get_string(n);
}

gboolean
call_arg_bool(Call *call, guint i, gboolean *out, GError **error)
{
	JsonNode *n = call_arg(call, i);

	if (n != NULL && json_node_get_value_type(n) == G_TYPE_BOOLEAN) {
		*out = json_node_get_boolean(n);
		return TRUE;
	}
	if (n != NULL && json_node_get_value_type(n) == G_TYPE_STRING) {
		const char *s = json_node_get_string(n);
		if (g_ascii_strcasecmp(s, "true") == 0 || !strcmp(s, "1")) {
			*out = TRUE;
			return TRUE;
		}
		if (g_ascii_strcasecmp(s, "false") == 0 || !strcmp(s, "0")) {
			*out = FALSE;
			return TRUE;
		}
	}
	call_type_error(call, i, error);
	return FALSE;
}

gboolean
call_arg_int(Call *call, guint i, gint64 *out, GError **error)
{
	JsonNode *n = call_arg(call, i);

	/* XAPI sends 64-bit ints as strings over XML-RPC. */
	if (n != NULL && json_node_get_value_type(n) == G_TYPE_INT64) {
		*out = json_node_get_int(n);
		return TRUE;
	}
	if (n != NULL && json_node_get_value_type(n) == G_TYPE_STRING &&
	    g_ascii_string_to_signed(json_node_get_string(n), 10, G_MININT64,
				     G_MAXINT64, out, NULL))
		return TRUE;
	call_type_error(call, i, error);
	return FALSE;
}

gboolean
call_arg_float(Call *call, guint i, double *out, GError **error)
{
	JsonNode *n = call_arg(call, i);
	GType t = n ? json_node_get_value_type(n) : G_TYPE_INVALID;

	if (t == G_TYPE_DOUBLE || t == G_TYPE_INT64) {
		*out = json_node_get_double(n);
		return TRUE;
	}
	if (t == G_TYPE_STRING) {
		char *end;
		const char *s = json_node_get_string(n);
		*out = g_ascii_strtod(s, &end);
		if (*s && *end == 0)
			return TRUE;
	}
	call_type_error(call, i, error);
	return FALSE;
}

JsonObject *
call_arg_map(Call *call, guint i, GError **error)
{
	JsonNode *n = call_arg(call, i);

	if (n == NULL || !JSON_NODE_HOLDS_OBJECT(n)) {
		call_type_error(call, i, error);
		return NULL;
	}
	return json_node_get_object(n);
}

JsonArray *
call_arg_array(Call *call, guint i, GError **error)
{
	JsonNode *n = call_arg(call, i);

	if (n == NULL || !JSON_NODE_HOLDS_ARRAY(n)) {
		call_type_error(call, i, error);
		return NULL;
	}
	return json_node_get_array(n);
}

StoreObj *
call_arg_obj(Call *call, guint i, const char *cls, GError **error)
{
	const char *ref = call_arg_string(call, i, error);

	if (ref == NULL)
		return NULL;
	StoreObj *o = store_get_typed(call->api->store, cls, ref);
	if (o == NULL)
		xerr_set(error, "HANDLE_INVALID", cls, ref, NULL);
	return o;
}

void
call_set_progress(Call *call, double progress)
{
	if (call->task_ref == NULL)
		return;
	StoreObj *t = store_get_typed(call->api->store, "task",
				      call->task_ref);
	if (t == NULL)
		return;
	double old = json_object_get_double_member_with_default(
		t->rec, "progress", 0);
	if (progress < old) /* progress never goes backwards */
		return;
	task_set_field(call->api, t, "progress", json_node_init_double(
			       json_node_alloc(), progress));
}

void
call_task_update(Call *call, const char *key, const char *value)
{
	g_autoptr(JsonObject) kv = json_object_new();

	json_object_set_string_member(kv, key, value);
	call_task_update_many(call, kv);
}

void
call_task_update_many(Call *call, JsonObject *kv)
{
	if (call->task_ref == NULL)
		return;
	StoreObj *t = store_get_typed(call->api->store, "task",
				      call->task_ref);
	if (t == NULL)
		return;
	g_autoptr(JsonObject) rec = store_obj_dup(t);
	JsonObject *oc = json_object_get_object_member(rec, "other_config");
	g_autoptr(GList) keys = json_object_get_members(kv);
	for (GList *l = keys; l; l = l->next)
		json_object_set_member(oc, l->data, json_node_copy(
			json_object_get_member(kv, l->data)));
	store_replace(call->api->store, t, json_object_ref(rec), NULL);
	event_notify(call->api);
}

void
call_task_set_cancellable(Call *call, gboolean cancellable)
{
	if (call->task_ref == NULL)
		return;
	StoreObj *t = store_get_typed(call->api->store, "task",
				      call->task_ref);
	if (t == NULL)
		return;
	JsonArray *ops = json_array_new();
	if (cancellable)
		json_array_add_string_element(ops, "cancel");
	task_set_field(call->api, t, "allowed_operations",
		       json_node_init_array(json_node_alloc(), ops));
	json_array_unref(ops);
	event_notify(call->api);
}

/* ---- Generated accessors -------------------------------------------- */

static StoreObj *
gen_self(Call *call, GError **error)
{
	return call_arg_obj(call, 1, call->method->cls->name, error);
}

static void
gen_refresh(Call *call, StoreObj *o)
{
	if (call->method->cls->refresh)
		call->method->cls->refresh(call->api, o);
}

static void
gen_get_field(Call *call)
{
	GError *e = NULL;
	StoreObj *o = gen_self(call, &e);

	if (o == NULL)
		return call_fail(call, e);
	gen_refresh(call, o);
	JsonNode *v = json_object_get_member(o->rec, call->method->field->name);
	call_return(call, v ? json_node_copy(v) : NULL);
}

gboolean
api_field_check(const Field *f, JsonNode *v, GError **error)
{
	GType t = JSON_NODE_HOLDS_VALUE(v) ? json_node_get_value_type(v)
					   : G_TYPE_INVALID;
	gboolean ok;

	switch (f->type) {
	case FT_STRING:
	case FT_REF:
	case FT_DATETIME:
		ok = t == G_TYPE_STRING;
		break;
	case FT_INT:
		ok = t == G_TYPE_INT64 ||
		     (t == G_TYPE_STRING &&
		      g_ascii_string_to_signed(json_node_get_string(v), 10,
					       G_MININT64, G_MAXINT64, NULL,
					       NULL));
		break;
	case FT_FLOAT:
		ok = t == G_TYPE_DOUBLE || t == G_TYPE_INT64;
		break;
	case FT_BOOL:
		ok = t == G_TYPE_BOOLEAN;
		break;
	case FT_SET:
		ok = JSON_NODE_HOLDS_ARRAY(v);
		for (guint i = 0; ok && i < json_array_get_length(
				json_node_get_array(v)); i++) {
			JsonNode *e = json_array_get_element(
				json_node_get_array(v), i);
			ok = JSON_NODE_HOLDS_VALUE(e) &&
			     json_node_get_value_type(e) == G_TYPE_STRING;
		}
		break;
	case FT_MAP: {
		ok = JSON_NODE_HOLDS_OBJECT(v);
		if (!ok)
			break;
		g_autoptr(GList) members = json_object_get_values(
			json_node_get_object(v));
		for (GList *l = members; ok && l; l = l->next)
			ok = JSON_NODE_HOLDS_VALUE(l->data) &&
			     json_node_get_value_type(l->data) == G_TYPE_STRING;
		break;
	}
	default:
		ok = FALSE;
	}
	if (!ok)
		xerr_set(error, "FIELD_TYPE_ERROR", f->name, NULL);
	return ok;
}

JsonNode *
api_field_normalise(const Field *f, JsonNode *v)
{
	if (f->type == FT_INT && json_node_get_value_type(v) == G_TYPE_STRING) {
		gint64 i = 0;
		g_ascii_string_to_signed(json_node_get_string(v), 10,
					 G_MININT64, G_MAXINT64, &i, NULL);
		return json_node_init_int(json_node_alloc(), i);
	}
	if (f->type == FT_FLOAT)
		return json_node_init_double(json_node_alloc(),
					     json_node_get_double(v));
	return json_node_copy(v);
}

static gboolean
gen_store(Call *call, StoreObj *o, JsonObject *rec, GError **error)
{
	gboolean ok = store_replace(call->api->store, o, rec, error);

	event_notify(call->api);
	return ok;
}

static void
gen_set_field(Call *call)
{
	GError *e = NULL;
	StoreObj *o = gen_self(call, &e);
	const Field *f = call->method->field;
	JsonNode *v = json_array_get_element(call->args, 2);

	if (o == NULL || !api_field_check(f, v, &e))
		return call_fail(call, e);
	JsonObject *rec = store_obj_dup(o);
	json_object_set_member(rec, f->name, api_field_normalise(f, v));
	if (!gen_store(call, o, rec, &e))
		return call_fail(call, e);
	call_return(call, NULL);
}

/* map: add_to_<f>(self, key, value), remove_from_<f>(self, key);
 * set: add_<f>(self, value), remove_<f>(self, value). */
static void
gen_change_collection(Call *call, gboolean add)
{
	GError *e = NULL;
	StoreObj *o = gen_self(call, &e);
	const Field *f = call->method->field;
	const char *key = o ? call_arg_string(call, 2, &e) : NULL;
	const char *val = NULL;

	if (key == NULL)
		return call_fail(call, e);
	if (add && f->type == FT_MAP &&
	    (val = call_arg_string(call, 3, &e)) == NULL)
		return call_fail(call, e);

	JsonObject *rec = store_obj_dup(o);
	if (f->type == FT_MAP) {
		JsonObject *m = json_object_get_object_member(rec, f->name);
		if (add)
			json_object_set_string_member(m, key, val);
		else if (json_object_has_member(m, key))
			json_object_remove_member(m, key);
	} else {
		JsonArray *a = json_object_get_array_member(rec, f->name);
		JsonArray *na = json_array_new();
		for (guint i = 0; i < json_array_get_length(a); i++) {
			const char *s = json_array_get_string_element(a, i);
			if (g_strcmp0(s, key) != 0)
				json_array_add_string_element(na, s);
		}
		if (add)
			json_array_add_string_element(na, key);
		json_object_set_array_member(rec, f->name, na);
	}
	if (!gen_store(call, o, rec, &e))
		return call_fail(call, e);
	call_return(call, NULL);
}

static void
gen_add(Call *call)
{
	gen_change_collection(call, TRUE);
}

static void
gen_remove(Call *call)
{
	gen_change_collection(call, FALSE);
}

JsonNode *
api_record_node(Api *api, StoreObj *o)
{
	return json_node_init_object(json_node_alloc(), o->rec);
}

static void
gen_get_record(Call *call)
{
	GError *e = NULL;
	StoreObj *o = gen_self(call, &e);

	if (o == NULL)
		return call_fail(call, e);
	gen_refresh(call, o);
	call_return(call, api_record_node(call->api, o));
}

static void
gen_get_all(Call *call)
{
	g_autoptr(GPtrArray) objs = store_list(call->api->store,
					       call->method->cls->name);
	JsonArray *a = json_array_sized_new(objs->len);

	for (guint i = 0; i < objs->len; i++)
		json_array_add_string_element(a,
			((StoreObj *)objs->pdata[i])->ref);
	call_return(call, json_node_init_array(json_node_alloc(), a));
	json_array_unref(a);
}

static void
gen_get_all_records(Call *call)
{
	g_autoptr(GPtrArray) objs = store_list(call->api->store,
					       call->method->cls->name);
	JsonObject *m = json_object_new();

	for (guint i = 0; i < objs->len; i++) {
		StoreObj *o = objs->pdata[i];
		gen_refresh(call, o);
		json_object_set_object_member(m, o->ref,
					      json_object_ref(o->rec));
	}
	call_return(call, json_node_init_object(json_node_alloc(), m));
	json_object_unref(m);
}

static void
gen_get_by_uuid(Call *call)
{
	GError *e = NULL;
	const char *uuid = call_arg_string(call, 1, &e);

	if (uuid == NULL)
		return call_fail(call, e);
	StoreObj *o = store_get_by_uuid(call->api->store,
					call->method->cls->name, uuid);
	if (o == NULL)
		return call_fail(call, xerr_new("UUID_INVALID",
			call->method->cls->name, uuid, NULL));
	call_return_string(call, o->ref);
}

static void
gen_get_by_name_label(Call *call)
{
	GError *e = NULL;
	const char *name = call_arg_string(call, 1, &e);

	if (name == NULL)
		return call_fail(call, e);
	g_autoptr(GPtrArray) objs = store_list(call->api->store,
					       call->method->cls->name);
	JsonArray *a = json_array_new();
	for (guint i = 0; i < objs->len; i++) {
		StoreObj *o = objs->pdata[i];
		if (g_strcmp0(json_object_get_string_member_with_default(
				      o->rec, "name_label", ""), name) == 0)
			json_array_add_string_element(a, o->ref);
	}
	call_return(call, json_node_init_array(json_node_alloc(), a));
	json_array_unref(a);
}

/* ---- Registration --------------------------------------------------- */

static void
api_register(Api *api, const char *cls, const Method *m)
{
	Method *copy = g_memdup2(m, sizeof *m);
	char *name = cls ? g_strconcat(cls, ".", m->name, NULL)
			 : g_strdup(m->name);

	g_hash_table_replace(api->methods, name, copy);
	g_ptr_array_add(api->method_names, name);
	if (m->async) {
		char *aname = g_strconcat("Async.", name, NULL);
		g_ptr_array_add(api->method_names, aname);
	}
}

/* An interned "a" "b" (method names live as long as the process). */
static const char *
api_intern(const char *a, const char *b)
{
	g_autofree char *s = g_strconcat(a, b, NULL);

	return g_intern_string(s);
}

static void
api_register_generated(Api *api, const ClassDef *c)
{
	Method base = { .cls = c, .role = ROLE_READ_ONLY, .nargs = 2 };

	for (const Field *f = c->fields; f->name; f++) {
		Method m = base;
		m.field = f;
		m.name = api_intern("get_", f->name);
		m.fn = gen_get_field;
		api_register(api, c->name, &m);
		if (!f->writable)
			continue;
		m.role = c->set_role;
		m.name = api_intern("set_", f->name);
		m.fn = gen_set_field;
		m.nargs = 3;
		api_register(api, c->name, &m);
		if (f->type != FT_MAP && f->type != FT_SET)
			continue;
		gboolean map = f->type == FT_MAP;
		m.name = api_intern(map ? "add_to_" : "add_",
						     f->name);
		m.fn = gen_add;
		m.nargs = map ? 4 : 3;
		api_register(api, c->name, &m);
		m.name = api_intern(
			map ? "remove_from_" : "remove_", f->name);
		m.fn = gen_remove;
		m.nargs = 3;
		api_register(api, c->name, &m);
	}
	static const struct {
		const char *name;
		MethodFn fn;
		int nargs;
	} whole[] = {
		{ "get_record", gen_get_record, 2 },
		{ "get_all", gen_get_all, 1 },
		{ "get_all_records", gen_get_all_records, 1 },
		{ "get_by_uuid", gen_get_by_uuid, 2 },
		{ "get_by_name_label", gen_get_by_name_label, 2 },
	};
	for (guint i = 0; i < G_N_ELEMENTS(whole); i++) {
		if (!c->named && i == G_N_ELEMENTS(whole) - 1)
			break;
		Method m = base;
		m.name = whole[i].name;
		m.fn = whole[i].fn;
		m.nargs = whole[i].nargs;
		api_register(api, c->name, &m);
	}
}

static void
system_list_methods(Call *call)
{
	JsonArray *a = json_array_new();

	for (guint i = 0; i < call->api->method_names->len; i++)
		json_array_add_string_element(
			a, call->api->method_names->pdata[i]);
	call_return(call, json_node_init_array(json_node_alloc(), a));
	json_array_unref(a);
}

static const Method system_methods[] = {
	{ .name = "system.listMethods", .fn = system_list_methods,
	  .nargs = 0, .no_session = TRUE },
	{ NULL }
};

static const ClassDef *const api_classes[] = {
	&session_class, &pool_class, &host_class, &vm_class, &task_class,
	&event_class, &network_class, &vif_class, &pif_class,
	&sr_class, &pbd_class, &vdi_class, &vbd_class, NULL,
};

static gboolean
api_sweep(gpointer data)
{
	session_sweep(data);
	return G_SOURCE_CONTINUE;
}

Api *
api_new(Store *store, const ApiConfig *cfg, GError **error)
{
	Api *api = g_new0(Api, 1);

	api->store = store;
	api->cfg = *cfg;
	api->methods = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					     g_free);
	api->method_names = g_ptr_array_new_with_free_func(g_free);
	api->sessions = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
		(GDestroyNotify)session_free);
	api->task_calls = g_hash_table_new(g_str_hash, g_str_equal);
	task_gc_init(api);

	for (const Method *m = system_methods; m->name; m++)
		api_register(api, NULL, m);
	for (guint i = 0; api_classes[i]; i++) {
		const ClassDef *c = api_classes[i];
		for (const Method *m = c->methods; m && m->name; m++) {
			Method copy = *m;
			copy.cls = c;
			api_register(api, c->name, &copy);
		}
		if (c->fields)
			api_register_generated(api, c);
	}
	if (!host_init(api, error) || !sr_init(api, error) ||
	    !vm_storage_upgrade(api, error)) {
		api_free(api);
		return NULL;
	}
	vm_net_reconcile(api);
	api->sweep_id = g_timeout_add_seconds(30, api_sweep, api);
	return api;
}

void
api_free(Api *api)
{
	if (api == NULL)
		return;
	if (api->sweep_id)
		g_source_remove(api->sweep_id);
	task_gc_free(api);
	g_hash_table_unref(api->task_calls);
	g_hash_table_unref(api->sessions);
	g_ptr_array_unref(api->method_names);
	g_hash_table_unref(api->methods);
	g_free(api->host_ref);
	g_free(api->pool_ref);
	g_free(api);
}

/* ---- Dispatch ------------------------------------------------------- */

static GError *
api_permission_error(const char *method, Role needed)
{
	g_autoptr(GString) roles = g_string_new(NULL);
	g_autofree char *perm = g_ascii_strdown(method, -1);

	for (int r = ROLE_COUNT - 1; r >= (int)needed; r--)
		g_string_append_printf(roles, "%s%s", roles->len ? ", " : "",
				       role_names[r]);
	g_autofree char *msg = g_strdup_printf(
		"No permission in user session. (Roles with this permission: "
		"%s)", roles->str);
	return xerr_new("RBAC_PERMISSION_DENIED", perm, msg, NULL);
}

void
api_dispatch(Api *api, const char *name, JsonArray *args,
	     const CallOrigin *origin, CallReplyFn reply, gpointer reply_data)
{
	gboolean async = g_str_has_prefix(name, "Async.");
	const char *base = async ? name + 6 : name;
	const Method *m = g_hash_table_lookup(api->methods, base);
	guint nargs = json_array_get_length(args);

	if (m == NULL || (async && !m->async)) {
		g_autoptr(GError) e = xerr_new("MESSAGE_METHOD_UNKNOWN", name,
					       NULL);
		return reply(NULL, e, reply_data);
	}
	if ((int)nargs != m->nargs &&
	    !(m->nargs_min && (int)nargs >= m->nargs_min &&
	      (int)nargs <= m->nargs)) {
		g_autofree char *want = g_strdup_printf("%d", m->nargs);
		g_autofree char *got = g_strdup_printf("%u", nargs);
		g_autoptr(GError) e = xerr_new(
			"MESSAGE_PARAMETER_COUNT_MISMATCH", name, want, got,
			NULL);
		return reply(NULL, e, reply_data);
	}

	Session *s = NULL;
	if (!m->no_session) {
		JsonNode *n = json_array_get_element(args, 0);
		const char *ref = JSON_NODE_HOLDS_VALUE(n) &&
				  json_node_get_value_type(n) == G_TYPE_STRING
					  ? json_node_get_string(n)
					  : "";
		s = session_lookup(api, ref);
		if (s == NULL) {
			g_autoptr(GError) e = xerr_new("SESSION_INVALID", ref,
						       NULL);
			return reply(NULL, e, reply_data);
		}
		if (s->role < m->role) {
			g_autoptr(GError) e = api_permission_error(name,
								   m->role);
			return reply(NULL, e, reply_data);
		}
	}

	Call *call = g_new0(Call, 1);
	call->refs = 1;
	call->api = api;
	call->method = m;
	call->name = g_strdup(base);
	call->args = json_array_ref(args);
	call->session = s;
	call->origin = *origin;
	call->origin.peer = g_strdup(origin->peer);
	call->reply = reply;
	call->reply_data = reply_data;

	if (async) {
		GError *e = NULL;
		StoreObj *task = task_create(api, name, s, &e);
		if (task == NULL) {
			call->done = TRUE;
			reply(NULL, e, reply_data);
			g_error_free(e);
			call_unref(call);
			return;
		}
		call->task_ref = g_strdup(task->ref);
		/* Only a task can be cancelled (task.cancel). */
		call->cancel = g_cancellable_new();
		g_hash_table_insert(api->task_calls, call->task_ref,
				    call_ref(call));
		JsonNode *tref = json_node_init_string(json_node_alloc(),
						       task->ref);
		reply(tref, NULL, reply_data);
		json_node_unref(tref);
		event_notify(api);
	}
	m->fn(call);
	call_unref(call);
}

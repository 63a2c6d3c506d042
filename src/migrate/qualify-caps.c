/*
 * qualify-caps: what QEMU on this host offers, for qualification
 * (qualify.h, docs/qualification.md), and the helpers the checks share.
 *
 * HostCaps are asked over QMP on the stdio of a short-lived QEMU with
 * -machine none.  One run answers the version, the machine types, the CPU
 * models with their unavailable features and the full expansion of the
 * models the host is likely to be asked about (its default CPU model and
 * its cpu_model_max); about 40 ms here.  Other models are expanded on
 * demand by another short run and cached.  Expanding all 130-odd models
 * at start would cost about 200 ms and 1.2 MB of JSON for models nobody
 * uses.
 *
 * Feature names are canonical: QEMU registers aliases (sse4_1, sse4-1 for
 * sse4.1; lahf_lm for lahf-lm) and only the canonical name is kept.  The
 * typed JSON accessors here serve both the probe's replies and the facts
 * a source sends (qualify.c), which arrive over the network.
 */
#include "migrate/qualify-int.h"

#include <string.h>
#include <sys/utsname.h>

#include "common/xerr.h"
#include "qemu/driver.h"

#define QUALIFY_TIMEOUT_MS 5000            /* a QEMU probe, at most */
#define QUALIFY_OUTPUT_MAX (32 * 1024 * 1024) /* QMP replies, at most */

/* ---- CPU feature names ---------------------------------------------- */

/* QEMU's x86 property aliases that are not a plain '_' for '-'
 * (target/i386/cpu.c, x86_cpu_common_class_init). */
static const struct {
	const char *alias;
	const char *name;
} qualify_feature_aliases[] = {
	{ "sse3", "pni" },
	{ "pclmuldq", "pclmulqdq" },
	{ "sse4-1", "sse4.1" },
	{ "sse4-2", "sse4.2" },
	{ "xd", "nx" },
	{ "ffxsr", "fxsr-opt" },
	{ "i64", "lm" },
};

char *
qualify_feature_name(const char *prop)
{
	char *s = g_strdelimit(g_strdup(prop), "_", '-');

	for (guint i = 0; i < G_N_ELEMENTS(qualify_feature_aliases); i++) {
		if (strcmp(s, qualify_feature_aliases[i].alias) == 0) {
			g_free(s);
			return g_strdup(qualify_feature_aliases[i].name);
		}
	}
	return s;
}

GHashTable *
qualify_set_new(void)
{
	return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

static int
qualify_strcmp(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The members of SET, sorted, in a new array of borrowed strings. */
GPtrArray *
qualify_set_sorted(GHashTable *set)
{
	GPtrArray *a = g_ptr_array_new();
	GHashTableIter it;
	gpointer k;

	g_hash_table_iter_init(&it, set);
	while (g_hash_table_iter_next(&it, &k, NULL))
		g_ptr_array_add(a, k);
	g_ptr_array_sort(a, qualify_strcmp);
	return a;
}

char *
qualify_join(GPtrArray *a, const char *sep)
{
	g_autoptr(GString) s = g_string_new(NULL);

	for (guint i = 0; i < a->len; i++)
		g_string_append_printf(s, "%s%s", i ? sep : "",
				       (const char *)a->pdata[i]);
	return g_strdup(s->str);
}

/* ---- Typed access to JSON from elsewhere ---------------------------- */

JsonNode *
qualify_member(JsonObject *o, const char *key)
{
	return o && json_object_has_member(o, key)
		       ? json_object_get_member(o, key) : NULL;
}

const char *
qualify_str(JsonObject *o, const char *key)
{
	JsonNode *n = qualify_member(o, key);

	return n && JSON_NODE_HOLDS_VALUE(n) &&
		       json_node_get_value_type(n) == G_TYPE_STRING
		       ? json_node_get_string(n) : NULL;
}

gboolean
qualify_int(JsonObject *o, const char *key, gint64 *out)
{
	JsonNode *n = qualify_member(o, key);

	if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) ||
	    json_node_get_value_type(n) != G_TYPE_INT64)
		return FALSE;
	*out = json_node_get_int(n);
	return TRUE;
}

gboolean
qualify_bool(JsonObject *o, const char *key, gboolean *out)
{
	JsonNode *n = qualify_member(o, key);

	if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) ||
	    json_node_get_value_type(n) != G_TYPE_BOOLEAN)
		return FALSE;
	*out = json_node_get_boolean(n);
	return TRUE;
}

JsonObject *
qualify_obj(JsonObject *o, const char *key)
{
	JsonNode *n = qualify_member(o, key);

	return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

JsonArray *
qualify_arr(JsonObject *o, const char *key)
{
	JsonNode *n = qualify_member(o, key);

	return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

/* A string in a string map of a record (platform, other_config). */
const char *
qualify_map_get(JsonObject *rec, const char *map, const char *key)
{
	const char *v = qualify_str(qualify_obj(rec, map), key);

	return v && *v ? v : NULL;
}

/* ---- Host capabilities ---------------------------------------------- */

static void
qualify_model_free(gpointer p)
{
	QualifyModel *m = p;

	g_free(m->alias_of);
	g_hash_table_unref(m->unavailable);
	g_free(m);
}

static void
qualify_set_unref(gpointer p)
{
	if (p != NULL)
		g_hash_table_unref(p);
}

static HostCaps *
qualify_caps_new(void)
{
	HostCaps *caps = g_new0(HostCaps, 1);
	struct utsname un;

	caps->arch = g_strdup(uname(&un) == 0 ? un.machine : "unknown");
	caps->qemu_version = g_strdup("");
	caps->machines = g_hash_table_new_full(g_str_hash, g_str_equal,
					       g_free, g_free);
	caps->machine_list = g_ptr_array_new_with_free_func(g_free);
	caps->models = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					     qualify_model_free);
	caps->expansions = g_hash_table_new_full(g_str_hash, g_str_equal,
						 g_free, qualify_set_unref);
	return caps;
}

void
qualify_caps_free(HostCaps *caps)
{
	if (caps == NULL)
		return;
	g_free(caps->error);
	g_free(caps->arch);
	g_free(caps->accel);
	g_free(caps->qemu_version);
	g_free(caps->default_machine);
	g_hash_table_unref(caps->machines);
	g_ptr_array_unref(caps->machine_list);
	g_hash_table_unref(caps->models);
	g_hash_table_unref(caps->expansions);
	g_free(caps);
}

/* The accelerator the probe runs with: the one guests get, since the CPU
 * models' unavailable features depend on it. */
static const char *
qualify_accel(Api *api)
{
	if (api->qemu != NULL)
		return qemu_driver_accel(api);
	return api->cfg.accel && strcmp(api->cfg.accel, "kvm") == 0 ? "kvm"
								    : "tcg";
}

/* Appends one QMP command, with ID, as a line of INPUT.  Takes ARGS. */
static void
qualify_cmd(GString *input, const char *id, const char *execute,
	    JsonObject *args)
{
	g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
	JsonObject *o = json_object_new();

	json_object_set_string_member(o, "execute", execute);
	if (args != NULL)
		json_object_set_object_member(o, "arguments", args);
	json_object_set_string_member(o, "id", id);
	json_node_take_object(node, o);
	g_autofree char *text = json_to_string(node, FALSE);
	g_string_append_printf(input, "%s\n", text);
}

static void
qualify_cmd_expand(GString *input, const char *model)
{
	JsonObject *args = json_object_new();
	JsonObject *m = json_object_new();
	g_autofree char *id = g_strdup_printf("expand:%s", model);

	json_object_set_string_member(m, "name", model);
	json_object_set_string_member(args, "type", "full");
	json_object_set_object_member(args, "model", m);
	qualify_cmd(input, id, "query-cpu-model-expansion", args);
}

typedef struct {
	gboolean done;
	char *out;
	GError *error;
} QualifyRun;

static void
qualify_run_done(GObject *src, GAsyncResult *res, gpointer data)
{
	QualifyRun *r = data;

	g_subprocess_communicate_utf8_finish(G_SUBPROCESS(src), res, &r->out,
					     NULL, &r->error);
	r->done = TRUE;
}

static gboolean
qualify_run_timeout(gpointer p)
{
	g_subprocess_force_exit(p);
	return G_SOURCE_REMOVE;
}

/* Runs QEMU with -machine none, feeds it INPUT (QMP lines ending with a
 * quit) and returns its replies keyed by their "id" (JsonNode objects:
 * {"return": ...} or {"error": ...}), or NULL with ERROR set.  Runs in a
 * private main context so that the caller's loop does not turn meanwhile;
 * a QEMU that does not finish within QUALIFY_TIMEOUT_MS is killed. */
static GHashTable *
qualify_qemu_run(Api *api, const char *accel, const char *input,
		 GError **error)
{
	const char *argv[] = { api->cfg.qemu_binary, "-machine", "none",
			       "-accel", accel, "-nodefaults", "-display",
			       "none", "-qmp", "stdio", NULL };
	QualifyRun r = { 0 };

	g_autoptr(GSubprocess) p = g_subprocess_newv(argv,
		G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
		G_SUBPROCESS_FLAGS_STDERR_SILENCE, error);
	if (p == NULL)
		return NULL;

	GMainContext *ctx = g_main_context_new();
	g_main_context_push_thread_default(ctx);
	g_subprocess_communicate_utf8_async(p, input, NULL, qualify_run_done,
					    &r);
	GSource *t = g_timeout_source_new(QUALIFY_TIMEOUT_MS);
	g_source_set_callback(t, qualify_run_timeout, p, NULL);
	g_source_attach(t, ctx);
	while (!r.done)
		g_main_context_iteration(ctx, TRUE);
	gboolean timed_out = g_source_is_destroyed(t);
	g_source_destroy(t);
	g_source_unref(t);
	g_main_context_pop_thread_default(ctx);
	g_main_context_unref(ctx);

	g_autofree char *out = r.out;
	if (r.error != NULL) {
		g_propagate_error(error, r.error);
		return NULL;
	}
	if (timed_out) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
			    "%s did not answer QMP within %d s",
			    api->cfg.qemu_binary, QUALIFY_TIMEOUT_MS / 1000);
		return NULL;
	}
	if (out == NULL || strlen(out) > QUALIFY_OUTPUT_MAX) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "%s gave no usable QMP output",
			    api->cfg.qemu_binary);
		return NULL;
	}

	GHashTable *replies = g_hash_table_new_full(g_str_hash, g_str_equal,
		g_free, (GDestroyNotify)json_node_unref);
	g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
	for (guint i = 0; lines[i]; i++) {
		g_autoptr(JsonParser) parser = json_parser_new();
		if (*lines[i] == 0 ||
		    !json_parser_load_from_data(parser, lines[i], -1, NULL))
			continue;
		JsonNode *root = json_parser_get_root(parser);
		if (!JSON_NODE_HOLDS_OBJECT(root))
			continue;
		const char *id = qualify_str(json_node_get_object(root), "id");
		if (id != NULL)
			g_hash_table_replace(replies, g_strdup(id),
					     json_node_ref(root));
	}
	if (g_hash_table_size(replies) == 0) {
		g_hash_table_unref(replies);
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "%s answered no QMP command (-accel %s)",
			    api->cfg.qemu_binary, accel);
		return NULL;
	}
	return replies;
}

static JsonNode *
qualify_reply(GHashTable *replies, const char *id)
{
	JsonNode *n = g_hash_table_lookup(replies, id);

	return n ? qualify_member(json_node_get_object(n), "return") : NULL;
}

/* Keeps the expansion of MODEL from its reply (or its absence). */
static void
qualify_caps_keep_expansion(HostCaps *caps, GHashTable *replies,
			    const char *model)
{
	g_autofree char *id = g_strdup_printf("expand:%s", model);
	JsonNode *ret = qualify_reply(replies, id);
	JsonObject *props = ret && JSON_NODE_HOLDS_OBJECT(ret)
		? qualify_obj(qualify_obj(json_node_get_object(ret), "model"),
			      "props")
		: NULL;
	GHashTable *set = NULL;

	if (props != NULL) {
		set = qualify_set_new();
		g_autoptr(GList) names = json_object_get_members(props);
		for (GList *l = names; l; l = l->next) {
			gboolean on = FALSE;
			if (qualify_bool(props, l->data, &on) && on)
				g_hash_table_add(set,
					qualify_feature_name(l->data));
		}
	}
	g_hash_table_replace(caps->expansions, g_strdup(model), set);
}

static void
qualify_caps_keep_version(HostCaps *caps, GHashTable *replies)
{
	JsonNode *ret = qualify_reply(replies, "version");
	JsonObject *q = ret && JSON_NODE_HOLDS_OBJECT(ret)
		? qualify_obj(json_node_get_object(ret), "qemu") : NULL;
	gint64 major, minor, micro;

	if (qualify_int(q, "major", &major) && qualify_int(q, "minor", &minor) &&
	    qualify_int(q, "micro", &micro)) {
		g_free(caps->qemu_version);
		caps->qemu_version = g_strdup_printf(
			"%" G_GINT64_FORMAT ".%" G_GINT64_FORMAT
			".%" G_GINT64_FORMAT, major, minor, micro);
	}
}

static void
qualify_caps_keep_machines(HostCaps *caps, GHashTable *replies)
{
	JsonNode *ret = qualify_reply(replies, "machines");
	JsonArray *a = ret && JSON_NODE_HOLDS_ARRAY(ret)
		? json_node_get_array(ret) : NULL;

	for (guint i = 0; a && i < json_array_get_length(a); i++) {
		JsonNode *n = json_array_get_element(a, i);
		JsonObject *m = JSON_NODE_HOLDS_OBJECT(n)
			? json_node_get_object(n) : NULL;
		const char *name = qualify_str(m, "name");
		const char *alias = qualify_str(m, "alias");
		gboolean def = FALSE;

		if (name == NULL)
			continue;
		g_hash_table_replace(caps->machines, g_strdup(name),
				     g_strdup(name));
		g_ptr_array_add(caps->machine_list, g_strdup(name));
		if (alias != NULL) {
			g_hash_table_replace(caps->machines, g_strdup(alias),
					     g_strdup(name));
			g_ptr_array_add(caps->machine_list,
				g_strdup_printf("%s=%s", alias, name));
		}
		if (qualify_bool(m, "is-default", &def) && def) {
			g_free(caps->default_machine);
			caps->default_machine = g_strdup(name);
		}
	}
	g_ptr_array_sort(caps->machine_list, qualify_strcmp);
}

static void
qualify_caps_keep_models(HostCaps *caps, GHashTable *replies)
{
	JsonNode *ret = qualify_reply(replies, "cpus");
	JsonArray *a = ret && JSON_NODE_HOLDS_ARRAY(ret)
		? json_node_get_array(ret) : NULL;

	for (guint i = 0; a && i < json_array_get_length(a); i++) {
		JsonNode *n = json_array_get_element(a, i);
		JsonObject *c = JSON_NODE_HOLDS_OBJECT(n)
			? json_node_get_object(n) : NULL;
		const char *name = qualify_str(c, "name");
		JsonArray *un = qualify_arr(c, "unavailable-features");

		if (name == NULL)
			continue;
		QualifyModel *m = g_new0(QualifyModel, 1);
		m->alias_of = g_strdup(qualify_str(c, "alias-of"));
		m->unavailable = qualify_set_new();
		for (guint j = 0; un && j < json_array_get_length(un); j++) {
			JsonNode *f = json_array_get_element(un, j);
			if (JSON_NODE_HOLDS_VALUE(f) &&
			    json_node_get_value_type(f) == G_TYPE_STRING)
				g_hash_table_add(m->unavailable,
					qualify_feature_name(
						json_node_get_string(f)));
		}
		g_hash_table_replace(caps->models, g_strdup(name), m);
	}
}

const char *
qualify_host_model_max(Api *api)
{
	StoreObj *h = api_host(api);

	return h ? qualify_map_get(h->rec, "other_config", "cpu_model_max")
		 : NULL;
}

HostCaps *
qualify_caps_probe(Api *api)
{
	HostCaps *caps = qualify_caps_new();
	gint64 t0 = g_get_monotonic_time();
	const char *max = qualify_host_model_max(api);
	g_autoptr(GString) in = g_string_new(NULL);
	g_autoptr(GError) e = NULL;

	caps->accel = g_strdup(qualify_accel(api));
	qualify_cmd(in, "caps", "qmp_capabilities", NULL);
	qualify_cmd(in, "version", "query-version", NULL);
	qualify_cmd(in, "machines", "query-machines", NULL);
	qualify_cmd(in, "cpus", "query-cpu-definitions", NULL);
	if (api->cfg.cpu_model && *api->cfg.cpu_model)
		qualify_cmd_expand(in, api->cfg.cpu_model);
	if (max != NULL)
		qualify_cmd_expand(in, max);
	qualify_cmd(in, "quit", "quit", NULL);

	g_autoptr(GHashTable) replies = qualify_qemu_run(api, caps->accel,
							 in->str, &e);
	if (replies == NULL && strcmp(caps->accel, "tcg") != 0) {
		/* KVM may be configured but gone (no /dev/kvm): say what
		 * TCG offers rather than nothing. */
		g_clear_error(&e);
		g_free(caps->accel);
		caps->accel = g_strdup("tcg");
		replies = qualify_qemu_run(api, caps->accel, in->str, &e);
	}
	if (replies == NULL) {
		caps->error = g_strdup(e->message);
		g_warning("qualify: cannot probe QEMU: %s", e->message);
		return caps;
	}
	qualify_caps_keep_version(caps, replies);
	qualify_caps_keep_machines(caps, replies);
	qualify_caps_keep_models(caps, replies);
	if (api->cfg.cpu_model && *api->cfg.cpu_model)
		qualify_caps_keep_expansion(caps, replies, api->cfg.cpu_model);
	if (max != NULL)
		qualify_caps_keep_expansion(caps, replies, max);
	caps->ok = *caps->qemu_version && caps->machine_list->len > 0 &&
		   g_hash_table_size(caps->models) > 0;
	if (!caps->ok)
		caps->error = g_strdup_printf(
			"%s did not report its version, machine types and CPU "
			"models", api->cfg.qemu_binary);
	caps->probe_us = g_get_monotonic_time() - t0;
	g_info("qualify: QEMU %s (accel %s): %u machine types, %u CPU models,"
	       " probed in %" G_GINT64_FORMAT " ms", caps->qemu_version,
	       caps->accel, caps->machine_list->len,
	       g_hash_table_size(caps->models), caps->probe_us / 1000);
	return caps;
}

/* The canonical features of MODEL's full expansion on this host,
 * expanded now by a short QEMU run when not cached.  NULL when QEMU
 * cannot expand MODEL.  Borrowed from CAPS. */
GHashTable *
qualify_caps_expansion(Api *api, HostCaps *caps, const char *model)
{
	gpointer set = NULL;
	g_autoptr(GString) in = g_string_new(NULL);
	g_autoptr(GError) e = NULL;

	if (!caps->ok)
		return NULL;
	if (g_hash_table_lookup_extended(caps->expansions, model, NULL, &set))
		return set;
	qualify_cmd(in, "caps", "qmp_capabilities", NULL);
	qualify_cmd_expand(in, model);
	qualify_cmd(in, "quit", "quit", NULL);
	g_autoptr(GHashTable) replies = qualify_qemu_run(api, caps->accel,
							 in->str, &e);
	if (replies == NULL) {
		/* Not cached: the next check may find QEMU working again. */
		g_warning("qualify: cannot expand CPU model %s: %s", model,
			  e->message);
		return NULL;
	}
	qualify_caps_keep_expansion(caps, replies, model);
	return g_hash_table_lookup(caps->expansions, model);
}

static HostCaps *qualify_cached;
static Api *qualify_cached_api;

HostCaps *
qualify_caps(Api *api)
{
	if (qualify_cached == NULL || qualify_cached_api != api) {
		qualify_caps_free(qualify_cached);
		qualify_cached = qualify_caps_probe(api);
		qualify_cached_api = api;
	}
	return qualify_cached;
}

void
qualify_caps_forget(void)
{
	g_clear_pointer(&qualify_cached, qualify_caps_free);
	qualify_cached_api = NULL;
}

/* A copy of map member KEY of REC, or a new map. */
static JsonObject *
qualify_map_copy(JsonObject *rec, const char *key)
{
	JsonObject *m = qualify_obj(rec, key);
	JsonObject *copy = json_object_new();

	if (m == NULL)
		return copy;
	g_autoptr(GList) names = json_object_get_members(m);
	for (GList *l = names; l; l = l->next)
		json_object_set_member(copy, l->data, json_node_copy(
			json_object_get_member(m, l->data)));
	return copy;
}

void
qualify_caps_apply(Api *api, HostCaps *caps)
{
	StoreObj *h = api_host(api);
	g_autoptr(GError) e = NULL;

	if (h == NULL || caps == NULL)
		return;
	JsonObject *rec = store_obj_dup(h);
	JsonObject *ci = qualify_map_copy(rec, "cpu_info");
	JsonObject *sv = qualify_map_copy(rec, "software_version");
	const char *max = qualify_host_model_max(api);

	g_autoptr(GPtrArray) models = g_ptr_array_new();
	GHashTableIter it;
	gpointer k;
	g_hash_table_iter_init(&it, caps->models);
	while (g_hash_table_iter_next(&it, &k, NULL))
		g_ptr_array_add(models, k);
	g_ptr_array_sort(models, qualify_strcmp);
	g_autofree char *model_list = qualify_join(models, ",");
	g_autofree char *machine_list = qualify_join(caps->machine_list, ",");

	json_object_set_string_member(ci, "qemu_models", model_list);
	json_object_set_string_member(ci, "cpu_model_max", max ? max : "");
	json_object_set_object_member(rec, "cpu_info", ci);
	json_object_set_string_member(sv, "machines", machine_list);
	if (*caps->qemu_version)
		json_object_set_string_member(sv, "qemu", caps->qemu_version);
	json_object_set_object_member(rec, "software_version", sv);

	JsonArray *old = qualify_arr(rec, "capabilities");
	JsonArray *cap = json_array_new();
	g_autofree char *accel = g_strdup_printf("accel-%s", caps->accel);
	gboolean have = FALSE;
	for (guint i = 0; old && i < json_array_get_length(old); i++) {
		const char *s = json_array_get_string_element(old, i);
		json_array_add_string_element(cap, s);
		have = have || strcmp(s, accel) == 0;
	}
	if (caps->ok && !have)
		json_array_add_string_element(cap, accel);
	json_object_set_array_member(rec, "capabilities", cap);

	if (!store_replace(api->store, h, rec, &e))
		g_warning("qualify: cannot update the host record: %s",
			  e->message);
}

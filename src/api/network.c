/*
 * network: XAPI's network class, a Linux bridge on the host.
 *
 * network.create takes a record; an empty bridge makes ternd pick the
 * first free "xapiN" (as XAPI does), a chosen one must be a valid
 * interface name outside XAPI's reserved prefixes (xen, xapi, vif, tap,
 * eth: INVALID_VALUE) and not another network's (BRIDGE_NAME_EXISTS).
 * The bridge itself is made when something first plugs into it (a VIF
 * at VM start or plug, a PIF at PIF.plug), by src/net/, which marks the
 * bridges it made so that network.destroy, and the reconciliation at
 * start (vm-net.c), remove only those.  destroy refuses while VIFs
 * (NETWORK_CONTAINS_VIF) or PIFs (NETWORK_CONTAINS_PIF) use the network.
 *
 * The record helpers at the end (network_fill, network_ref_add/remove)
 * are shared with vif.c and pif.c.
 */
#include "api/api.h"

#include <string.h>

#include "common/xerr.h"
#include "net/net.h"

#define NETWORK_MTU_MIN 68
#define NETWORK_MTU_MAX 65535

static const Field network_fields[] = {
	{ "uuid", FT_STRING },
	{ "name_label", FT_STRING, TRUE },
	{ "name_description", FT_STRING, TRUE },
	{ "bridge", FT_STRING },
	{ "MTU", FT_INT },
	{ "managed", FT_BOOL },
	{ "VIFs", FT_SET },
	{ "PIFs", FT_SET },
	{ "other_config", FT_MAP, TRUE },
	{ "tags", FT_SET, TRUE },
	{ "default_locking_mode", FT_STRING },
	{ "allowed_operations", FT_SET },
	{ "current_operations", FT_MAP },
	{ NULL }
};

/* ---- Record helpers (vif.c, pif.c) ----------------------------------- */

gboolean
network_fill(const Field *fields, const char *const *given_ok,
	     JsonObject *given, JsonObject *rec, GError **error)
{
	for (const Field *f = fields; f->name; f++) {
		JsonNode *v = json_object_get_member(given, f->name);
		if (v == NULL || !g_strv_contains(given_ok, f->name))
			continue;
		if (!api_field_check(f, v, error))
			return FALSE;
		json_object_set_member(rec, f->name, api_field_normalise(f, v));
	}
	return TRUE;
}

static gboolean
network_ref_change(Api *api, const char *ref, const char *field,
		   const char *item, gboolean add, GError **error)
{
	StoreObj *o = store_get(api->store, ref);

	if (o == NULL)
		return TRUE;
	JsonObject *rec = store_obj_dup(o);
	JsonArray *old = json_object_get_array_member(rec, field);
	JsonArray *a = json_array_new();
	for (guint i = 0; old && i < json_array_get_length(old); i++) {
		const char *s = json_array_get_string_element(old, i);
		if (g_strcmp0(s, item) != 0)
			json_array_add_string_element(a, s);
	}
	if (add)
		json_array_add_string_element(a, item);
	json_object_set_array_member(rec, field, a);
	return store_replace(api->store, o, rec, error);
}

gboolean
network_ref_add(Api *api, const char *ref, const char *field,
		const char *item, GError **error)
{
	return network_ref_change(api, ref, field, item, TRUE, error);
}

gboolean
network_ref_remove(Api *api, const char *ref, const char *field,
		   const char *item, GError **error)
{
	return network_ref_change(api, ref, field, item, FALSE, error);
}

/* ---- The class ------------------------------------------------------- */

static StoreObj *
network_by_bridge(Api *api, const char *bridge)
{
	g_autoptr(GPtrArray) nets = store_list(api->store, "network");

	for (guint i = 0; i < nets->len; i++) {
		StoreObj *n = nets->pdata[i];
		if (g_strcmp0(json_object_get_string_member_with_default(
				      n->rec, "bridge", ""), bridge) == 0)
			return n;
	}
	return NULL;
}

char *
network_pick_bridge(Api *api, const char *prefix)
{
	for (guint n = 0;; n++) {
		char *name = g_strdup_printf("%s%u", prefix, n);
		if (network_by_bridge(api, name) == NULL &&
		    !net_link_exists(name))
			return name;
		g_free(name);
	}
}

StoreObj *
network_add(Api *api, JsonObject *rec /* takes */, GError **error)
{
	g_autofree char *uuid = store_new_uuid();

	json_object_set_string_member(rec, "uuid", uuid);
	return store_add(api->store, "network", rec, error);
}

JsonObject *
network_default_record(void)
{
	JsonObject *r = json_object_new();

	json_object_set_string_member(r, "name_label", "");
	json_object_set_string_member(r, "name_description", "");
	json_object_set_string_member(r, "bridge", "");
	json_object_set_int_member(r, "MTU", 1500);
	json_object_set_boolean_member(r, "managed", TRUE);
	json_object_set_array_member(r, "VIFs", json_array_new());
	json_object_set_array_member(r, "PIFs", json_array_new());
	json_object_set_object_member(r, "other_config", json_object_new());
	json_object_set_array_member(r, "tags", json_array_new());
	json_object_set_string_member(r, "default_locking_mode", "unlocked");
	json_object_set_array_member(r, "allowed_operations",
				     json_array_new());
	json_object_set_object_member(r, "current_operations",
				      json_object_new());
	return r;
}

static gboolean
network_check(Api *api, JsonObject *rec, GError **error)
{
	gint64 mtu = json_object_get_int_member(rec, "MTU");
	const char *bridge = json_object_get_string_member(rec, "bridge");

	if (mtu < NETWORK_MTU_MIN || mtu > NETWORK_MTU_MAX) {
		g_autofree char *v = g_strdup_printf("%" G_GINT64_FORMAT, mtu);
		xerr_set(error, "INVALID_VALUE", "MTU", v, NULL);
		return FALSE;
	}
	if (!*bridge) {
		g_autofree char *name = network_pick_bridge(api, "xapi");
		json_object_set_string_member(rec, "bridge", name);
		return TRUE;
	}
	if (!net_bridge_name_allowed(bridge)) {
		xerr_set(error, "INVALID_VALUE", "bridge", bridge, NULL);
		return FALSE;
	}
	if (network_by_bridge(api, bridge) != NULL) {
		xerr_set(error, "BRIDGE_NAME_EXISTS", bridge, NULL);
		return FALSE;
	}
	return TRUE;
}

static void
network_create(Call *call)
{
	static const char *const given_ok[] = { "name_label",
		"name_description", "bridge", "MTU", "managed", "other_config",
		"tags", NULL };
	GError *e = NULL;
	JsonObject *given = call_arg_map(call, 1, &e);
	JsonObject *rec;
	StoreObj *o;

	if (given == NULL)
		return call_fail(call, e);
	rec = network_default_record();
	if (!network_fill(network_fields, given_ok, given, rec, &e) ||
	    !network_check(call->api, rec, &e)) {
		json_object_unref(rec);
		return call_fail(call, e);
	}
	if ((o = network_add(call->api, rec, &e)) == NULL)
		return call_fail(call, e);
	event_notify(call->api);
	call_return_string(call, o->ref);
}

static void
network_destroy(Call *call)
{
	GError *e = NULL;
	StoreObj *n = call_arg_obj(call, 1, "network", &e);

	if (n == NULL)
		return call_fail(call, e);
	/* VIFs of destroyed VMs do not keep the network. */
	vif_gc(call->api);
	static const struct {
		const char *field, *code;
	} used[] = { { "VIFs", "NETWORK_CONTAINS_VIF" },
		     { "PIFs", "NETWORK_CONTAINS_PIF" } };
	for (guint i = 0; i < G_N_ELEMENTS(used); i++) {
		JsonArray *a = json_object_get_array_member(n->rec,
							    used[i].field);
		if (a == NULL || json_array_get_length(a) == 0)
			continue;
		g_autoptr(GPtrArray) refs = g_ptr_array_new();
		for (guint j = 0; j < json_array_get_length(a); j++)
			g_ptr_array_add(refs, (gpointer)
				json_array_get_string_element(a, j));
		g_ptr_array_add(refs, NULL);
		xerr_setv(&e, used[i].code, (const char *const *)refs->pdata);
		return call_fail(call, e);
	}
	const char *bridge = json_object_get_string_member_with_default(
		n->rec, "bridge", "");
	g_autofree char *owner = vm_net_owner(call->api);
	if (json_object_get_boolean_member_with_default(n->rec, "managed",
							TRUE) &&
	    *bridge && !net_bridge_delete_own(bridge, owner, &e))
		return call_fail(call, e);
	if (!store_remove(call->api->store, n, &e))
		return call_fail(call, e);
	event_notify(call->api);
	call_return(call, NULL);
}

static const Method network_methods[] = {
	{ .name = "create", .fn = network_create, .nargs = 2,
	  .role = ROLE_POOL_OPERATOR, .async = TRUE },
	{ .name = "destroy", .fn = network_destroy, .nargs = 2,
	  .role = ROLE_POOL_OPERATOR, .async = TRUE },
	{ NULL }
};

const ClassDef network_class = {
	.name = "network",
	.fields = network_fields,
	.methods = network_methods,
	.set_role = ROLE_POOL_OPERATOR,
	.named = TRUE,
};

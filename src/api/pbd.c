/*
 * pbd: an SR attached to a host (XAPI's PBD class).
 *
 * device_config:location is where the SR's directory is on this host;
 * plugging checks that the directory is that SR (its .tern-sr.json names
 * the SR's uuid), then scans it, so a shared SR introduced on a second
 * host sees the VDIs the first one made.  Unplugging is refused while a
 * running VM uses one of the SR's VDIs.
 */
#include "api/api.h"

#include <string.h>

#include "common/valid.h"
#include "common/xerr.h"
#include "storage/storage.h"

static const Field pbd_fields[] = {
	{ "uuid", FT_STRING },
	{ "host", FT_REF },
	{ "SR", FT_REF },
	{ "device_config", FT_MAP },
	{ "currently_attached", FT_BOOL },
	{ "other_config", FT_MAP, TRUE },
	{ NULL }
};

static void
pbd_create(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	JsonObject *given = call_arg_map(call, 1, &e);

	if (given == NULL)
		return call_fail(call, e);
	const char *host = json_object_get_string_member_with_default(given,
		"host", "");
	const char *sr_ref = json_object_get_string_member_with_default(given,
		"SR", "");
	JsonObject *dc = json_object_has_member(given, "device_config") &&
		JSON_NODE_HOLDS_OBJECT(json_object_get_member(given,
			"device_config"))
		? json_object_get_object_member(given, "device_config") : NULL;
	StoreObj *sr = store_get_typed(api->store, "SR", sr_ref);
	const char *loc = dc ? json_object_get_string_member_with_default(dc,
		"location", "") : "";

	if (g_strcmp0(host, api->host_ref) != 0)
		return call_fail(call, xerr_new("HANDLE_INVALID", "host", host,
						NULL));
	if (sr == NULL)
		return call_fail(call, xerr_new("HANDLE_INVALID", "SR", sr_ref,
						NULL));
	if (valid_path_problem(loc) != NULL)
		return call_fail(call, xerr_new("INVALID_VALUE",
			"device_config:location", loc, NULL));
	g_autoptr(GPtrArray) pbds = store_list(api->store, "PBD");
	for (guint i = 0; i < pbds->len; i++) {
		StoreObj *p = pbds->pdata[i];
		if (g_strcmp0(json_object_get_string_member_with_default(
				p->rec, "SR", ""), sr->ref) == 0)
			return call_fail(call, xerr_new("PBD_EXISTS", sr->ref,
				api->host_ref, p->ref, NULL));
	}
	JsonObject *r = json_object_new();
	JsonObject *ndc = json_object_new();
	g_autofree char *uuid = store_new_uuid();
	json_object_set_string_member(ndc, "location", loc);
	json_object_set_string_member(r, "uuid", uuid);
	json_object_set_string_member(r, "host", api->host_ref);
	json_object_set_string_member(r, "SR", sr->ref);
	json_object_set_object_member(r, "device_config", ndc);
	json_object_set_boolean_member(r, "currently_attached", FALSE);
	json_object_set_object_member(r, "other_config", json_object_new());
	StoreObj *p = store_add(api->store, "PBD", r, &e);
	if (p == NULL)
		return call_fail(call, e);
	sr_link(api, sr, "PBDs", p->ref, TRUE);
	event_notify(api);
	call_return_string(call, p->ref);
}

static void
pbd_set_attached(Api *api, StoreObj *pbd, gboolean attached)
{
	JsonObject *r = store_obj_dup(pbd);

	json_object_set_boolean_member(r, "currently_attached", attached);
	store_replace(api->store, pbd, r, NULL);
	event_notify(api);
}

static StoreObj *
pbd_sr(Api *api, StoreObj *pbd)
{
	return store_get_typed(api->store, "SR",
		json_object_get_string_member_with_default(pbd->rec, "SR", ""));
}

static void
pbd_plug(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	StoreObj *pbd = call_arg_obj(call, 1, "PBD", &e);
	StoreObj *sr = pbd ? pbd_sr(api, pbd) : NULL;

	if (pbd == NULL)
		return call_fail(call, e);
	if (sr == NULL)
		return call_fail(call, xerr_new("HANDLE_INVALID", "SR", "", NULL));
	if (json_object_get_boolean_member_with_default(pbd->rec,
			"currently_attached", FALSE))
		return call_return(call, NULL);
	JsonObject *dc = json_object_get_object_member(pbd->rec,
						       "device_config");
	const char *loc = json_object_get_string_member_with_default(dc,
		"location", "");
	g_autofree char *uuid = storage_sr_read_uuid(loc, &e);
	if (uuid == NULL) {
		GError *x = xerr_new("SR_BACKEND_FAILURE", "", e->message,
				     NULL);
		g_error_free(e);
		return call_fail(call, x);
	}
	if (g_ascii_strcasecmp(uuid, sr->uuid) != 0) {
		g_autofree char *msg = g_strdup_printf(
			"%s holds the SR %s, not %s", loc, uuid, sr->uuid);
		return call_fail(call, xerr_new("SR_BACKEND_FAILURE", "", msg,
						NULL));
	}
	pbd_set_attached(api, pbd, TRUE);
	if (!sr_scan(api, sr, &e)) {
		pbd_set_attached(api, pbd, FALSE);
		return call_fail(call, e);
	}
	call_return(call, NULL);
}

static void
pbd_unplug(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	StoreObj *pbd = call_arg_obj(call, 1, "PBD", &e);
	StoreObj *sr = pbd ? pbd_sr(api, pbd) : NULL;

	if (pbd == NULL)
		return call_fail(call, e);
	if (sr != NULL && sr == sr_boot(api))
		return call_fail(call, xerr_new("OPERATION_NOT_ALLOWED",
			"the boot SR stays plugged", NULL));
	JsonArray *vdis = sr ? json_object_get_array_member(sr->rec, "VDIs")
			     : NULL;
	for (guint i = 0; vdis && i < json_array_get_length(vdis); i++) {
		StoreObj *v = store_get_typed(api->store, "VDI",
			json_array_get_string_element(vdis, i));
		if (v != NULL && vdi_attached(api, v))
			return call_fail(call, xerr_new("VDI_IN_USE", v->ref,
							"unplug", NULL));
	}
	pbd_set_attached(api, pbd, FALSE);
	call_return(call, NULL);
}

static void
pbd_destroy(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	StoreObj *pbd = call_arg_obj(call, 1, "PBD", &e);

	if (pbd == NULL)
		return call_fail(call, e);
	if (json_object_get_boolean_member_with_default(pbd->rec,
			"currently_attached", FALSE))
		return call_fail(call, xerr_new("OPERATION_NOT_ALLOWED",
			"the PBD is attached: unplug it first", NULL));
	StoreObj *sr = pbd_sr(api, pbd);
	if (sr != NULL)
		sr_link(api, sr, "PBDs", pbd->ref, FALSE);
	store_remove(api->store, pbd, NULL);
	event_notify(api);
	call_return(call, NULL);
}

static const Method pbd_methods[] = {
	{ .name = "create", .fn = pbd_create, .nargs = 2,
	  .role = ROLE_POOL_OPERATOR, .async = TRUE },
	{ .name = "plug", .fn = pbd_plug, .nargs = 2,
	  .role = ROLE_POOL_OPERATOR, .async = TRUE },
	{ .name = "unplug", .fn = pbd_unplug, .nargs = 2,
	  .role = ROLE_POOL_OPERATOR, .async = TRUE },
	{ .name = "destroy", .fn = pbd_destroy, .nargs = 2,
	  .role = ROLE_POOL_OPERATOR, .async = TRUE },
	{ NULL }
};

const ClassDef pbd_class = {
	.name = "PBD",
	.fields = pbd_fields,
	.methods = pbd_methods,
	.set_role = ROLE_POOL_OPERATOR,
};

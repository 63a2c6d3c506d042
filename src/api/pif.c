/*
 * PIF: XAPI's physical interface, a host interface enslaved to the
 * bridge of its network.
 *
 * PIF.scan(host) looks at the host's links (src/net/) and gives every
 * NIC or veth without a PIF one, with a network of its own as XAPI does
 * (bridge "xenbrN", the first free N; name_label "Pool-wide network
 * associated with <device>").  Bridges, taps, loopback and what ternd
 * made are not PIFs.  PIF.plug makes sure the network's bridge exists,
 * enslaves the device to it and brings both up; PIF.unplug releases it.
 * PIF.forget removes a PIF that is not attached.  IP and netmask are
 * read from the host on every read (pif_refresh).  A PIF recorded as
 * attached is plugged again when ternd starts (pif_reconcile), since a
 * host reboot forgets bridges.
 */
#include "api/api.h"

#include <string.h>

#include "common/xerr.h"
#include "net/net.h"

static const Field pif_fields[] = {
	{ "uuid", FT_STRING },
	{ "device", FT_STRING },
	{ "network", FT_REF },
	{ "host", FT_REF },
	{ "MAC", FT_STRING },
	{ "MTU", FT_INT },
	{ "VLAN", FT_INT },
	{ "physical", FT_BOOL },
	{ "currently_attached", FT_BOOL },
	{ "ip_configuration_mode", FT_STRING },
	{ "IP", FT_STRING },
	{ "netmask", FT_STRING },
	{ "gateway", FT_STRING },
	{ "DNS", FT_STRING },
	{ "management", FT_BOOL },
	{ "disallow_unplug", FT_BOOL },
	{ "other_config", FT_MAP, TRUE },
	{ NULL }
};

static StoreObj *
pif_by_device(Api *api, const char *device)
{
	g_autoptr(GPtrArray) pifs = store_list(api->store, "PIF");

	for (guint i = 0; i < pifs->len; i++) {
		StoreObj *p = pifs->pdata[i];
		if (g_strcmp0(json_object_get_string_member(p->rec, "device"),
			      device) == 0)
			return p;
	}
	return NULL;
}

/* Whether link L can be a PIF: a NIC (no kind) or a veth, not loopback,
 * not a bridge's own tap. */
static gboolean
pif_candidate(const NetLink *l)
{
	if (strcmp(l->name, "lo") == 0 ||
	    g_str_has_prefix(l->name, NET_TAP_PREFIX))
		return FALSE;
	return *l->kind == '\0' || strcmp(l->kind, "veth") == 0;
}

static StoreObj *
pif_introduce(Api *api, const NetLink *l, GError **error)
{
	g_autofree char *bridge = network_pick_bridge(api, "xenbr");
	g_autofree char *label = g_strdup_printf(
		"Pool-wide network associated with %s", l->name);
	JsonObject *nrec = network_default_record();

	json_object_set_string_member(nrec, "name_label", label);
	json_object_set_string_member(nrec, "bridge", bridge);
	json_object_set_int_member(nrec, "MTU", l->mtu > 0 ? l->mtu : 1500);
	StoreObj *net = network_add(api, nrec, error);
	if (net == NULL)
		return NULL;
	g_autofree char *net_ref = g_strdup(net->ref);

	JsonObject *r = json_object_new();
	g_autofree char *uuid = store_new_uuid();
	json_object_set_string_member(r, "uuid", uuid);
	json_object_set_string_member(r, "device", l->name);
	json_object_set_string_member(r, "network", net_ref);
	json_object_set_string_member(r, "host", api->host_ref);
	json_object_set_string_member(r, "MAC", l->mac);
	json_object_set_int_member(r, "MTU", l->mtu);
	json_object_set_int_member(r, "VLAN", -1);
	json_object_set_boolean_member(r, "physical", *l->kind == '\0');
	json_object_set_boolean_member(r, "currently_attached", FALSE);
	json_object_set_string_member(r, "ip_configuration_mode", "None");
	json_object_set_string_member(r, "IP", "");
	json_object_set_string_member(r, "netmask", "");
	json_object_set_string_member(r, "gateway", "");
	json_object_set_string_member(r, "DNS", "");
	json_object_set_boolean_member(r, "management", FALSE);
	json_object_set_boolean_member(r, "disallow_unplug", FALSE);
	json_object_set_object_member(r, "other_config", json_object_new());
	StoreObj *pif = store_add(api->store, "PIF", r, error);
	if (pif == NULL ||
	    !network_ref_add(api, net_ref, "PIFs", pif->ref, error))
		return NULL;
	return pif;
}

static void
pif_scan(Call *call)
{
	Api *api = call->api;
	GError *e = NULL;
	StoreObj *host = call_arg_obj(call, 1, "host", &e);
	g_autoptr(GPtrArray) links = host ? net_link_list(&e) : NULL;

	if (links == NULL)
		return call_fail(call, e);
	if (!store_begin(api->store, &e))
		return call_fail(call, e);
	gboolean ok = TRUE;
	for (guint i = 0; ok && i < links->len; i++) {
		NetLink *l = links->pdata[i];
		if (pif_candidate(l) && pif_by_device(api, l->name) == NULL)
			ok = pif_introduce(api, l, &e) != NULL;
	}
	if (!store_end(api->store, ok ? &e : NULL) || !ok)
		return call_fail(call, e);
	event_notify(api);
	call_return(call, NULL);
}

static gboolean
pif_attach(Api *api, StoreObj *pif, gboolean attach, GError **error)
{
	const char *dev = json_object_get_string_member(pif->rec, "device");
	StoreObj *net = store_get_typed(api->store, "network",
		json_object_get_string_member(pif->rec, "network"));

	if (net == NULL) {
		xerr_set(error, "HANDLE_INVALID", "network",
			 json_object_get_string_member(pif->rec, "network"),
			 NULL);
		return FALSE;
	}
	const char *bridge = json_object_get_string_member(net->rec, "bridge");
	if (!attach)
		return net_link_set_master(dev, NULL, error);
	gint64 mtu = json_object_get_int_member_with_default(net->rec, "MTU",
							     1500);
	g_autofree char *owner = vm_net_owner(api);
	return (!json_object_get_boolean_member_with_default(net->rec,
							     "managed", TRUE) ||
		net_bridge_ensure(bridge, (int)mtu, owner, NULL, error)) &&
	       net_link_set_master(dev, bridge, error) &&
	       net_link_set_up(dev, TRUE, error);
}

static void
pif_set_attached(Call *call, gboolean attach)
{
	Api *api = call->api;
	GError *e = NULL;
	StoreObj *pif = call_arg_obj(call, 1, "PIF", &e);

	if (pif == NULL || !pif_attach(api, pif, attach, &e))
		return call_fail(call, e);
	JsonObject *rec = store_obj_dup(pif);
	json_object_set_boolean_member(rec, "currently_attached", attach);
	if (!store_replace(api->store, pif, rec, &e))
		return call_fail(call, e);
	event_notify(api);
	call_return(call, NULL);
}

static void
pif_plug(Call *call)
{
	pif_set_attached(call, TRUE);
}

static void
pif_unplug(Call *call)
{
	pif_set_attached(call, FALSE);
}

static void
pif_forget(Call *call)
{
	Api *api = call->api;
	GError *e = NULL;
	StoreObj *pif = call_arg_obj(call, 1, "PIF", &e);

	if (pif == NULL)
		return call_fail(call, e);
	if (json_object_get_boolean_member(pif->rec, "currently_attached"))
		return call_fail(call, xerr_new("OPERATION_NOT_ALLOWED",
			"PIF.forget: the PIF is plugged; unplug it first",
			NULL));
	g_autofree char *net = g_strdup(json_object_get_string_member(
		pif->rec, "network"));
	g_autofree char *ref = g_strdup(pif->ref);
	if (!store_begin(api->store, &e))
		return call_fail(call, e);
	gboolean ok = network_ref_remove(api, net, "PIFs", ref, &e) &&
		      store_remove(api->store, pif, &e);
	if (!store_end(api->store, ok ? &e : NULL) || !ok)
		return call_fail(call, e);
	event_notify(api);
	call_return(call, NULL);
}

void
pif_reconcile(Api *api)
{
	g_autoptr(GPtrArray) pifs = store_list(api->store, "PIF");

	for (guint i = 0; i < pifs->len; i++) {
		StoreObj *pif = pifs->pdata[i];
		g_autoptr(GError) e = NULL;
		if (!json_object_get_boolean_member_with_default(
			    pif->rec, "currently_attached", FALSE))
			continue;
		if (!pif_attach(api, pif, TRUE, &e))
			g_warning("net: PIF %s: %s", pif->uuid, e->message);
	}
}

/* IP and netmask as the host has them: on the bridge when plugged (where
 * a host's address goes once its NIC is a bridge port), else on the
 * device.  ternd configures no addresses; it reports them. */
static void
pif_refresh(Api *api, StoreObj *pif)
{
	const char *dev = json_object_get_string_member(pif->rec, "device");
	StoreObj *net = store_get_typed(api->store, "network",
		json_object_get_string_member(pif->rec, "network"));
	g_autofree char *addr = NULL;
	g_autofree char *mask = NULL;
	int prefix = 0;

	if (json_object_get_boolean_member(pif->rec, "currently_attached") &&
	    net != NULL)
		net_link_ipv4(json_object_get_string_member(net->rec,
							    "bridge"),
			      &addr, &prefix, NULL);
	if (addr == NULL)
		net_link_ipv4(dev, &addr, &prefix, NULL);
	if (addr != NULL)
		mask = net_netmask(prefix);
	if (g_strcmp0(addr ? addr : "", json_object_get_string_member(
			      pif->rec, "IP")) == 0 &&
	    g_strcmp0(mask ? mask : "", json_object_get_string_member(
			      pif->rec, "netmask")) == 0)
		return;
	JsonObject *rec = store_obj_dup(pif);
	json_object_set_string_member(rec, "IP", addr ? addr : "");
	json_object_set_string_member(rec, "netmask", mask ? mask : "");
	store_replace(api->store, pif, rec, NULL);
	event_notify(api);
}

static const Method pif_methods[] = {
	{ .name = "scan", .fn = pif_scan, .nargs = 2,
	  .role = ROLE_POOL_OPERATOR, .async = TRUE },
	{ .name = "plug", .fn = pif_plug, .nargs = 2,
	  .role = ROLE_POOL_OPERATOR, .async = TRUE },
	{ .name = "unplug", .fn = pif_unplug, .nargs = 2,
	  .role = ROLE_POOL_OPERATOR, .async = TRUE },
	{ .name = "forget", .fn = pif_forget, .nargs = 2,
	  .role = ROLE_POOL_OPERATOR, .async = TRUE },
	{ NULL }
};

const ClassDef pif_class = {
	.name = "PIF",
	.fields = pif_fields,
	.methods = pif_methods,
	.set_role = ROLE_POOL_OPERATOR,
	.refresh = pif_refresh,
};

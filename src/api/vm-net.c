/*
 * vm-net: a VM's NICs, resolved for QEMU, and the host's leftovers.
 *
 * The QEMU driver takes a list of QemuNics (an id, a tap's fd, a MAC, an
 * MTU) and never reads a VIF.  This file is where the API turns a VIF
 * into one: it makes sure the network's bridge exists and is up, opens
 * the VIF's tap ("tvif" + 11 hex digits of the VIF's uuid) through
 * src/net/, enslaves it to the bridge and brings it up.  The tap is not
 * persistent: it goes away with the last fd, that is with QEMU (or with
 * ternd's copy when QEMU never started), so a halted VM leaves no tap.
 *
 * vm_net_reconcile runs once at start, before the API serves:
 *   - VIFs whose VM is gone are removed (VM.destroy leaves them);
 *   - a tap named like ternd's ("tvif" + 11) whose alias is this host's
 *     or empty, and that no attached VIF of a running VM accounts for, is
 *     deleted (a persistent one left by something else, or one whose VIF
 *     is gone); another host's taps (two ternds in one namespace) stay;
 *   - a bridge with this host's alias that no network names is deleted;
 *   - a PIF recorded as attached is enslaved to its bridge again, and a
 *     running VM's tap rejoins its bridge (after the bridge was lost).
 */
#include "api/api.h"

#include <string.h>
#include <unistd.h>

#include "common/xerr.h"
#include "net/net.h"
#include "qemu/nic.h"

char *
vm_net_owner(Api *api)
{
	StoreObj *host = api_host(api);

	return net_owner(host ? host->uuid : "");
}

gboolean
vm_net_running(StoreObj *vm)
{
	const char *ps = vm ? vm_power_state(vm) : "Halted";

	return strcmp(ps, "Running") == 0 || strcmp(ps, "Paused") == 0;
}

QemuNic *
vm_net_nic_open(Api *api, StoreObj *vif, GError **error)
{
	const char *net_ref = json_object_get_string_member_with_default(
		vif->rec, "network", "");
	StoreObj *net = store_get_typed(api->store, "network", net_ref);
	const char *device = json_object_get_string_member_with_default(
		vif->rec, "device", "0");
	gint64 mtu = json_object_get_int_member_with_default(vif->rec, "MTU",
							     1500);

	if (net == NULL) {
		xerr_set(error, "HANDLE_INVALID", "network", net_ref, NULL);
		return NULL;
	}
	const char *bridge = json_object_get_string_member(net->rec, "bridge");
	gint64 net_mtu = json_object_get_int_member_with_default(net->rec,
								 "MTU", 1500);
	gboolean managed = json_object_get_boolean_member_with_default(
		net->rec, "managed", TRUE);
	/* An unmanaged network's bridge is someone else's: used, never
	 * made or changed. */
	g_autofree char *owner = vm_net_owner(api);
	if (managed &&
	    !net_bridge_ensure(bridge, (int)net_mtu, owner, NULL, error))
		return NULL;
	g_autofree char *tap = net_tap_name(vif->uuid);
	int fd = net_tap_open(tap, (int)mtu, bridge, owner, error);
	if (fd < 0)
		return NULL;
	g_autofree char *id = g_strdup_printf("vif%s", device);
	g_info("net: VIF %s: tap %s on %s", vif->uuid, tap, bridge);
	return qemu_nic_new(id, fd,
			    json_object_get_string_member(vif->rec, "MAC"),
			    (int)mtu);
}

/* Puts the tap NAME of VIF (in use by its QEMU) back on its bridge. */
static gboolean
vm_net_rejoin(Api *api, StoreObj *vif, const char *name, GError **error)
{
	StoreObj *net = store_get_typed(api->store, "network",
		json_object_get_string_member_with_default(vif->rec, "network",
							   ""));
	g_autoptr(NetLink) l = NULL;

	if (net == NULL)
		return TRUE;
	const char *bridge = json_object_get_string_member(net->rec, "bridge");
	if ((l = net_link_get(name, error)) == NULL)
		return FALSE;
	g_autoptr(NetLink) br = net_link_get(bridge, NULL);
	if (br != NULL && l->master == br->ifindex)
		return TRUE;
	g_info("net: tap %s back on %s", name, bridge);
	g_autofree char *owner = vm_net_owner(api);
	return (!json_object_get_boolean_member_with_default(net->rec,
							     "managed", TRUE) ||
		net_bridge_ensure(bridge, (int)json_object_get_int_member(
				net->rec, "MTU"), owner, NULL, error)) &&
	       net_link_set_master(name, bridge, error) &&
	       net_link_set_up(name, TRUE, error);
}

static gint
vm_net_by_device(gconstpointer a, gconstpointer b)
{
	StoreObj *x = *(StoreObj *const *)a, *y = *(StoreObj *const *)b;

	return (int)(g_ascii_strtoll(json_object_get_string_member(
					     x->rec, "device"), NULL, 10) -
		     g_ascii_strtoll(json_object_get_string_member(
					     y->rec, "device"), NULL, 10));
}

GPtrArray *
vm_net_resolve(Api *api, StoreObj *vm, GError **error)
{
	GPtrArray *nics = g_ptr_array_new_with_free_func(
		(GDestroyNotify)qemu_nic_free);
	g_autoptr(GPtrArray) vifs = g_ptr_array_new();
	JsonArray *refs = json_object_get_array_member(vm->rec, "VIFs");

	for (guint i = 0; refs && i < json_array_get_length(refs); i++) {
		StoreObj *vif = store_get_typed(api->store, "VIF",
			json_array_get_string_element(refs, i));
		/* Only the VM's own: VM.clone copies the VIFs field. */
		if (vif != NULL && g_strcmp0(json_object_get_string_member(
				vif->rec, "VM"), vm->ref) == 0)
			g_ptr_array_add(vifs, vif);
	}
	g_ptr_array_sort(vifs, vm_net_by_device);
	for (guint i = 0; i < vifs->len; i++) {
		QemuNic *n = vm_net_nic_open(api, vifs->pdata[i], error);
		if (n == NULL) {
			g_ptr_array_unref(nics); /* closes the taps */
			return NULL;
		}
		g_ptr_array_add(nics, n);
	}
	/* Attached from now on; a start that fails leaves the VM Halted,
	 * which VIF reads see (vif_refresh). */
	for (guint i = 0; i < vifs->len; i++)
		vif_set_attached(api, vifs->pdata[i], TRUE);
	return nics;
}

/* The taps that running VMs' attached VIFs account for: name -> VIF. */
static GHashTable *
vm_net_taps_in_use(Api *api)
{
	GHashTable *in_use = g_hash_table_new_full(g_str_hash, g_str_equal,
						   g_free, NULL);
	g_autoptr(GPtrArray) vifs = store_list(api->store, "VIF");

	for (guint i = 0; i < vifs->len; i++) {
		StoreObj *vif = vifs->pdata[i];
		StoreObj *vm = store_get_typed(api->store, "VM",
			json_object_get_string_member_with_default(
				vif->rec, "VM", ""));
		if (vm_net_running(vm) &&
		    json_object_get_boolean_member_with_default(
			    vif->rec, "currently_attached", FALSE))
			g_hash_table_insert(in_use, net_tap_name(vif->uuid),
					    vif);
	}
	return in_use;
}

static StoreObj *
vm_net_network_of_bridge(Api *api, const char *bridge)
{
	g_autoptr(GPtrArray) nets = store_list(api->store, "network");

	for (guint i = 0; i < nets->len; i++)
		if (g_strcmp0(json_object_get_string_member(
			((StoreObj *)nets->pdata[i])->rec, "bridge"),
			bridge) == 0)
			return nets->pdata[i];
	return NULL;
}

void
vm_net_reconcile(Api *api)
{
	g_autoptr(GError) e = NULL;
	g_autoptr(GPtrArray) links = net_link_list(&e);
	g_autoptr(GHashTable) in_use = NULL;
	g_autofree char *owner = vm_net_owner(api);

	if (links == NULL) {
		g_warning("net: cannot list links: %s", e->message);
		return;
	}
	vif_gc(api);
	in_use = vm_net_taps_in_use(api);
	for (guint i = 0; i < links->len; i++) {
		NetLink *l = links->pdata[i];
		gboolean mine = strcmp(l->alias, owner) == 0;
		/* A tap named like ours without an alias is a leftover too
		 * (ours get theirs as they are made); another host's is
		 * left to that host. */
		gboolean tap = g_str_has_prefix(l->name, NET_TAP_PREFIX) &&
			       strlen(l->name) == NET_NAME_MAX &&
			       (mine || *l->alias == '\0');
		gboolean bridge = strcmp(l->kind, "bridge") == 0 && mine;
		g_autoptr(GError) de = NULL;

		if (tap && !g_hash_table_contains(in_use, l->name)) {
			g_info("net: removing leftover tap %s", l->name);
			if (!net_link_delete(l->name, &de))
				g_warning("net: %s", de->message);
		} else if (bridge &&
			   vm_net_network_of_bridge(api, l->name) == NULL) {
			g_info("net: removing leftover bridge %s", l->name);
			if (!net_link_delete(l->name, &de))
				g_warning("net: %s", de->message);
		}
	}
	pif_reconcile(api);
	/* A running VM's tap back on its bridge, should the bridge have
	 * been deleted and made again meanwhile. */
	GHashTableIter it;
	gpointer name, vif;
	g_hash_table_iter_init(&it, in_use);
	while (g_hash_table_iter_next(&it, &name, &vif)) {
		g_autoptr(GError) te = NULL;
		if (!net_link_exists(name) ||
		    !vm_net_rejoin(api, vif, name, &te))
			g_warning("net: tap %s: %s", (char *)name,
				  te ? te->message : "gone");
	}
}

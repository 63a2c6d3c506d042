/*
 * link: links and bridges through rtnetlink (libnl-route-3).
 *
 * Each function opens a route socket, does one thing and closes it (see
 * net.h for why).  Changes go through rtnl_link_change with a "change"
 * link that carries only what is to change (flags, MTU, master, alias),
 * which is how libnl expects them.  Errors are INTERNAL_ERROR with the
 * link's name, the operation and libnl's reason.
 */
#include "net/net.h"

#include <linux/if.h>
#include <string.h>
#include <netlink/netlink.h>
#include <arpa/inet.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>

#include "common/xerr.h"

static void
net_fail(GError **error, const char *name, const char *what, int err)
{
	g_autofree char *msg = g_strdup_printf("netlink: %s %s: %s", what,
					       name, nl_geterror(err));

	xerr_set(error, "INTERNAL_ERROR", msg, NULL);
}

static struct nl_sock *
net_sock(GError **error)
{
	struct nl_sock *sk = nl_socket_alloc();
	int err;

	if (sk == NULL) {
		xerr_set(error, "INTERNAL_ERROR", "netlink: no socket", NULL);
		return NULL;
	}
	if ((err = nl_connect(sk, NETLINK_ROUTE)) < 0) {
		net_fail(error, "route", "connect", err);
		nl_socket_free(sk);
		return NULL;
	}
	return sk;
}

static void
net_sock_free(struct nl_sock *sk)
{
	if (sk != NULL)
		nl_socket_free(sk);
}
typedef struct nl_sock NlSock;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NlSock, net_sock_free)

void
net_link_free(NetLink *l)
{
	if (l == NULL)
		return;
	g_free(l->name);
	g_free(l->kind);
	g_free(l->mac);
	g_free(l->alias);
	g_free(l);
}

static NetLink *
net_link_from(struct rtnl_link *rl)
{
	NetLink *l = g_new0(NetLink, 1);
	struct nl_addr *a = rtnl_link_get_addr(rl);
	const char *kind = rtnl_link_get_type(rl);
	const char *alias = rtnl_link_get_ifalias(rl);
	char buf[64] = "";

	l->name = g_strdup(rtnl_link_get_name(rl));
	l->ifindex = rtnl_link_get_ifindex(rl);
	l->kind = g_strdup(kind ? kind : "");
	if (a != NULL && nl_addr_get_len(a) == 6)
		nl_addr2str(a, buf, sizeof buf);
	l->mac = g_strdup(buf);
	l->alias = g_strdup(alias ? alias : "");
	l->mtu = (int)rtnl_link_get_mtu(rl);
	l->master = rtnl_link_get_master(rl);
	l->up = (rtnl_link_get_flags(rl) & IFF_UP) != 0;
	return l;
}

GPtrArray *
net_link_list(GError **error)
{
	g_autoptr(NlSock) sk = net_sock(error);
	struct nl_cache *cache = NULL;
	int err;

	if (sk == NULL)
		return NULL;
	if ((err = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache)) < 0) {
		net_fail(error, "links", "list", err);
		return NULL;
	}
	GPtrArray *out = g_ptr_array_new_with_free_func(
		(GDestroyNotify)net_link_free);
	for (struct nl_object *o = nl_cache_get_first(cache); o;
	     o = nl_cache_get_next(o))
		g_ptr_array_add(out, net_link_from((struct rtnl_link *)o));
	nl_cache_free(cache);
	return out;
}

/* The kernel's link NAME (a new reference), or NULL: *ERR is 0 when it
 * simply does not exist. */
static struct rtnl_link *
net_kernel_link(struct nl_sock *sk, const char *name, int *err)
{
	struct rtnl_link *rl = NULL;

	*err = rtnl_link_get_kernel(sk, 0, name, &rl);
	if (*err == -NLE_NODEV || *err == -NLE_OBJ_NOTFOUND)
		*err = 0;
	return *err < 0 ? NULL : rl;
}

NetLink *
net_link_get(const char *name, GError **error)
{
	g_autoptr(NlSock) sk = net_sock(error);
	int err;

	if (sk == NULL)
		return NULL;
	struct rtnl_link *rl = net_kernel_link(sk, name, &err);
	if (err < 0) {
		net_fail(error, name, "get", err);
		return NULL;
	}
	if (rl == NULL)
		return NULL;
	NetLink *l = net_link_from(rl);
	rtnl_link_put(rl);
	return l;
}

gboolean
net_link_exists(const char *name)
{
	g_autoptr(NetLink) l = net_link_get(name, NULL);

	return l != NULL;
}

/* Applies CHANGE (consumed) to link NAME. */
static gboolean
net_link_apply(struct nl_sock *sk, const char *name, const char *what,
	       struct rtnl_link *change, GError **error)
{
	int err;
	struct rtnl_link *orig = net_kernel_link(sk, name, &err);

	if (orig == NULL) {
		if (err == 0)
			err = -NLE_NODEV;
		rtnl_link_put(change);
		net_fail(error, name, what, err);
		return FALSE;
	}
	err = rtnl_link_change(sk, orig, change, 0);
	rtnl_link_put(orig);
	rtnl_link_put(change);
	if (err < 0) {
		net_fail(error, name, what, err);
		return FALSE;
	}
	return TRUE;
}

gboolean
net_link_set_up(const char *name, gboolean up, GError **error)
{
	g_autoptr(NlSock) sk = net_sock(error);
	struct rtnl_link *c;

	if (sk == NULL)
		return FALSE;
	c = rtnl_link_alloc();
	if (up)
		rtnl_link_set_flags(c, IFF_UP);
	else
		rtnl_link_unset_flags(c, IFF_UP);
	return net_link_apply(sk, name, up ? "up" : "down", c, error);
}

gboolean
net_link_set_mtu(const char *name, int mtu, GError **error)
{
	g_autoptr(NlSock) sk = net_sock(error);
	struct rtnl_link *c;

	if (sk == NULL)
		return FALSE;
	c = rtnl_link_alloc();
	rtnl_link_set_mtu(c, (unsigned int)mtu);
	return net_link_apply(sk, name, "mtu", c, error);
}

gboolean
net_link_setup(const char *name, int mtu, const char *alias, GError **error)
{
	g_autoptr(NlSock) sk = net_sock(error);
	struct rtnl_link *c;

	if (sk == NULL)
		return FALSE;
	c = rtnl_link_alloc();
	if (mtu > 0)
		rtnl_link_set_mtu(c, (unsigned int)mtu);
	if (alias != NULL)
		rtnl_link_set_ifalias(c, alias);
	return net_link_apply(sk, name, "set up", c, error);
}

gboolean
net_link_set_master(const char *name, const char *bridge, GError **error)
{
	g_autoptr(NlSock) sk = net_sock(error);
	int master = 0, err;

	if (sk == NULL)
		return FALSE;
	if (bridge != NULL) {
		struct rtnl_link *br = net_kernel_link(sk, bridge, &err);
		if (br == NULL) {
			net_fail(error, bridge, "find bridge",
				 err ? err : -NLE_NODEV);
			return FALSE;
		}
		master = rtnl_link_get_ifindex(br);
		rtnl_link_put(br);
	}
	struct rtnl_link *c = rtnl_link_alloc();
	rtnl_link_set_master(c, master);
	return net_link_apply(sk, name, bridge ? "enslave" : "release", c,
			      error);
}

gboolean
net_link_ipv4(const char *name, char **addr, int *prefix, GError **error)
{
	g_autoptr(NlSock) sk = net_sock(error);
	struct nl_cache *cache = NULL;
	gboolean found = FALSE;
	int err;

	*addr = NULL;
	*prefix = 0;
	if (sk == NULL)
		return FALSE;
	struct rtnl_link *rl = net_kernel_link(sk, name, &err);
	if (rl == NULL)
		return FALSE;
	int ifindex = rtnl_link_get_ifindex(rl);
	rtnl_link_put(rl);
	if ((err = rtnl_addr_alloc_cache(sk, &cache)) < 0) {
		net_fail(error, name, "addresses", err);
		return FALSE;
	}
	for (struct nl_object *o = nl_cache_get_first(cache); o && !found;
	     o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		struct nl_addr *local = rtnl_addr_get_local(a);
		char buf[INET_ADDRSTRLEN];
		if (rtnl_addr_get_ifindex(a) != ifindex ||
		    rtnl_addr_get_family(a) != AF_INET || local == NULL ||
		    nl_addr_get_len(local) != 4 ||
		    inet_ntop(AF_INET, nl_addr_get_binary_addr(local), buf,
			      sizeof buf) == NULL)
			continue;
		*addr = g_strdup(buf);
		*prefix = rtnl_addr_get_prefixlen(a);
		found = TRUE;
	}
	nl_cache_free(cache);
	return found;
}

char *
net_netmask(int prefix)
{
	guint32 m = prefix <= 0 ? 0 : 0xffffffffu << (32 - MIN(prefix, 32));

	return g_strdup_printf("%u.%u.%u.%u", m >> 24, (m >> 16) & 0xff,
			       (m >> 8) & 0xff, m & 0xff);
}

gboolean
net_link_delete(const char *name, GError **error)
{
	g_autoptr(NlSock) sk = net_sock(error);
	int err;

	if (sk == NULL)
		return FALSE;
	struct rtnl_link *rl = net_kernel_link(sk, name, &err);
	if (rl == NULL) {
		if (err < 0)
			net_fail(error, name, "delete", err);
		return err == 0;
	}
	err = rtnl_link_delete(sk, rl);
	rtnl_link_put(rl);
	if (err < 0 && err != -NLE_NODEV && err != -NLE_OBJ_NOTFOUND) {
		net_fail(error, name, "delete", err);
		return FALSE;
	}
	return TRUE;
}

gboolean
net_bridge_ensure(const char *name, int mtu, const char *owner,
		  gboolean *created, GError **error)
{
	g_autoptr(NlSock) sk = net_sock(error);
	gboolean mine = FALSE;
	int err;

	if (created)
		*created = FALSE;
	if (sk == NULL)
		return FALSE;
	struct rtnl_link *rl = net_kernel_link(sk, name, &err);
	if (err < 0) {
		net_fail(error, name, "get", err);
		return FALSE;
	}
	if (rl == NULL) {
		struct rtnl_link *n = rtnl_link_bridge_alloc();
		rtnl_link_set_name(n, name);
		err = rtnl_link_add(sk, n, NLM_F_CREATE | NLM_F_EXCL);
		rtnl_link_put(n);
		if (err < 0 && err != -NLE_EXIST) {
			net_fail(error, name, "create bridge", err);
			return FALSE;
		}
		if (err == 0) {
			/* The kernel takes the alias on a change only, not
			 * with the new link. */
			mine = TRUE;
			if (created)
				*created = TRUE;
			g_info("net: bridge %s created", name);
		}
	} else {
		const char *kind = rtnl_link_get_type(rl);
		gboolean bridge = kind && g_strcmp0(kind, "bridge") == 0;
		rtnl_link_put(rl);
		if (!bridge) {
			g_autofree char *msg = g_strdup_printf(
				"netlink: %s exists and is not a bridge", name);
			xerr_set(error, "INTERNAL_ERROR", msg, NULL);
			return FALSE;
		}
	}
	struct rtnl_link *c = rtnl_link_alloc();
	rtnl_link_set_flags(c, IFF_UP);
	if (mtu > 0)
		rtnl_link_set_mtu(c, (unsigned int)mtu);
	if (mine)
		rtnl_link_set_ifalias(c, owner);
	return net_link_apply(sk, name, "bridge up", c, error);
}

gboolean
net_bridge_delete_own(const char *name, const char *owner, GError **error)
{
	g_autoptr(NetLink) l = NULL;
	GError *e = NULL;

	l = net_link_get(name, &e);
	if (e != NULL) {
		g_propagate_error(error, e);
		return FALSE;
	}
	if (l == NULL || strcmp(l->kind, "bridge") != 0 ||
	    strcmp(l->alias, owner) != 0)
		return TRUE;
	g_info("net: bridge %s deleted", name);
	return net_link_delete(name, error);
}

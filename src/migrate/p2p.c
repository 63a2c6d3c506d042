/*
 * p2p: the first step of a peer-to-peer migration.  The source's ternd
 * logs in to the destination with the credentials in the caller's map and
 * asks it for a single-use token (host.migrate_receive), as a managed
 * client would.  libtern is synchronous, so this runs in a worker thread;
 * the answer comes back on the main loop.
 *
 * The password is the caller's secret: it is sent only to a destination
 * whose certificate is proven first (trust.h: pinned, known, or recorded
 * on a first use the caller allowed), and it is wiped from memory when the
 * request ends.
 */
#include "migrate/migrate-int.h"

#include <sodium.h>
#include <string.h>

#include <tern/tern.h>

#include "common/xerr.h"
#include "migrate/testhook.h"
#include "migrate/trust.h"

typedef struct {
	char *url;
	char *user;
	char *password;
	char *fingerprint;
	char *state_dir;
	gboolean first_use;
	char *vm_uuid;
} P2p;

static void
p2p_free(P2p *p)
{
	g_free(p->url);
	g_free(p->user);
	if (p->password)
		sodium_memzero(p->password, strlen(p->password));
	g_free(p->password);
	g_free(p->fingerprint);
	g_free(p->state_dir);
	g_free(p->vm_uuid);
	g_free(p);
}

static const char *
dest_str(JsonObject *dest, const char *key)
{
	return json_object_get_string_member_with_default(dest, key, "");
}

static void
p2p_thread(GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
	P2p *p = data;
	GError *e = NULL;
	g_autofree char *pin = NULL;

	if (!trust_p2p_pin(p->state_dir, p->url, p->fingerprint, p->first_use,
			   &pin, &e)) {
		g_task_return_error(task, e);
		return;
	}
	/* Never insecure: with PIN, libtern refuses any other certificate
	 * in the handshake, before the login's body is sent. */
	TernConnOptions co = { .fingerprint = pin };
	testhook_phase_wait("src", "connect");
	TernConn *c = tern_conn_open(p->url, &co, &e);

	if (c == NULL || !tern_login(c, p->user, p->password, &e)) {
		if (c)
			tern_conn_free(c);
		g_task_return_error(task, e);
		return;
	}
	g_autoptr(JsonArray) ha = json_array_new();
	json_array_add_string_element(ha, tern_conn_session(c));
	g_autoptr(JsonNode) host = tern_call(c, "session.get_this_host", ha,
					     &e);
	JsonNode *map = NULL;
	if (host != NULL) {
		g_autoptr(JsonArray) a = json_array_new();
		JsonObject *o = json_object_new();
		json_object_set_string_member(o, "vm", p->vm_uuid);
		json_array_add_string_element(a, json_node_get_string(host));
		json_array_add_string_element(a, "OpaqueRef:NULL");
		json_array_add_object_element(a, o);
		map = tern_call(c, "host.migrate_receive", a, &e);
	}
	tern_logout(c);
	tern_conn_free(c);
	if (map == NULL || !JSON_NODE_HOLDS_OBJECT(map)) {
		if (map)
			json_node_unref(map);
		if (e == NULL)
			e = xerr_new("INTERNAL_ERROR", "bad token map", NULL);
		g_task_return_error(task, e);
		return;
	}
	g_task_return_pointer(task, map, (GDestroyNotify)json_node_unref);
}

gboolean
migrate_p2p_fetch(const char *state_dir, JsonObject *dest,
		  const char *vm_uuid, GAsyncReadyCallback done, gpointer data,
		  GError **error)
{
	if (!*dest_str(dest, "url") || !*dest_str(dest, "user")) {
		xerr_set(error, "INVALID_VALUE", "dest", "a peer-to-peer "
			 "destination needs url, user and password", NULL);
		return FALSE;
	}
	P2p *p = g_new0(P2p, 1);
	p->url = g_strdup(dest_str(dest, "url"));
	p->user = g_strdup(dest_str(dest, "user"));
	p->password = g_strdup(dest_str(dest, "password"));
	p->fingerprint = g_strdup(dest_str(dest, "fingerprint"));
	p->first_use = strcmp(dest_str(dest, "trust_on_first_use"),
			      "true") == 0;
	p->state_dir = g_strdup(state_dir);
	p->vm_uuid = g_strdup(vm_uuid);

	GTask *t = g_task_new(NULL, NULL, done, data);
	g_task_set_task_data(t, p, (GDestroyNotify)p2p_free);
	g_task_run_in_thread(t, p2p_thread);
	g_object_unref(t);
	return TRUE;
}

JsonNode *
migrate_p2p_finish(GAsyncResult *res, gboolean *ours, GError **error)
{
	GError *e = NULL;
	JsonNode *map = g_task_propagate_pointer(G_TASK(res), &e);

	*ours = FALSE;
	if (map != NULL)
		return map;
	if (e->domain == TERN_XAPI_ERROR) {
		*ours = TRUE; /* e.g. SSL_VERIFY_ERROR from trust.c */
		g_propagate_error(error, e);
		return NULL;
	}
	const char *code = tern_error_code(e);
	if (code == NULL) {
		g_propagate_error(error, e);
		return NULL;
	}
	/* The destination's own XAPI error, passed on as it said it. */
	g_auto(GStrv) ps = tern_error_params(e);
	xerr_setv(error, code, (const char *const *)ps);
	*ours = TRUE;
	g_error_free(e);
	return NULL;
}

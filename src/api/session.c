/*
 * session: logging in and out, and who the caller is.
 *
 * A session is a Session struct with what dispatch needs on every call:
 * the user, the role and when it was last used.  The session's reference
 * is its secret, so references come from the CSPRNG (store_new_ref) and
 * sessions are kept out of the store: nothing lists them, no event
 * carries them, and a session can read only its own record.  Passwords are checked against Argon2id hashes
 * (libsodium) in a worker thread, since a good hash is slow on purpose and
 * the main loop must keep serving.  Since anyone may ask, the checks are
 * bounded: at most cfg.login_workers run at once and cfg.login_queue wait;
 * a login beyond that is refused at once with TOO_MANY_PENDING_TASKS.  An
 * unknown user is checked against a dummy hash with the same parameters,
 * so that the answer takes as long as for a known user with a wrong
 * password and does not tell who has an account.  A root process on the local Unix socket
 * is authenticated by its peer credentials, as XAPI trusts local root.
 *
 * A session's rights are its user's rights now, not at login: users are
 * changed by `ternd user` writing the SQLite file while the daemon runs,
 * so every lookup re-reads the user's row (one indexed SELECT, cheap next
 * to the call it guards).  A deleted user's sessions end at their next
 * call (SESSION_INVALID); a changed role applies to that call.
 */
#include "api/api.h"

#include <sodium.h>
#include <string.h>

#include "common/xerr.h"

void
session_free(Session *s)
{
	if (s == NULL)
		return;
	g_free(s->ref);
	g_free(s->uuid);
	g_free(s->originator);
	g_free(s->created);
	g_free(s->user);
	g_free(s);
}

/* Re-reads S's user from the store: FALSE when the user is gone (or its
 * role is unreadable), else S's role becomes the user's current one. */
static gboolean
session_refresh_rights(Api *api, Session *s)
{
	g_autoptr(StoreUser) u = NULL;
	Role r;

	if (s->local_root)
		return TRUE;
	u = store_user_get(api->store, s->user);
	if (u == NULL || !role_parse(u->role, &r)) {
		g_info("session: %s no longer exists; its session ends",
		       s->user);
		return FALSE;
	}
	if (r != s->role)
		g_info("session: %s's role is now %s (was %s)", s->user,
		       role_name(r), role_name(s->role));
	s->role = r;
	return TRUE;
}

Session *
session_lookup(Api *api, const char *ref)
{
	Session *s = g_hash_table_lookup(api->sessions, ref);
	gint64 now = g_get_monotonic_time();

	if (s == NULL)
		return NULL;
	if (api->cfg.session_idle_s > 0 &&
	    now - s->last_active_us > (gint64)api->cfg.session_idle_s *
					      G_USEC_PER_SEC) {
		g_info("session: %s's session expired", s->user);
		g_hash_table_remove(api->sessions, ref);
		return NULL;
	}
	if (!session_refresh_rights(api, s)) {
		g_hash_table_remove(api->sessions, ref);
		return NULL;
	}
	s->last_active_us = now;
	return s;
}

void
session_sweep(Api *api)
{
	guint n = 0;
	g_autofree gpointer *refs = g_hash_table_get_keys_as_array(
		api->sessions, &n);

	/* session_lookup expires what is idle. */
	for (guint i = 0; i < n; i++) {
		g_autofree char *ref = g_strdup(refs[i]);
		Session *s = g_hash_table_lookup(api->sessions, ref);
		gint64 saved = s->last_active_us;
		if ((s = session_lookup(api, ref)) != NULL)
			s->last_active_us = saved;
	}
}

static Session *
session_create(Api *api, const char *user, Role role, gboolean local_root,
	       const char *originator, GError **error)
{
	Session *s = g_new0(Session, 1);
	g_autofree char *now = api_now_datetime();

	s->ref = store_new_ref();
	s->uuid = store_new_uuid();
	s->user = g_strdup(user);
	s->role = role;
	s->local_root = local_root;
	s->originator = g_strdup(originator);
	s->created = g_strdup(now);
	s->last_active_us = g_get_monotonic_time();
	g_hash_table_insert(api->sessions, s->ref, s);
	g_info("session: %s logged in as %s", user, role_name(role));
	return s;
}

typedef struct {
	char *user;
	char *password;
	char *hash;
	Role role;
} LoginCheck;

static void
login_check_free(LoginCheck *lc)
{
	g_free(lc->user);
	if (lc->password) {
		sodium_memzero(lc->password, strlen(lc->password));
		g_free(lc->password);
	}
	g_free(lc->hash);
	g_free(lc);
}

/* A hash of a random password with the parameters of `ternd user add`,
 * made once, for the users who do not exist. */
static gpointer
login_dummy_hash(gpointer unused)
{
	static char hash[crypto_pwhash_STRBYTES];
	char pw[33];

	randombytes_buf(pw, sizeof pw - 1);
	pw[sizeof pw - 1] = 0;
	if (crypto_pwhash_str_alg(hash, pw, sizeof pw - 1,
				  crypto_pwhash_OPSLIMIT_INTERACTIVE,
				  crypto_pwhash_MEMLIMIT_INTERACTIVE,
				  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return NULL;
	return hash;
}

static void
login_verify_thread(GTask *task, gpointer source, gpointer data,
		    GCancellable *cancel)
{
	static GOnce dummy = G_ONCE_INIT;
	LoginCheck *lc = data;
	const char *hash = lc->hash;
	gboolean ok;

	if (hash == NULL)
		hash = g_once(&dummy, login_dummy_hash, NULL);
	ok = hash != NULL && crypto_pwhash_str_verify(hash, lc->password,
					strlen(lc->password)) == 0;
	g_task_return_boolean(task, ok && lc->hash != NULL);
}

/* Starts waiting checks while a worker is free. */
static void
login_run_next(Api *api)
{
	guint workers = MAX(api->cfg.login_workers, 1);

	while (api->logins_running < workers &&
	       !g_queue_is_empty(&api->logins_waiting)) {
		GTask *t = g_queue_pop_head(&api->logins_waiting);
		api->logins_running++;
		g_task_run_in_thread(t, login_verify_thread);
		g_object_unref(t);
	}
}

static void
login_verified(GObject *source, GAsyncResult *res, gpointer data)
{
	Call *call = data;
	LoginCheck *lc = g_task_get_task_data(G_TASK(res));
	GError *e = NULL;

	call->api->logins_running--;
	login_run_next(call->api);

	if (!g_task_propagate_boolean(G_TASK(res), NULL)) {
		g_info("session: authentication failed for %s", lc->user);
		call_fail(call, xerr_new("SESSION_AUTHENTICATION_FAILED",
			lc->user, "Authentication failure", NULL));
	} else {
		const char *orig = call_arg_string(call, 3, NULL);
		Session *s = session_create(call->api, lc->user, lc->role,
					    FALSE, orig ? orig : "", &e);
		if (s == NULL)
			call_fail(call, e);
		else
			call_return_string(call, s->ref);
	}
	call_unref(call);
}

static void
session_login_with_password(Call *call)
{
	GError *e = NULL;
	const char *user = call_arg_string(call, 0, &e);
	const char *pwd = user ? call_arg_string(call, 1, &e) : NULL;
	const char *orig;

	if (pwd == NULL)
		return call_fail(call, e);
	orig = call_arg_string(call, 3, NULL);

	if (call->origin.local && call->origin.root &&
	    (strcmp(user, "root") == 0 || *user == 0)) {
		Session *s = session_create(call->api, "root", ROLE_POOL_ADMIN,
					    TRUE, orig ? orig : "", &e);
		if (s == NULL)
			return call_fail(call, e);
		return call_return_string(call, s->ref);
	}

	Api *api = call->api;
	if (api->logins_running >= MAX(api->cfg.login_workers, 1) &&
	    g_queue_get_length(&api->logins_waiting) >= api->cfg.login_queue) {
		g_info("session: refused a login for %s: %u checks running, "
		       "%u waiting", user, api->logins_running,
		       g_queue_get_length(&api->logins_waiting));
		return call_fail(call, xerr_new("TOO_MANY_PENDING_TASKS",
						NULL));
	}
	LoginCheck *lc = g_new0(LoginCheck, 1);
	g_autoptr(StoreUser) u = store_user_get(call->api->store, user);
	lc->user = g_strdup(user);
	lc->password = g_strdup(pwd);
	if (u != NULL && role_parse(u->role, &lc->role))
		lc->hash = g_strdup(u->hash);
	GTask *t = g_task_new(NULL, NULL, login_verified, call_ref(call));
	g_task_set_task_data(t, lc, (GDestroyNotify)login_check_free);
	g_queue_push_tail(&api->logins_waiting, t);
	login_run_next(api);
}

static void
session_logout(Call *call)
{
	Session *s = call->session;

	g_hash_table_remove(call->api->sessions, s->ref);
	call->session = NULL;
	call_return(call, NULL);
}

/* The session named by argument 1, which must be the caller's own. */
static Session *
session_self(Call *call, GError **error)
{
	const char *ref = call_arg_string(call, 1, error);

	if (ref == NULL)
		return NULL;
	if (strcmp(ref, call->session->ref) != 0) {
		xerr_set(error, "HANDLE_INVALID", "session", "", NULL);
		return NULL;
	}
	return call->session;
}

static JsonObject *
session_record(Api *api, Session *s)
{
	JsonObject *rec = json_object_new();
	g_autofree char *now = api_now_datetime();
	JsonArray *roles = json_array_new();

	json_object_set_string_member(rec, "uuid", s->uuid);
	json_object_set_string_member(rec, "this_host", api->host_ref);
	json_object_set_string_member(rec, "this_user", "OpaqueRef:NULL");
	json_object_set_string_member(rec, "auth_user_name", s->user);
	json_object_set_string_member(rec, "last_active", now);
	json_object_set_string_member(rec, "validation_time", s->created);
	json_object_set_boolean_member(rec, "is_local_superuser",
				       s->local_root);
	json_object_set_string_member(rec, "originator", s->originator);
	json_array_add_string_element(roles, role_name(s->role));
	json_object_set_array_member(rec, "rbac_permissions", roles);
	json_object_set_object_member(rec, "other_config", json_object_new());
	return rec;
}

static void
session_get_record(Call *call)
{
	GError *e = NULL;
	Session *s = session_self(call, &e);

	if (s == NULL)
		return call_fail(call, e);
	JsonObject *rec = session_record(call->api, s);
	call_return(call, json_node_init_object(json_node_alloc(), rec));
	json_object_unref(rec);
}

/* session.get_<field>(self), for the fields of session_record. */
static void
session_get_field(Call *call)
{
	GError *e = NULL;
	Session *s = session_self(call, &e);

	if (s == NULL)
		return call_fail(call, e);
	g_autoptr(JsonObject) rec = session_record(call->api, s);
	const char *field = call->name + strlen("session.get_");
	JsonNode *v = json_object_get_member(rec, field);
	call_return(call, v ? json_node_copy(v) : NULL);
}

static void
session_get_this_host(Call *call)
{
	GError *e = NULL;

	if (session_self(call, &e) == NULL)
		return call_fail(call, e);
	call_return_string(call, call->api->host_ref);
}

static void
session_get_this_user(Call *call)
{
	GError *e = NULL;

	if (session_self(call, &e) == NULL)
		return call_fail(call, e);
	call_return_string(call, "OpaqueRef:NULL");
}

static const Method session_methods[] = {
	{ .name = "login_with_password", .fn = session_login_with_password,
	  .nargs = 4, .nargs_min = 2, .no_session = TRUE },
	{ .name = "logout", .fn = session_logout, .nargs = 1 },
	{ .name = "get_this_host", .fn = session_get_this_host, .nargs = 2 },
	{ .name = "get_this_user", .fn = session_get_this_user, .nargs = 2 },
	{ .name = "get_record", .fn = session_get_record, .nargs = 2 },
	{ .name = "get_uuid", .fn = session_get_field, .nargs = 2 },
	{ .name = "get_auth_user_name", .fn = session_get_field, .nargs = 2 },
	{ .name = "get_last_active", .fn = session_get_field, .nargs = 2 },
	{ .name = "get_is_local_superuser", .fn = session_get_field,
	  .nargs = 2 },
	{ .name = "get_rbac_permissions", .fn = session_get_field,
	  .nargs = 2 },
	{ .name = "get_originator", .fn = session_get_field, .nargs = 2 },
	{ NULL }
};

/* No field table: sessions are never listed (see the top of the file). */
const ClassDef session_class = {
	.name = "session",
	.methods = session_methods,
	.set_role = ROLE_POOL_ADMIN,
};

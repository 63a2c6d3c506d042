/*
 * user: `ternd user add|list|passwd|del`, the local user database.
 *
 * Users live in the state directory's SQLite file next to everything else,
 * and a running daemon reads a session's user from it on every call
 * (src/api/session.c): `del` ends the user's sessions and `role` changes
 * what they may do, at their next call.  Passwords are
 * hashed with Argon2id (libsodium's crypto_pwhash_str, moderate limits)
 * and read from a file or from standard input, never from the command line
 * where other users could see them; the buffers are wiped after use.
 */
#include "daemon/daemon.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static char *
user_read_password(const char *file, GError **error)
{
	char *text = NULL;
	gsize len = 0;

	if (file != NULL) {
		if (!g_file_get_contents(file, &text, &len, error))
			return NULL;
	} else {
		char buf[1024];
		if (fgets(buf, sizeof buf, stdin) == NULL) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
				    "no password on standard input");
			return NULL;
		}
		text = g_strdup(buf);
		sodium_memzero(buf, sizeof buf);
	}
	text[strcspn(text, "\r\n")] = 0;
	if (*text == 0) {
		g_free(text);
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "the password is empty");
		return NULL;
	}
	return text;
}

static char *
user_hash(const char *password, GError **error)
{
	char out[crypto_pwhash_STRBYTES];

	if (crypto_pwhash_str_alg(out, password, strlen(password),
				  crypto_pwhash_OPSLIMIT_INTERACTIVE,
				  crypto_pwhash_MEMLIMIT_INTERACTIVE,
				  crypto_pwhash_ALG_ARGON2ID13) != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "out of memory while hashing");
		return NULL;
	}
	return g_strdup(out);
}

static int
user_fail(const char *what, GError *e)
{
	fprintf(stderr, "ternd user: %s%s%s\n", what, e ? ": " : "",
		e ? e->message : "");
	g_clear_error(&e);
	return 1;
}

int
user_command(const Config *cfg, int argc, char **argv)
{
	g_autofree char *role = NULL;
	g_autofree char *pwfile = NULL;
	GOptionEntry entries[] = {
		{ "role", 0, 0, G_OPTION_ARG_STRING, &role,
		  "Role: pool-admin, pool-operator, vm-power-admin, vm-admin, "
		  "vm-operator, read-only", "ROLE" },
		{ "password-file", 0, 0, G_OPTION_ARG_FILENAME, &pwfile,
		  "Read the password from FILE (default: standard input)",
		  "FILE" },
		{ NULL }
	};
	g_autoptr(GOptionContext) ctx = g_option_context_new(
		"add NAME --role ROLE | list | passwd NAME | role NAME --role ROLE "
		"| del NAME");
	GError *e = NULL;
	Role r;

	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &e))
		return user_fail("bad arguments", e);
	if (argc < 2)
		return user_fail("say add, list, passwd, role or del", NULL);

	g_mkdir_with_parents(cfg->state_dir, 0700);
	g_autofree char *db = g_build_filename(cfg->state_dir, "tern.db", NULL);
	g_autoptr(Store) store = store_open(db, &e);
	if (store == NULL)
		return user_fail("cannot open the database", e);

	const char *verb = argv[1];
	const char *name = argc > 2 ? argv[2] : NULL;
	if (strcmp(verb, "list") == 0) {
		g_autoptr(GPtrArray) users = store_user_list(store);
		for (guint i = 0; i < users->len; i++) {
			StoreUser *u = users->pdata[i];
			printf("%-24s %s\n", u->name, u->role);
		}
		return 0;
	}
	if (name == NULL || *name == 0)
		return user_fail("a user name is needed", NULL);
	if (strcmp(verb, "del") == 0) {
		g_autoptr(StoreUser) u = store_user_get(store, name);
		if (u == NULL)
			return user_fail("no such user", NULL);
		return store_user_delete(store, name, &e) ? 0
			: user_fail("delete", e);
	}
	if (strcmp(verb, "role") == 0) {
		g_autoptr(StoreUser) u = store_user_get(store, name);
		if (u == NULL)
			return user_fail("no such user", NULL);
		if (role == NULL || !role_parse(role, &r))
			return user_fail("--role must name one of the six "
					 "XAPI roles", NULL);
		g_free(u->role);
		u->role = g_strdup(role_name(r));
		return store_user_put(store, u, &e) ? 0
			: user_fail("save", e);
	}
	if (strcmp(verb, "add") != 0 && strcmp(verb, "passwd") != 0)
		return user_fail("unknown command", NULL);

	g_autoptr(StoreUser) old = store_user_get(store, name);
	if (strcmp(verb, "add") == 0) {
		if (old != NULL)
			return user_fail("the user exists", NULL);
		if (role == NULL || !role_parse(role, &r))
			return user_fail("--role must name one of the six "
					 "XAPI roles", NULL);
	} else if (old == NULL) {
		return user_fail("no such user", NULL);
	}
	char *pw = user_read_password(pwfile, &e);
	if (pw == NULL)
		return user_fail("password", e);
	StoreUser u = {
		.name = (char *)name,
		.hash = user_hash(pw, &e),
		.role = old ? old->role : (char *)role_name(r),
	};
	sodium_memzero(pw, strlen(pw));
	g_free(pw);
	if (u.hash == NULL)
		return user_fail("hash", e);
	gboolean ok = store_user_put(store, &u, &e);
	g_free(u.hash);
	return ok ? 0 : user_fail("save", e);
}

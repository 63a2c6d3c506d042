/*
 * migrate-qemu: migrate_send's options, and getting a QEMU ready to send
 * or receive.
 *
 * Options are strings (XAPI style).  Every key is checked: an unknown key
 * or a value tern cannot honour is refused with INVALID_VALUE, never
 * ignored.  Preparing a QEMU is a short, fixed sequence of QMP commands
 * run in order: TLS credentials from the migration's pre-shared key
 * (MIGRATE_TLS_PRIORITY: AES-128-GCM, as GnuTLS's ChaCha20 runs at a
 * tenth of its speed here, see MIGRATION.md), then capabilities, then
 * parameters.
 */
#include "migrate/migrate-int.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <gnutls/gnutls.h>
#include <sodium.h>
#include <string.h>

#include "common/xerr.h"
#include "migrate/qualify.h"
#include "qemu/confine.h"
#include "qemu/driver.h"

#define MiB (1024.0 * 1024.0)

void
migrate_ignore_reply(Qmp *qmp, JsonNode *ret, const GError *error,
		     gpointer data)
{
	if (error != NULL)
		g_debug("migrate: ignored QMP error: %s", error->message);
}

static gboolean
opt_is(const char *v)
{
	return strcmp(v, "true") == 0;
}

/* The keys and value formats are qualify.c's table, the one the
 * destination checks against; what is left here is turning the strings
 * into values, and refusing what this daemon does not implement. */
gboolean
migrate_options_parse(JsonObject *options, MigrateOptions *o, GError **error)
{
	g_autoptr(GList) keys = json_object_get_members(options);

	memset(o, 0, sizeof *o);
	o->secure = TRUE;
	o->escalate = TRUE;
	o->parallel = 1;
	o->max_duration_s = MIGRATE_MAX_DURATION_S;
	for (GList *l = keys; l; l = l->next) {
		const char *k = l->data;
		JsonNode *n = json_object_get_member(options, k);
		const char *expect;

		if (!qualify_option_valid(k, n, &expect)) {
			g_autofree char *v = JSON_NODE_HOLDS_VALUE(n) &&
				json_node_get_value_type(n) == G_TYPE_STRING
				? g_strdup(json_node_get_string(n))
				: json_to_string(n, FALSE);
			g_autofree char *why = g_strdup_printf("%s must be %s",
							       k, expect);
			xerr_set(error, "INVALID_VALUE", k, v, why, NULL);
			return FALSE;
		}
		const char *v = json_node_get_string(n);
		if (strcmp(k, "mode") == 0)
			o->direct = strcmp(v, "direct") == 0;
		else if (strcmp(k, "control") == 0)
			o->p2p = strcmp(v, "p2p") == 0;
		else if (strcmp(k, "secure") == 0)
			o->secure = opt_is(v);
		else if (strcmp(k, "paused") == 0)
			o->paused = opt_is(v);
		else if (strcmp(k, "escalate") == 0)
			o->escalate = opt_is(v);
		else if (strcmp(k, "auto_converge") == 0)
			o->auto_converge = opt_is(v);
		else if (strcmp(k, "postcopy") == 0)
			o->postcopy = opt_is(v);
		else if (strcmp(k, "bandwidth") == 0)
			o->bandwidth_mib = g_ascii_strtod(v, NULL);
		else if (strcmp(k, "downtime") == 0)
			o->downtime_ms = g_ascii_strtoll(v, NULL, 10);
		else if (strcmp(k, "max_duration") == 0)
			/* 1 to 604800, checked by the table above. */
			o->max_duration_s = g_ascii_strtoll(v, NULL, 10);
		else if (strcmp(k, "parallel") == 0)
			o->parallel = g_ascii_strtoll(v, NULL, 10);
		else if (strcmp(k, "dest_name") == 0) {
			g_free(o->dest_name);
			o->dest_name = g_strdup(v);
		} else if (strcmp(k, "compress") == 0 && opt_is(v)) {
			xerr_set(error, "INVALID_VALUE", k, v,
				 "tern does not compress migration streams: "
				 "QEMU's compression costs more CPU than it "
				 "saves on this link", NULL);
			return FALSE;
		}
	}
	if (o->parallel > 1) {
		g_autofree char *v = g_strdup_printf("%" G_GINT64_FORMAT,
						     o->parallel);
		xerr_set(error, "INVALID_VALUE", "parallel", v,
			 "parallel streams are not supported yet: QEMU 7.2 "
			 "cannot open extra channels over a passed socket",
			 NULL);
		return FALSE;
	}
	if (o->postcopy) {
		xerr_set(error, "INVALID_VALUE", "postcopy", "true",
			 "post-copy is not offered: a failure during it would "
			 "lose the VM, which tern promises never to do", NULL);
		return FALSE;
	}
	return TRUE;
}

void
migrate_options_clear(MigrateOptions *o)
{
	g_free(o->dest_name);
	o->dest_name = NULL;
}

/* ---- Preparing QEMU ------------------------------------------------- */

typedef struct {
	Api *api;
	char *vm_ref;
	GQueue cmds;              /* Step */
	QmpReplyFn done;
	gpointer data;
} Seq;

typedef struct {
	char *cmd;
	JsonObject *args;
} Step;

static void
step_free(Step *s)
{
	g_free(s->cmd);
	if (s->args)
		json_object_unref(s->args);
	g_free(s);
}

static void seq_next(Seq *seq);

static void
seq_reply(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	Seq *seq = data;
	Step *s = g_queue_pop_head(&seq->cmds);

	if (error != NULL) {
		g_autoptr(GError) e = g_error_new(error->domain, error->code,
						  "%s: %s", s->cmd,
						  error->message);
		step_free(s);
		seq->done(qmp, NULL, e, seq->data);
		g_queue_clear_full(&seq->cmds, (GDestroyNotify)step_free);
		g_free(seq->vm_ref);
		g_free(seq);
		return;
	}
	step_free(s);
	seq_next(seq);
}

static void
seq_next(Seq *seq)
{
	Step *s = g_queue_peek_head(&seq->cmds);

	if (s == NULL) {
		seq->done(NULL, NULL, NULL, seq->data);
		g_free(seq->vm_ref);
		g_free(seq);
		return;
	}
	qemu_vm_call(seq->api, seq->vm_ref, s->cmd, s->args, seq_reply, seq);
}

static void
seq_add(Seq *seq, const char *cmd, JsonObject *args /* takes */)
{
	Step *s = g_new0(Step, 1);

	s->cmd = g_strdup(cmd);
	s->args = args;
	g_queue_push_tail(&seq->cmds, s);
}

static JsonObject *
cap(JsonArray *caps, const char *name, gboolean on)
{
	JsonObject *c = json_object_new();

	json_object_set_string_member(c, "capability", name);
	json_object_set_boolean_member(c, "state", on);
	json_array_add_object_element(caps, c);
	return c;
}

/* The Diffie-Hellman group for QEMU's TLS server, in PEM: RFC 7919's
 * ffdhe2048, which GnuTLS carries.  Without a dh-params.pem in its
 * directory, a tls-creds-psk server generates a fresh 2048-bit group when
 * it is created, which costs 0.2 to 1.5 s of CPU here on every migration
 * (and TLS 1.3 with ECDHE never even uses it).  Made once, kept. */
static const char *
migrate_dh_params_pem(GError **error)
{
	static char *pem;   /* main loop only */
	gnutls_dh_params_t params = NULL;
	gnutls_datum_t out = { NULL, 0 };
	int rc;

	if (pem != NULL)
		return pem;
	rc = gnutls_dh_params_init(&params);
	if (rc == 0)
		rc = gnutls_dh_params_import_raw2(params,
			&gnutls_ffdhe_2048_group_prime,
			&gnutls_ffdhe_2048_group_generator,
			gnutls_ffdhe_2048_key_bits);
	if (rc == 0)
		rc = gnutls_dh_params_export2_pkcs3(params,
						    GNUTLS_X509_FMT_PEM, &out);
	if (params != NULL)
		gnutls_dh_params_deinit(params);
	if (rc < 0) {
		xerr_set(error, "INTERNAL_ERROR", "Diffie-Hellman parameters",
			 gnutls_strerror(rc), NULL);
		return NULL;
	}
	pem = g_strndup((const char *)out.data, out.size);
	gnutls_free(out.data);
	return pem;
}

/* NAME in the directory QEMU's tls-creds-psk reads (the directory itself
 * for NULL): keys.psk, "<user>:<hex key>", and for a server the
 * Diffie-Hellman group, dh-params.pem.  QEMU reads them after it dropped
 * root (src/qemu/confine.h), so they are its group's (0750 and 0640),
 * never the world's. */
static char *
migrate_tls_path(QemuVm *qv, const char *name)
{
	return g_build_filename(qemu_vm_dir(qv), "migrate-tls", name, NULL);
}

static char *
migrate_write_psk(Api *api, const char *vm_ref, const char *psk,
		  gboolean server, GError **error)
{
	QemuVm *qv = qemu_vm_lookup(api, vm_ref);
	const char *dh = NULL;

	if (qv == NULL) {
		xerr_set(error, "INTERNAL_ERROR", "the VM has no QEMU", NULL);
		return NULL;
	}
	if (server && (dh = migrate_dh_params_pem(error)) == NULL)
		return NULL;
	g_autofree char *dir = migrate_tls_path(qv, NULL);
	g_autofree char *file = migrate_tls_path(qv, "keys.psk");
	g_autofree char *dh_file = migrate_tls_path(qv, "dh-params.pem");
	if (g_mkdir_with_parents(dir, 0700) != 0) {
		xerr_set(error, "INTERNAL_ERROR", dir, g_strerror(errno),
			 NULL);
		return NULL;
	}
	g_autofree char *text = g_strdup_printf("tern:%s\n", psk);
	ConfineConf cf = qemu_confine_conf(api);
	gboolean ok =
		confine_share(&cf, dir, 0750, error) &&
		g_file_set_contents_full(file, text, -1,
					 G_FILE_SET_CONTENTS_CONSISTENT, 0600,
					 error) &&
		confine_share(&cf, file, 0640, error) &&
		(dh == NULL ||
		 (g_file_set_contents_full(dh_file, dh, -1,
					   G_FILE_SET_CONTENTS_CONSISTENT,
					   0600, error) &&
		  confine_share(&cf, dh_file, 0640, error)));
	sodium_memzero(text, strlen(text));
	return ok ? g_steal_pointer(&dir) : NULL;
}

void
migrate_qemu_forget_key(Api *api, const char *vm_ref)
{
	QemuVm *qv = qemu_vm_lookup(api, vm_ref);

	if (qv == NULL)
		return;
	g_autofree char *dir = migrate_tls_path(qv, NULL);
	g_autofree char *file = migrate_tls_path(qv, "keys.psk");
	g_autofree char *dh_file = migrate_tls_path(qv, "dh-params.pem");
	/* Only the files go: deleting QEMU's credentials object while the
	 * migration state may still refer to it crashed QEMU 7.2 (and with
	 * it the VM); each migration names its own object instead. */
	g_unlink(file);
	g_unlink(dh_file);
	g_rmdir(dir);
}

void
migrate_qemu_prepare(Api *api, const char *vm_ref, const char *psk,
		     gboolean source, const MigrateOptions *o,
		     QmpReplyFn done, gpointer data)
{
	Seq *seq = g_new0(Seq, 1);
	GError *e = NULL;

	seq->api = api;
	seq->vm_ref = g_strdup(vm_ref);
	seq->done = done;
	seq->data = data;
	g_queue_init(&seq->cmds);

	/* QEMU's TLS sends slowly and receives well: it encrypts only a
	 * direct stream, and decrypts both a direct and a tunnelled one
	 * (which the source's relay encrypted, relay.c). */
	gboolean qemu_tls = o->secure && (o->direct || !source);
	g_autofree char *rnd = migrate_random_hex(8);
	g_autofree char *tls_id = g_strconcat("tern-tls-", rnd, NULL);

	if (qemu_tls) {
		g_autofree char *dir = migrate_write_psk(api, vm_ref, psk,
							 !source, &e);
		if (dir == NULL) {
			done(NULL, NULL, e, data);
			g_error_free(e);
			g_free(seq->vm_ref);
			g_free(seq);
			return;
		}
		JsonObject *a = json_object_new();
		json_object_set_string_member(a, "qom-type", "tls-creds-psk");
		json_object_set_string_member(a, "id", tls_id);
		json_object_set_string_member(a, "endpoint",
					      source ? "client" : "server");
		json_object_set_string_member(a, "dir", dir);
		if (source)
			json_object_set_string_member(a, "username", "tern");
		json_object_set_string_member(a, "priority",
					      MIGRATE_TLS_PRIORITY);
		seq_add(seq, "object-add", a);
	}
	JsonObject *c = json_object_new();
	JsonArray *caps = json_array_new();
	cap(caps, "events", TRUE);
	if (source) {
		cap(caps, "pause-before-switchover", TRUE);
		/* On whenever the policy may need it (policy.c). */
		cap(caps, "auto-converge", o->auto_converge || o->escalate);
	}
	json_object_set_array_member(c, "capabilities", caps);
	seq_add(seq, "migrate-set-capabilities", c);

	JsonObject *p = json_object_new();
	json_object_set_string_member(p, "tls-creds", qemu_tls ? tls_id : "");
	json_object_set_string_member(p, "tls-hostname", "");
	if (source) {
		/* QEMU caps a migration at 128 MiB/s unless told otherwise;
		 * no cap means as fast as the link goes. */
		double bw = o->bandwidth_mib > 0 ? o->bandwidth_mib * MiB
						 : 100000.0 * MiB;
		json_object_set_int_member(p, "max-bandwidth", (gint64)bw);
		if (!o->auto_converge && o->escalate) {
			/* Armed but out of reach until the policy says so. */
			json_object_set_int_member(p,
				"throttle-trigger-threshold", 100);
			json_object_set_int_member(p, "cpu-throttle-initial",
						   5);
			json_object_set_int_member(p,
				"cpu-throttle-increment", 5);
		}
		if (o->downtime_ms > 0)
			json_object_set_int_member(p, "downtime-limit",
						   o->downtime_ms);
	}
	seq_add(seq, "migrate-set-parameters", p);
	seq_next(seq);
}

/*
 * vm-migrate: moves a VM to another host (MIGRATION.md).
 *
 * Managed by default: tern opens a second connection to --to, logs in
 * there, and libtern does the handshake (host.migrate_receive on the
 * destination, Async.VM.migrate_send on the source).  With --p2p the
 * destination's URL and credentials go to the source daemon instead.
 *
 * --test runs VM.assert_can_migrate and, when the server has the tern
 * extension VM.migrate_check, prints its blockers or its prediction;
 * nothing moves.
 *
 * Progress: a bar on a terminal, otherwise one plain line per change, from
 * the task's progress and other_config (phase, transferred_bytes,
 * remaining_bytes, mbps, eta_s).  The final figures (total_ms,
 * downtime_ms, blackout_ms, bytes) come from the last task record.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

typedef struct {
  char *to;
  char *user;
  char *password_file;
  char *to_fingerprint;
  gboolean p2p, direct, insecure, offline, paused, test, to_tofu;
  gint bandwidth, downtime, max_duration;
  char *rename;
  GStrv options;          /* --option KEY=VALUE */
} MigrateArgs;

typedef struct {
  gboolean tty;
  gboolean quiet;         /* --json: no progress output */
  char *last_line;
  JsonObject *final;      /* the last task record seen */
} MigrateProgress;

static const char *
vm_migrate_figure(JsonObject *oc, const char *key)
{
  const char *v = tern_record_get_string(oc, key);
  return v ? v : "";
}

static double
vm_migrate_number(JsonObject *oc, const char *key)
{
  const char *v = tern_record_get_string(oc, key);
  return v ? g_ascii_strtod(v, NULL) : 0.0;
}

static void
vm_migrate_progress(JsonObject *task, gpointer user_data)
{
  MigrateProgress *mp = user_data;
  g_clear_pointer(&mp->final, json_object_unref);
  mp->final = json_object_ref(task);
  if (mp->quiet)
    return;
  double progress = json_object_get_double_member_with_default(task, "progress", 0.0);
  JsonNode *ocn = json_object_get_member(task, "other_config");
  JsonObject *oc = ocn && JSON_NODE_HOLDS_OBJECT(ocn) ? json_node_get_object(ocn) : NULL;
  int pct = (int)(progress * 100.0 + 0.5);
  g_autofree char *line = NULL;

  if (mp->tty) {
    char bar[31];
    int filled = MIN(30, MAX(0, pct * 30 / 100));
    memset(bar, '#', (size_t)filled);
    memset(bar + filled, '.', (size_t)(30 - filled));
    bar[30] = '\0';
    /* The daemon's mbps is QEMU's: megabits per second. */
    line = g_strdup_printf("\r[%s] %3d%%  %7.1f MiB/s  remaining %6.0f MiB  ETA %4.0fs  %-12s",
                           bar, pct, vm_migrate_number(oc, "mbps") * 1e6 / 8 / (1024.0 * 1024.0),
                           vm_migrate_number(oc, "remaining_bytes") / (1024.0 * 1024.0),
                           vm_migrate_number(oc, "eta_s"), vm_migrate_figure(oc, "phase"));
  } else {
    /* One line per change, only with the figures the daemon has sent. */
    static const char *const keys[] = { "phase", "transferred_bytes", "remaining_bytes",
                                        "mbps", "eta_s", "policy", NULL };
    g_autoptr(GString) l = g_string_new(NULL);
    g_string_printf(l, "progress %d%%", pct);
    for (guint i = 0; keys[i]; i++)
      if (*vm_migrate_figure(oc, keys[i]))
        g_string_append_printf(l, " %s=%s", keys[i], vm_migrate_figure(oc, keys[i]));
    g_string_append_c(l, '\n');
    line = g_string_free(g_steal_pointer(&l), FALSE);
  }
  if (mp->last_line && g_str_equal(mp->last_line, line))
    return;
  fputs(line, stdout);
  fflush(stdout);
  g_free(mp->last_line);
  mp->last_line = g_steal_pointer(&line);
}

static gboolean
vm_migrate_params(Cli *cli, MigrateArgs *a, TernMigrateParams *p, int *rc)
{
  tern_migrate_params_init(p);
  p->extra = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  p->live = !a->offline;
  p->mode = a->direct ? "direct" : "tunnelled";
  p->secure = !a->insecure;
  if (a->bandwidth < 0 || a->downtime < 0 || a->max_duration < 0) {
    *rc = cli_usage_error(cli, "--bandwidth, --downtime and --max-duration must be positive");
    return FALSE;
  }
  p->bandwidth_mib = (guint)a->bandwidth;
  p->downtime_ms = (guint)a->downtime;
  p->max_duration_s = (guint)a->max_duration;
  p->dest_name = a->rename;
  p->paused = a->paused;
  p->dest_fingerprint = a->to_fingerprint;
  p->dest_trust_on_first_use = a->to_tofu;
  for (guint i = 0; a->options && a->options[i]; i++) {
    const char *eq = strchr(a->options[i], '=');
    if (!eq || eq == a->options[i]) {
      *rc = cli_usage_error(cli, "--option takes KEY=VALUE, not \"%s\"", a->options[i]);
      return FALSE;
    }
    g_hash_table_insert(p->extra, g_strndup(a->options[i], (gsize)(eq - a->options[i])),
                        g_strdup(eq + 1));
  }
  return TRUE;
}

/* Reads the p2p password: --password-file, else $TERN_PASSWORD. */
static char *
vm_migrate_password(MigrateArgs *a, GError **error)
{
  if (a->password_file) {
    char *text = NULL;
    gsize len = 0;
    if (!g_file_get_contents(a->password_file, &text, &len, error))
      return NULL;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
      text[--len] = '\0';
    return text;
  }
  return g_strdup(g_getenv("TERN_PASSWORD") ? g_getenv("TERN_PASSWORD") : "");
}

/* Prints the blockers or the prediction of VM.migrate_check. */
static void
vm_migrate_print_check(JsonObject *check)
{
  JsonNode *bn = json_object_get_member(check, "blockers");
  JsonArray *blockers = bn && JSON_NODE_HOLDS_ARRAY(bn) ? json_node_get_array(bn) : NULL;
  if (blockers && json_array_get_length(blockers) > 0) {
    CliTable *t = cli_table_new("CODE", "OBJECTS", "MESSAGE", "FIX", NULL);
    for (guint i = 0; i < json_array_get_length(blockers); i++) {
      JsonNode *b = json_array_get_element(blockers, i);
      if (!JSON_NODE_HOLDS_OBJECT(b))
        continue;
      JsonObject *o = json_node_get_object(b);
      g_autofree char *objects = cli_format_value(json_object_get_member(o, "objects"));
      cli_table_add(t, tern_record_get_string(o, "code"), objects,
                    tern_record_get_string(o, "message"), tern_record_get_string(o, "fix"));
    }
    cli_table_print(t);
    return;
  }
  JsonNode *pn = json_object_get_member(check, "prediction");
  if (pn && JSON_NODE_HOLDS_OBJECT(pn)) {
    printf("no blockers; prediction:\n");
    JsonObjectIter it;
    const char *k;
    JsonNode *v;
    json_object_iter_init(&it, json_node_get_object(pn));
    while (json_object_iter_next(&it, &k, &v)) {
      g_autofree char *vs = cli_format_value(v);
      printf("  %s: %s\n", k, vs ? vs : "");
    }
  } else {
    printf("no blockers\n");
  }
}

static int
vm_migrate_test(Cli *cli, const char *vm, JsonObject *dest, TernMigrateParams *p, gboolean p2p)
{
  g_autoptr(JsonObject) options = tern_migrate_params_to_options(p);
  if (p2p)
    json_object_set_string_member(options, "control", "p2p");
  g_autoptr(GError) assert_error = NULL;
  g_autoptr(GError) error = NULL;
  JsonNode *ok = tern_callf(cli->conn, &assert_error, "VM.assert_can_migrate",
                            "sobooo", vm, dest, p->live, NULL, NULL, options);
  if (ok)
    json_node_unref(ok);
  g_autoptr(JsonObject) check = NULL;
  if (tern_has_method(cli->conn, "VM.migrate_check")) {
    check = tern_callf_object(cli->conn, &error, "VM.migrate_check", "soo", vm, dest, options);
    if (!check)
      return cli_fail(error);
  }
  JsonNode *bn = check ? json_object_get_member(check, "blockers") : NULL;
  gboolean blocked = bn && JSON_NODE_HOLDS_ARRAY(bn) && json_array_get_length(json_node_get_array(bn)) > 0;

  if (cli->json) {
    g_autoptr(JsonObject) out = json_object_new();
    json_object_set_boolean_member(out, "can_migrate", !assert_error && !blocked);
    if (assert_error && tern_error_code(assert_error)) {
      JsonArray *e = json_array_new();
      json_array_add_string_element(e, tern_error_code(assert_error));
      g_auto(GStrv) params = tern_error_params(assert_error);
      for (guint i = 0; params[i]; i++)
        json_array_add_string_element(e, params[i]);
      json_object_set_array_member(out, "error", e);
    } else if (assert_error) {
      json_object_set_string_member(out, "error", assert_error->message);
    }
    if (check)
      json_object_set_object_member(out, "check", json_object_ref(check));
    cli_print_json_object(out);
  } else {
    if (check)
      vm_migrate_print_check(check);
    if (!assert_error && !blocked)
      printf("VM can migrate\n");
  }
  if (assert_error)
    return cli->json ? (tern_error_code(assert_error) ? CLI_EXIT_SERVER : CLI_EXIT_CONNECT)
                     : cli_fail(assert_error);
  return blocked ? CLI_EXIT_SERVER : CLI_EXIT_OK;
}

static void
vm_migrate_print_result(Cli *cli, TernConn *dst, const char *new_ref, JsonObject *final)
{
  static const char *const figures[] = { "total_ms", "downtime_ms", "blackout_ms", "bytes", NULL };
  JsonNode *ocn = final ? json_object_get_member(final, "other_config") : NULL;
  JsonObject *oc = ocn && JSON_NODE_HOLDS_OBJECT(ocn) ? json_node_get_object(ocn) : NULL;
  g_autofree char *uuid = dst ? tern_callf_string(dst, NULL, "VM.get_uuid", "s", new_ref) : NULL;

  if (cli->json) {
    g_autoptr(JsonObject) out = json_object_new();
    json_object_set_string_member(out, "vm", new_ref);
    if (uuid)
      json_object_set_string_member(out, "uuid", uuid);
    json_object_set_object_member(out, "figures", oc ? json_object_ref(oc) : json_object_new());
    cli_print_json_object(out);
    return;
  }
  printf("migrated: %s%s%s\n", new_ref, uuid ? " uuid=" : "", uuid ? uuid : "");
  GString *s = g_string_new(NULL);
  for (guint i = 0; oc && figures[i]; i++) {
    const char *v = tern_record_get_string(oc, figures[i]);
    if (v)
      g_string_append_printf(s, "%s%s=%s", s->len ? " " : "", figures[i], v);
  }
  if (s->len)
    printf("%s\n", s->str);
  g_string_free(s, TRUE);
}

/* Connects to the destination as the mode needs, then tests or migrates. */
static int
vm_migrate_with(Cli *cli, MigrateArgs *a, const char *vm, TernMigrateParams *params)
{
  int rc;
  g_autoptr(GError) error = NULL;
  TernMigrateParams p = *params;
  g_autoptr(TernConn) dst = NULL;
  g_autofree char *password = NULL;
  const char *user = a->user ? a->user : g_getenv("TERN_USER");

  if (a->p2p) {
    if (!(password = vm_migrate_password(a, &error)))
      return cli_fail(error);
    if (!user)
      user = g_str_has_prefix(a->to, "unix://") ? "root" : NULL;
    if (!user)
      return cli_usage_error(cli, "--p2p to a remote URI needs --user and --password-file");
  } else {
    dst = cli_open(a->to, user, a->password_file, a->to_fingerprint, FALSE, &error);
    if (!dst) {
      fprintf(stderr, "tern: %s\n", error->message);
      return g_error_matches(error, TERN_ERROR, TERN_ERROR_INVALID) ? CLI_EXIT_USAGE : CLI_EXIT_CONNECT;
    }
  }

  if (a->test) {
    g_autoptr(JsonObject) dest = a->p2p ? tern_migrate_p2p_dest(a->to, user, password, &p)
                                        : tern_vm_migrate_receive(dst, &p, &error);
    rc = dest ? vm_migrate_test(cli, vm, dest, &p, a->p2p) : cli_fail(error);
  } else {
    MigrateProgress mp = { .tty = isatty(STDOUT_FILENO), .quiet = cli->json };
    g_autofree char *new_ref = a->p2p
      ? tern_vm_migrate_to_uri(cli->conn, a->to, user, password, vm, &p,
                               vm_migrate_progress, &mp, &error)
      : tern_vm_migrate(cli->conn, dst, vm, &p, vm_migrate_progress, &mp, &error);
    if (mp.tty && mp.last_line)
      putchar('\n');
    if (new_ref) {
      vm_migrate_print_result(cli, dst, new_ref, mp.final);
      rc = CLI_EXIT_OK;
    } else {
      rc = cli_fail(error);
    }
    g_free(mp.last_line);
    g_clear_pointer(&mp.final, json_object_unref);
  }
  if (password)
    explicit_bzero(password, strlen(password));
  if (dst)
    tern_logout(dst);
  return rc;
}

static int
vm_migrate_go(Cli *cli, MigrateArgs *a, const char *vm)
{
  int rc;
  TernMigrateParams p;
  if (vm_migrate_params(cli, a, &p, &rc))
    rc = vm_migrate_with(cli, a, vm, &p);
  g_hash_table_unref(p.extra);
  return rc;
}

int
vm_migrate_run(Cli *cli, int argc, char **argv)
{
  MigrateArgs a = { 0 };
  GOptionEntry entries[] = {
    { "to", 0, 0, G_OPTION_ARG_STRING, &a.to, "Destination URI (required)", "URI" },
    { "user", 0, 0, G_OPTION_ARG_STRING, &a.user, "User on the destination (or $TERN_USER)", "U" },
    { "password-file", 0, 0, G_OPTION_ARG_FILENAME, &a.password_file,
      "Password for the destination (or $TERN_PASSWORD)", "F" },
    { "to-fingerprint", 0, 0, G_OPTION_ARG_STRING, &a.to_fingerprint,
      "SHA-256 fingerprint of the destination's TLS certificate", "HEX" },
    { "to-trust-on-first-use", 0, 0, G_OPTION_ARG_NONE, &a.to_tofu,
      "With --p2p and no --to-fingerprint: the source daemon records the "
      "destination's certificate in its known_hosts on this first use", NULL },
    { "p2p", 0, 0, G_OPTION_ARG_NONE, &a.p2p, "Let the source daemon contact the destination", NULL },
    { "direct", 0, 0, G_OPTION_ARG_NONE, &a.direct, "QEMU streams straight to QEMU (not tunnelled)", NULL },
    { "insecure", 0, 0, G_OPTION_ARG_NONE, &a.insecure, "Allow an unencrypted stream (secure=false)", NULL },
    { "bandwidth", 0, 0, G_OPTION_ARG_INT, &a.bandwidth, "Bandwidth cap in MiB/s", "MiB/s" },
    { "downtime", 0, 0, G_OPTION_ARG_INT, &a.downtime, "Maximum downtime in ms", "ms" },
    { "rename", 0, 0, G_OPTION_ARG_STRING, &a.rename, "Name on the destination", "NAME" },
    { "offline", 0, 0, G_OPTION_ARG_NONE, &a.offline, "Not live (paused or halted VM)", NULL },
    { "paused", 0, 0, G_OPTION_ARG_NONE, &a.paused, "Leave the VM paused on arrival", NULL },
    { "max-duration", 0, 0, G_OPTION_ARG_INT, &a.max_duration, "Give up after this many seconds", "s" },
    { "option", 'o', 0, G_OPTION_ARG_STRING_ARRAY, &a.options,
      "Extra migrate_send option (compress, parallel, auto_converge, postcopy...)", "KEY=VALUE" },
    { "test", 0, 0, G_OPTION_ARG_NONE, &a.test, "Only check whether the VM can migrate", NULL },
    { NULL },
  };
  int rc;
  if (cli_begin(cli, entries, &argc, &argv, 1, 1, &rc)) {
    if (!a.to) {
      rc = cli_usage_error(cli, "--to is required");
    } else {
      g_autofree char *vm = cli_vm_ref(cli, argv[0], &rc);
      if (vm)
        rc = vm_migrate_go(cli, &a, vm);
    }
  }
  g_free(a.to);
  g_free(a.user);
  g_free(a.password_file);
  g_free(a.to_fingerprint);
  g_free(a.rename);
  g_strfreev(a.options);
  return rc;
}

/*
 * cli: the plumbing every tern command shares: option parsing and --help
 * from the command table, connecting and logging in, turning a GError into
 * a message and an exit code, and printing tables and JSON.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define CLI_DEFAULT_SOCKET "/run/tern/ternd.sock"

static gboolean
cli_read_password(const char *path, char **out, GError **error)
{
  char *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents(path, &text, &len, error))
    return FALSE;
  /* One line: drop the trailing newline an editor leaves. */
  while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
    text[--len] = '\0';
  *out = text;
  return TRUE;
}

TernConn *
cli_open(const char *uri, const char *user, const char *password_file,
         const char *fingerprint, gboolean insecure, GError **error)
{
  TernConnOptions opts = { .fingerprint = fingerprint, .insecure = insecure };
  g_autoptr(TernConn) c = tern_conn_open(uri, &opts, error);
  if (!c)
    return NULL;
  gboolean local = g_str_has_prefix(uri, "unix://");
  char *password = NULL;

  if (!user && local)
    user = "root";
  if (!user) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_INVALID,
                "%s: a remote URI needs --user and --password-file "
                "(or $TERN_USER and $TERN_PASSWORD)", uri);
    return NULL;
  }
  if (password_file) {
    if (!cli_read_password(password_file, &password, error))
      return NULL;
  } else if (g_getenv("TERN_PASSWORD")) {
    password = g_strdup(g_getenv("TERN_PASSWORD"));
  } else if (local) {
    password = g_strdup("");
  } else {
    g_set_error(error, TERN_ERROR, TERN_ERROR_INVALID,
                "%s: no password for %s: give --password-file or $TERN_PASSWORD", uri, user);
    return NULL;
  }
  gboolean ok = tern_login(c, user, password, error);
  explicit_bzero(password, strlen(password));
  g_free(password);
  return ok ? g_steal_pointer(&c) : NULL;
}

int
cli_fail(const GError *e)
{
  fprintf(stderr, "tern: %s\n", e->message);
  if (e->domain != TERN_ERROR)
    return CLI_EXIT_SERVER;
  switch ((TernErrorCode)e->code) {
  case TERN_ERROR_TRANSPORT:
    return CLI_EXIT_CONNECT;
  case TERN_ERROR_INVALID:
    return CLI_EXIT_USAGE;
  case TERN_ERROR_XAPI:
    if (tern_error_is(e, "SESSION_AUTHENTICATION_FAILED") || tern_error_is(e, "SESSION_INVALID"))
      return CLI_EXIT_CONNECT;
    return CLI_EXIT_SERVER;
  default:
    return CLI_EXIT_SERVER;
  }
}

int
cli_usage_error(Cli *cli, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  fprintf(stderr, "tern: %s: %s (see tern %s --help)\n", cli->cmd->name, msg, cli->cmd->name);
  return CLI_EXIT_USAGE;
}

gboolean
cli_begin(Cli *cli, GOptionEntry *entries, int *argc, char ***argv,
          int min, int max, int *rc)
{
  /* Every command also takes --json after its name. */
  g_autoptr(GArray) all = g_array_new(TRUE, TRUE, sizeof(GOptionEntry));
  for (GOptionEntry *e = entries; e && e->long_name; e++)
    g_array_append_val(all, *e);
  GOptionEntry json = { "json", 0, 0, G_OPTION_ARG_NONE, &cli->json, "Print JSON for scripts", NULL };
  g_array_append_val(all, json);

  g_autofree char *prg = g_strdup_printf("tern %s", cli->cmd->name);
  g_set_prgname(prg);
  g_autoptr(GOptionContext) ctx = g_option_context_new(cli->cmd->usage);
  g_option_context_set_summary(ctx, cli->cmd->summary);
  g_option_context_add_main_entries(ctx, (GOptionEntry *)(void *)all->data, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse(ctx, argc, argv, &error)) {
    *rc = cli_usage_error(cli, "%s", error->message);
    return FALSE;
  }
  /* Keep only the positional arguments. */
  (*argc)--;
  (*argv)++;
  if (*argc < min || (max >= 0 && *argc > max)) {
    *rc = cli_usage_error(cli, "expected %s", *cli->cmd->usage ? cli->cmd->usage : "no arguments");
    return FALSE;
  }

  g_autofree char *uri = NULL;
  if (cli->uri)
    uri = g_strdup(cli->uri);
  else
    uri = g_strdup_printf("unix://%s", g_getenv("TERN_SOCKET") ? g_getenv("TERN_SOCKET")
                                                                : CLI_DEFAULT_SOCKET);
  cli->conn = cli_open(uri, cli->user, cli->password_file, cli->fingerprint, cli->insecure, &error);
  if (!cli->conn) {
    fprintf(stderr, "tern: %s\n", error->message);
    *rc = g_error_matches(error, TERN_ERROR, TERN_ERROR_INVALID) ? CLI_EXIT_USAGE : CLI_EXIT_CONNECT;
    return FALSE;
  }
  return TRUE;
}

char *
cli_vm_ref(Cli *cli, const char *who, int *rc)
{
  g_autoptr(GError) error = NULL;
  char *ref = tern_vm_resolve(cli->conn, who, &error);
  if (!ref)
    *rc = cli_fail(error);
  return ref;
}

int
cli_call_async(Cli *cli, const char *method, JsonArray *params)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *async = g_strdup_printf("Async.%s", method);
  g_autoptr(JsonNode) task = tern_call(cli->conn, async, params, &error);
  if (!task && tern_error_is(error, "MESSAGE_METHOD_UNKNOWN")) {
    g_clear_error(&error);
    g_autoptr(JsonNode) r = tern_call(cli->conn, method, params, &error);
    return r ? CLI_EXIT_OK : cli_fail(error);
  }
  if (!task)
    return cli_fail(error);
  const char *ref = JSON_NODE_HOLDS_VALUE(task) ? json_node_get_string(task) : NULL;
  if (!ref) {
    fprintf(stderr, "tern: %s: expected a task ref\n", async);
    return CLI_EXIT_SERVER;
  }
  g_autofree char *result = tern_task_wait(cli->conn, ref, NULL, NULL, &error);
  return result ? CLI_EXIT_OK : cli_fail(error);
}

void
cli_print_json(JsonNode *node)
{
  g_autoptr(JsonGenerator) gen = json_generator_new();
  json_generator_set_pretty(gen, TRUE);
  json_generator_set_root(gen, node);
  g_autofree char *text = json_generator_to_data(gen, NULL);
  printf("%s\n", text);
}

void
cli_print_json_object(JsonObject *o)
{
  g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), o);
  cli_print_json(n);
}

struct CliTable {
  guint ncols;
  GPtrArray *rows;  /* of GStrv, the header first */
};

CliTable *
cli_table_new(const char *first_header, ...)
{
  CliTable *t = g_new0(CliTable, 1);
  t->rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  va_list ap;
  va_start(ap, first_header);
  for (const char *h = first_header; h; h = va_arg(ap, const char *)) {
    g_strv_builder_add(b, h);
    t->ncols++;
  }
  va_end(ap);
  g_ptr_array_add(t->rows, g_strv_builder_end(b));
  return t;
}

void
cli_table_add(CliTable *t, ...)
{
  GStrv row = g_new0(char *, t->ncols + 1);
  va_list ap;
  va_start(ap, t);
  for (guint i = 0; i < t->ncols; i++) {
    const char *cell = va_arg(ap, const char *);
    row[i] = g_strdup(cell ? cell : "");
  }
  va_end(ap);
  g_ptr_array_add(t->rows, row);
}

void
cli_table_print(CliTable *t)
{
  g_autofree glong *width = g_new0(glong, t->ncols);
  for (guint r = 0; r < t->rows->len; r++) {
    GStrv row = t->rows->pdata[r];
    for (guint i = 0; i < t->ncols; i++)
      width[i] = MAX(width[i], g_utf8_strlen(row[i], -1));
  }
  for (guint r = 0; r < t->rows->len; r++) {
    GStrv row = t->rows->pdata[r];
    for (guint i = 0; i < t->ncols; i++) {
      if (i + 1 == t->ncols)
        printf("%s\n", row[i]);
      else
        printf("%s%*s  ", row[i], (int)(width[i] - g_utf8_strlen(row[i], -1)), "");
    }
  }
  cli_table_free(t);
}

void
cli_table_free(CliTable *t)
{
  if (!t)
    return;
  g_ptr_array_unref(t->rows);
  g_free(t);
}

static gint
cli_records_compare(gconstpointer a, gconstpointer b)
{
  JsonObject *x = *(JsonObject *const *)a, *y = *(JsonObject *const *)b;
  const char *nx = tern_record_get_string(x, "name_label"), *ny = tern_record_get_string(y, "name_label");
  int c = g_strcmp0(nx, ny);
  if (c)
    return c;
  return g_strcmp0(tern_record_get_string(x, "uuid"), tern_record_get_string(y, "uuid"));
}

GPtrArray *
cli_records_sorted(JsonObject *all)
{
  GPtrArray *list = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
  JsonObjectIter it;
  const char *ref;
  JsonNode *n;
  json_object_iter_init(&it, all);
  while (json_object_iter_next(&it, &ref, &n)) {
    if (!JSON_NODE_HOLDS_OBJECT(n))
      continue;
    JsonObject *rec = json_node_get_object(n);
    json_object_set_string_member(rec, "ref", ref);
    g_ptr_array_add(list, json_object_ref(rec));
  }
  g_ptr_array_sort(list, cli_records_compare);
  return list;
}

char *
cli_format_value(JsonNode *n)
{
  if (!n || JSON_NODE_HOLDS_NULL(n))
    return NULL;
  if (JSON_NODE_HOLDS_VALUE(n)) {
    GType t = json_node_get_value_type(n);
    if (t == G_TYPE_STRING)
      return g_strdup(json_node_get_string(n));
    if (t == G_TYPE_BOOLEAN)
      return g_strdup(json_node_get_boolean(n) ? "true" : "false");
    if (t == G_TYPE_INT64)
      return g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(n));
    if (t == G_TYPE_DOUBLE) {
      char buf[G_ASCII_DTOSTR_BUF_SIZE];
      return g_strdup(g_ascii_dtostr(buf, sizeof buf, json_node_get_double(n)));
    }
  }
  GString *s = g_string_new(NULL);
  if (JSON_NODE_HOLDS_ARRAY(n)) {
    JsonArray *a = json_node_get_array(n);
    for (guint i = 0; i < json_array_get_length(a); i++) {
      g_autofree char *v = cli_format_value(json_array_get_element(a, i));
      g_string_append_printf(s, "%s%s", i ? ", " : "", v ? v : "");
    }
  } else if (JSON_NODE_HOLDS_OBJECT(n)) {
    JsonObjectIter it;
    const char *k;
    JsonNode *v;
    json_object_iter_init(&it, json_node_get_object(n));
    while (json_object_iter_next(&it, &k, &v)) {
      g_autofree char *vs = cli_format_value(v);
      g_string_append_printf(s, "%s%s: %s", s->len ? "\n" : "", k, vs ? vs : "");
    }
  }
  return g_string_free(s, FALSE);
}

char *
cli_mib(JsonObject *record, const char *field)
{
  gint64 bytes = tern_record_get_int(record, field, -1);
  if (bytes < 0)
    return g_strdup("-");
  return g_strdup_printf("%" G_GINT64_FORMAT, bytes / (1024 * 1024));
}

char *
cli_begin_vm(Cli *cli, GOptionEntry *entries, int *argc, char ***argv, int *rc)
{
  if (!cli_begin(cli, entries, argc, argv, 1, 1, rc))
    return NULL;
  return cli_vm_ref(cli, (*argv)[0], rc);
}

int
cli_vm_call(Cli *cli, const char *vm, const char *method, int nbool, ...)
{
  g_autoptr(JsonArray) params = json_array_new();
  va_list ap;

  json_array_add_string_element(params, vm);
  va_start(ap, nbool);
  for (int i = 0; i < nbool; i++)
    json_array_add_boolean_element(params, va_arg(ap, gboolean));
  va_end(ap);
  return cli_call_async(cli, method, params);
}

char *
cli_sr_ref(Cli *cli, const char *who, int *rc)
{
  g_autoptr(GError) error = NULL;
  char *ref = tern_resolve(cli->conn, "SR", who, &error);
  if (ref || !g_error_matches(error, TERN_ERROR, TERN_ERROR_NOT_FOUND) ||
      !(g_str_equal(who, "default") || g_str_equal(who, "boot"))) {
    if (!ref)
      *rc = cli_fail(error);
    return ref;
  }
  g_clear_error(&error);
  if (g_str_equal(who, "default")) {
    g_autoptr(JsonObject) pools = tern_get_all_records(cli->conn, "pool", &error);
    g_autoptr(GList) vals = pools ? json_object_get_values(pools) : NULL;
    const char *sr = vals ? tern_record_get_string(json_node_get_object(vals->data),
                                                   "default_SR") : NULL;
    if (sr)
      return g_strdup(sr);
  } else {
    g_autoptr(JsonObject) srs = tern_sr_get_all_records(cli->conn, &error);
    g_autoptr(GList) keys = srs ? json_object_get_members(srs) : NULL;
    for (GList *l = keys; l; l = l->next)
      if (g_strcmp0(tern_record_get_string(json_object_get_object_member(srs, l->data),
                                           "content_type"), "kernel") == 0)
        return g_strdup(l->data);
  }
  if (error)
    *rc = cli_fail(error);
  else {
    fprintf(stderr, "tern: no %s SR\n", who);
    *rc = CLI_EXIT_SERVER;
  }
  return NULL;
}

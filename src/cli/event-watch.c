/*
 * event-watch: follows event.from and prints each event as it arrives, one
 * per line, until Ctrl-C (or --count events).  Only changes made after the
 * command starts are printed: the first event.from, with an empty token,
 * serves to obtain the current token and its batch is skipped.
 *
 *   people:  TIMESTAMP CLASS OPERATION REF [name=...] [power_state=...] ...
 *   --json:  one compact JSON object per line (the event as received)
 */
#include <stdio.h>

#include "cli.h"

/* The server-side long poll; below the connection's 60 s I/O timeout. */
#define EVENT_WATCH_WAIT_S 30.0

static void
event_watch_print(Cli *cli, JsonNode *ev)
{
  if (cli->json) {
    g_autofree char *text = json_to_string(ev, FALSE);
    printf("%s\n", text);
    fflush(stdout);
    return;
  }
  if (!JSON_NODE_HOLDS_OBJECT(ev))
    return;
  JsonObject *o = json_node_get_object(ev);
  g_autofree char *ts = cli_format_value(json_object_get_member(o, "timestamp"));
  GString *line = g_string_new(NULL);
  g_string_append(line, ts ? ts : "-");
  static const char *const keys[] = { "class", "operation", "ref", NULL };
  for (guint i = 0; keys[i]; i++) {
    const char *v = tern_record_get_string(o, keys[i]);
    g_string_append_printf(line, " %s", v ? v : "-");
  }
  JsonNode *snap = json_object_get_member(o, "snapshot");
  if (snap && JSON_NODE_HOLDS_OBJECT(snap)) {
    static const char *const fields[] = { "name_label", "power_state", "status", "progress", NULL };
    JsonObject *s = json_node_get_object(snap);
    for (guint i = 0; fields[i]; i++) {
      g_autofree char *v = cli_format_value(json_object_get_member(s, fields[i]));
      if (v)
        g_string_append_printf(line, " %s=%s", fields[i], v);
    }
  }
  printf("%s\n", line->str);
  fflush(stdout);
  g_string_free(line, TRUE);
}

int
event_watch_run(Cli *cli, int argc, char **argv)
{
  g_autofree char *classes_opt = NULL;
  gint count = 0;
  GOptionEntry entries[] = {
    { "classes", 0, 0, G_OPTION_ARG_STRING, &classes_opt,
      "Comma-separated classes to watch (default: all)", "vm,task" },
    { "count", 0, 0, G_OPTION_ARG_INT, &count, "Exit after N events", "N" },
    { NULL },
  };
  int rc;
  if (!cli_begin(cli, entries, &argc, &argv, 0, 0, &rc))
    return rc;
  if (count < 0)
    return cli_usage_error(cli, "--count must be positive");
  g_auto(GStrv) classes = g_strsplit(classes_opt ? classes_opt : "*", ",", -1);

  g_autoptr(GError) error = NULL;
  g_autofree char *token = NULL;
  gboolean skip = TRUE;   /* the first batch only yields the token */
  for (gint seen = 0; count == 0 || seen < count; ) {
    g_autoptr(JsonArray) events = tern_event_from(cli->conn, (const char *const *)classes, &token,
                                                  skip ? 0.0 : EVENT_WATCH_WAIT_S, &error);
    if (!events) {
      if (!tern_error_is(error, "EVENTS_LOST"))
        return cli_fail(error);
      fprintf(stderr, "tern: events lost; resuming from now\n");
      g_clear_error(&error);
      g_clear_pointer(&token, g_free);
      skip = TRUE;
      continue;
    }
    if (skip) {
      skip = FALSE;
      continue;
    }
    for (guint i = 0; i < json_array_get_length(events) && (count == 0 || seen < count); i++, seen++)
      event_watch_print(cli, json_array_get_element(events, i));
  }
  return CLI_EXIT_OK;
}

/*
 * task-list: the server's tasks, from task.get_all_records.
 */
#include "cli.h"

int
task_list_run(Cli *cli, int argc, char **argv)
{
  int rc;
  if (!cli_begin(cli, NULL, &argc, &argv, 0, 0, &rc))
    return rc;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) all = tern_get_all_records(cli->conn, "task", &error);
  if (!all)
    return cli_fail(error);
  g_autoptr(GPtrArray) tasks = cli_records_sorted(all);

  if (cli->json) {
    g_autoptr(JsonArray) a = json_array_new();
    for (guint i = 0; i < tasks->len; i++)
      json_array_add_object_element(a, json_object_ref(tasks->pdata[i]));
    g_autoptr(JsonNode) n = json_node_init_array(json_node_alloc(), a);
    cli_print_json(n);
    return CLI_EXIT_OK;
  }
  CliTable *t = cli_table_new("UUID", "NAME", "STATUS", "PROGRESS", "RESULT", NULL);
  for (guint i = 0; i < tasks->len; i++) {
    JsonObject *task = tasks->pdata[i];
    double progress = json_object_get_double_member_with_default(task, "progress", 0.0);
    g_autofree char *pct = g_strdup_printf("%.0f%%", progress * 100.0);
    g_autofree char *result = NULL;
    JsonNode *info = json_object_get_member(task, "error_info");
    if (info && JSON_NODE_HOLDS_ARRAY(info) && json_array_get_length(json_node_get_array(info)))
      result = cli_format_value(info);
    else
      result = g_strdup(tern_record_get_string(task, "result"));
    cli_table_add(t, tern_record_get_string(task, "uuid"), tern_record_get_string(task, "name_label"),
                  tern_record_get_string(task, "status"), pct, result);
  }
  cli_table_print(t);
  return CLI_EXIT_OK;
}

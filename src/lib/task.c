/*
 * task: waiting for asynchronous calls, and the event stream.
 *
 * An Async.* call returns a task ref at once; tern_task_wait() follows the
 * task to its end.  It watches class "task" with event.from (a long poll,
 * so progress reaches the caller as soon as the server publishes it) and
 * re-reads the record after each poll that said nothing about the task, so
 * a lost or filtered event costs at most one poll period.  Servers without
 * event.from are polled with task.get_record every 200 ms.
 *
 * The order matters: the event token is taken before the first
 * task.get_record, so a change between the two is seen by the next poll.
 */
#include <tern/tern.h>

/* Server-side timeout of each event.from long poll made here.  Must stay
 * well below the connection's I/O timeout (at least 10 s, see conn.c). */
#define TASK_EVENT_WAIT_S 5.0
#define TASK_POLL_US (200 * 1000)

JsonArray *
tern_event_from(TernConn *c, const char *const *classes, char **token,
                double timeout_s, GError **error)
{
  g_autoptr(JsonArray) cls = json_array_new();
  for (guint i = 0; classes && classes[i]; i++)
    json_array_add_string_element(cls, classes[i]);
  g_autoptr(JsonObject) r = tern_callf_object(c, error, "event.from", "asd", cls,
                                              *token ? *token : "", timeout_s);
  if (!r)
    return NULL;
  JsonNode *events = json_object_get_member(r, "events");
  const char *next = tern_record_get_string(r, "token");
  if (!events || !JSON_NODE_HOLDS_ARRAY(events) || !next) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_PROTOCOL,
                "event.from: reply lacks events or token");
    return NULL;
  }
  g_free(*token);
  *token = g_strdup(next);
  return json_array_ref(json_node_get_array(events));
}

gboolean
tern_task_cancel(TernConn *c, const char *task, GError **error)
{
  g_autoptr(JsonNode) r = tern_callf(c, error, "task.cancel", "s", task);
  return r != NULL;
}

typedef struct {
  TernConn *c;
  const char *task;
  TernProgressFn progress;
  gpointer user_data;
  char *last;            /* the last record reported, serialised */
  JsonObject *record;    /* the latest record */
} TaskWait;

static gboolean
task_wait_finished(JsonObject *record)
{
  const char *status = tern_record_get_string(record, "status");
  return status && !g_str_equal(status, "pending") && !g_str_equal(status, "cancelling");
}

/* Takes ownership of RECORD; reports it when it differs from the last. */
static void
task_wait_update(TaskWait *w, JsonObject *record)
{
  g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), record);
  g_autofree char *text = json_to_string(n, FALSE);
  g_clear_pointer(&w->record, json_object_unref);
  w->record = record;
  if (w->last && g_str_equal(w->last, text))
    return;
  g_free(w->last);
  w->last = g_steal_pointer(&text);
  if (w->progress)
    w->progress(record, w->user_data);
}

static gboolean
task_wait_reread(TaskWait *w, GError **error)
{
  JsonObject *rec = tern_get_record(w->c, "task", w->task, error);
  if (!rec)
    return FALSE;
  task_wait_update(w, rec);
  return TRUE;
}

/* Applies the events about our task.  Returns TRUE if one was seen. */
static gboolean
task_wait_apply(TaskWait *w, JsonArray *events, GError **error)
{
  gboolean seen = FALSE;
  for (guint i = 0; i < json_array_get_length(events); i++) {
    JsonNode *en = json_array_get_element(events, i);
    if (!JSON_NODE_HOLDS_OBJECT(en))
      continue;
    JsonObject *ev = json_node_get_object(en);
    const char *ref = tern_record_get_string(ev, "ref");
    if (!ref || !g_str_equal(ref, w->task))
      continue;
    seen = TRUE;
    const char *op = tern_record_get_string(ev, "operation");
    if (op && g_str_equal(op, "del")) {
      const char *params[] = { "task", w->task, NULL };
      tern_error_set_xapi(error, "HANDLE_INVALID", params);
      return FALSE;
    }
    JsonNode *snap = json_object_get_member(ev, "snapshot");
    if (snap && JSON_NODE_HOLDS_OBJECT(snap))
      task_wait_update(w, json_node_dup_object(snap));
    else if (!task_wait_reread(w, error))
      return FALSE;
  }
  /* Nothing about our task: read it anyway (cheap, and robust against a
   * server that filters or coalesces events). */
  if (!seen && !task_wait_reread(w, error))
    return FALSE;
  return TRUE;
}

static gboolean
task_wait_events(TaskWait *w, GError **error)
{
  static const char *const classes[] = { "task", NULL };
  g_autofree char *token = NULL;
  g_autoptr(GError) local = NULL;

  g_autoptr(JsonArray) first = tern_event_from(w->c, classes, &token, 0.0, &local);
  if (!first) {
    if (!tern_error_is(local, "MESSAGE_METHOD_UNKNOWN")) {
      g_propagate_error(error, g_steal_pointer(&local));
      return FALSE;
    }
    /* No event.from on this server: poll. */
    while (task_wait_reread(w, error) && !task_wait_finished(w->record))
      g_usleep(TASK_POLL_US);
    return w->record && task_wait_finished(w->record);
  }
  if (!task_wait_reread(w, error))
    return FALSE;
  while (!task_wait_finished(w->record)) {
    g_autoptr(JsonArray) events = tern_event_from(w->c, classes, &token,
                                                  TASK_EVENT_WAIT_S, &local);
    if (!events) {
      if (!tern_error_is(local, "EVENTS_LOST")) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
      }
      g_clear_error(&local);
      g_clear_pointer(&token, g_free);
      events = json_array_new();
    }
    if (!task_wait_apply(w, events, error))
      return FALSE;
  }
  return TRUE;
}

/* Builds the error of a failed or cancelled task from its error_info. */
static void
task_wait_set_error(TaskWait *w, GError **error)
{
  JsonNode *info = json_object_get_member(w->record, "error_info");
  g_autoptr(GPtrArray) params = g_ptr_array_new();
  const char *code = NULL;
  if (info && JSON_NODE_HOLDS_ARRAY(info)) {
    JsonArray *a = json_node_get_array(info);
    for (guint i = 0; i < json_array_get_length(a); i++) {
      const char *s = json_node_get_string(json_array_get_element(a, i));
      if (i == 0)
        code = s;
      else
        g_ptr_array_add(params, (gpointer)(s ? s : ""));
    }
  }
  if (!code || !*code) {
    const char *status = tern_record_get_string(w->record, "status");
    g_ptr_array_set_size(params, 0);
    g_ptr_array_add(params, (gpointer)w->task);
    code = status && g_str_equal(status, "cancelled") ? "TASK_CANCELLED" : "INTERNAL_ERROR";
    if (!g_str_equal(code, "TASK_CANCELLED")) {
      g_ptr_array_set_size(params, 0);
      g_ptr_array_add(params, (gpointer)"task failed without error_info");
    }
  }
  g_ptr_array_add(params, NULL);
  tern_error_set_xapi(error, code, (const char *const *)params->pdata);
}

char *
tern_task_wait(TernConn *c, const char *task, TernProgressFn progress,
               gpointer user_data, GError **error)
{
  TaskWait w = { .c = c, .task = task, .progress = progress, .user_data = user_data };
  char *result = NULL;

  if (task_wait_events(&w, error)) {
    const char *status = tern_record_get_string(w.record, "status");
    if (g_str_equal(status, "success")) {
      const char *r = tern_record_get_string(w.record, "result");
      result = g_strdup(r ? r : "");
    } else {
      task_wait_set_error(&w, error);
    }
  }
  g_free(w.last);
  g_clear_pointer(&w.record, json_object_unref);
  return result;
}

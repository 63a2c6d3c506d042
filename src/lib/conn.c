/*
 * conn: the transport and wire format of libtern.
 *
 * A TernConn is one SoupSession (keep-alive, so a CLI command that makes
 * twenty calls opens one connection) plus the session ref obtained by
 * tern_login().  Every call is a JSON-RPC 2.0 request POSTed to /jsonrpc;
 * the reply's "error" member carries the XAPI error as {code, message:
 * CODE, data: [params]} (2.0) or [CODE, params...] (1.0, accepted too).
 *
 * TLS: ternd's certificate is self-signed, so a client pins it by its
 * SHA-256 fingerprint instead of trusting a certificate authority.  When a
 * fingerprint (or "insecure") is given, the session has no certificate
 * database at all: GLib then reports every certificate as unknown and
 * emits accept-certificate, where conn_accept_certificate() compares the
 * fingerprint.  Without either option, verification is GLib's default.
 */
#include <string.h>

#include <gio/gunixsocketaddress.h>
#include <libsoup/soup.h>
#include <tern/tern.h>

/* Replies larger than this are refused: no call of the API returns more
 * than a few MiB, and the cap keeps a broken server from exhausting us. */
#define CONN_MAX_REPLY (64 * 1024 * 1024)

struct TernConn {
  char *uri;
  char *endpoint;          /* URL of POST /jsonrpc */
  SoupSession *soup;
  gboolean pin;            /* fingerprint given */
  guint8 fingerprint[32];  /* SHA-256 of the pinned certificate */
  gboolean insecure;
  char *session;           /* session ref, NULL when not logged in */
  gint64 next_id;
  GHashTable *methods;     /* system.listMethods, read once; NULL until then */
};

/* Parses "AB:cd:..." or "abcd..." into 32 bytes. */
static gboolean
conn_parse_fingerprint(const char *text, guint8 out[32], GError **error)
{
  guint n = 0;
  for (const char *p = text; *p; ) {
    if (*p == ':') {
      p++;
      continue;
    }
    if (!g_ascii_isxdigit(p[0]) || !g_ascii_isxdigit(p[1]) || n == 32)
      goto bad;
    out[n++] = (guint8)(g_ascii_xdigit_value(p[0]) << 4 | g_ascii_xdigit_value(p[1]));
    p += 2;
  }
  if (n == 32)
    return TRUE;
bad:
  g_set_error(error, TERN_ERROR, TERN_ERROR_INVALID,
              "invalid fingerprint \"%s\": expected 32 hex bytes (SHA-256)", text);
  return FALSE;
}

static gboolean
conn_accept_certificate(SoupMessage *msg, GTlsCertificate *cert,
                        GTlsCertificateFlags errors, gpointer user_data)
{
  TernConn *c = user_data;
  if (c->pin) {
    g_autoptr(GByteArray) der = NULL;
    g_object_get(cert, "certificate", &der, NULL);
    if (!der)
      return FALSE;
    guint8 digest[32];
    gsize len = sizeof digest;
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    g_checksum_update(sum, der->data, der->len);
    g_checksum_get_digest(sum, digest, &len);
    return len == sizeof digest && memcmp(digest, c->fingerprint, sizeof digest) == 0;
  }
  return c->insecure;
}

TernConn *
tern_conn_open(const char *uri, const TernConnOptions *opts, GError **error)
{
  static const TernConnOptions defaults = { 0 };
  if (!opts)
    opts = &defaults;
  g_autoptr(TernConn) c = g_new0(TernConn, 1);
  c->uri = g_strdup(uri);
  c->next_id = 1;
  guint timeout = opts->timeout_s ? opts->timeout_s : 60;
  if (timeout < 10)
    timeout = 10;  /* above the 5 s event.from polls of task.c */
  g_autoptr(GSocketAddress) addr = NULL;

  if (g_str_has_prefix(uri, "unix://")) {
    const char *path = uri + strlen("unix://");
    if (*path != '/') {
      g_set_error(error, TERN_ERROR, TERN_ERROR_INVALID,
                  "invalid URI \"%s\": expected unix:///absolute/path", uri);
      return NULL;
    }
    addr = g_unix_socket_address_new(path);
    c->endpoint = g_strdup("http://localhost/jsonrpc");
  } else {
    g_autoptr(GError) local = NULL;
    g_autoptr(GUri) u = g_uri_parse(uri, G_URI_FLAGS_NONE, &local);
    const char *scheme = u ? g_uri_get_scheme(u) : NULL;
    if (!u || !g_uri_get_host(u) || !*g_uri_get_host(u) ||
        !(g_str_equal(scheme, "http") || g_str_equal(scheme, "https"))) {
      g_set_error(error, TERN_ERROR, TERN_ERROR_INVALID,
                  "invalid URI \"%s\": expected unix:///path, https://host:port "
                  "or http://host:port", uri);
      return NULL;
    }
    c->endpoint = g_uri_join(G_URI_FLAGS_NONE, scheme, NULL, g_uri_get_host(u),
                             g_uri_get_port(u), "/jsonrpc", NULL, NULL);
  }
  if (opts->fingerprint && *opts->fingerprint) {
    if (!conn_parse_fingerprint(opts->fingerprint, c->fingerprint, error))
      return NULL;
    c->pin = TRUE;
  }
  c->insecure = opts->insecure;

  c->soup = soup_session_new_with_options("timeout", timeout,
                                          "user-agent", "libtern/" "0.1",
                                          "remote-connectable", addr,
                                          NULL);
  if (c->pin || c->insecure)
    soup_session_set_tls_database(c->soup, NULL);
  return g_steal_pointer(&c);
}

void
tern_conn_free(TernConn *c)
{
  if (!c)
    return;
  g_clear_object(&c->soup);
  g_free(c->uri);
  g_free(c->endpoint);
  g_free(c->session);
  g_clear_pointer(&c->methods, g_hash_table_unref);
  g_free(c);
}

const char *
tern_conn_uri(TernConn *c)
{
  return c->uri;
}

const char *
tern_conn_session(TernConn *c)
{
  return c->session;
}

/* Turns the "error" member of a reply into a GError. */
static void
conn_set_reply_error(JsonNode *err, GError **error)
{
  g_autoptr(GPtrArray) params = g_ptr_array_new_with_free_func(g_free);
  g_autofree char *code = NULL;

  if (JSON_NODE_HOLDS_OBJECT(err)) {         /* 2.0: {code, message, data} */
    JsonObject *o = json_node_get_object(err);
    code = g_strdup(json_object_get_string_member_with_default(o, "message", NULL));
    JsonNode *data = json_object_get_member(o, "data");
    if (data && JSON_NODE_HOLDS_ARRAY(data)) {
      JsonArray *a = json_node_get_array(data);
      for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonNode *n = json_array_get_element(a, i);
        g_ptr_array_add(params, JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
                        ? g_strdup(json_node_get_string(n)) : json_to_string(n, FALSE));
      }
    }
  } else if (JSON_NODE_HOLDS_ARRAY(err)) {   /* 1.0: [CODE, params...] */
    JsonArray *a = json_node_get_array(err);
    for (guint i = 0; i < json_array_get_length(a); i++) {
      const char *s = json_node_get_string(json_array_get_element(a, i));
      if (i == 0)
        code = g_strdup(s);
      else
        g_ptr_array_add(params, g_strdup(s ? s : ""));
    }
  }
  if (!code || !*code) {
    g_autofree char *text = json_to_string(err, FALSE);
    g_set_error(error, TERN_ERROR, TERN_ERROR_PROTOCOL, "malformed error in reply: %s", text);
    return;
  }
  g_ptr_array_add(params, NULL);
  tern_error_set_xapi(error, code, (const char *const *)params->pdata);
}

/* Sends one request.  Takes ownership of PARAMS. */
static JsonNode *
conn_rpc(TernConn *c, const char *method, JsonArray *params, GError **error)
{
  g_autoptr(JsonObject) req = json_object_new();
  gint64 id = c->next_id++;
  json_object_set_string_member(req, "jsonrpc", "2.0");
  json_object_set_string_member(req, "method", method);
  json_object_set_array_member(req, "params", params);
  json_object_set_int_member(req, "id", id);
  g_autoptr(JsonNode) req_node = json_node_init_object(json_node_alloc(), req);
  gsize body_len = 0;
  g_autoptr(JsonGenerator) gen = json_generator_new();
  json_generator_set_root(gen, req_node);
  char *body = json_generator_to_data(gen, &body_len);

  g_autoptr(SoupMessage) msg = soup_message_new(SOUP_METHOD_POST, c->endpoint);
  if (!msg) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_INVALID, "invalid endpoint %s", c->endpoint);
    g_free(body);
    return NULL;
  }
  g_signal_connect(msg, "accept-certificate", G_CALLBACK(conn_accept_certificate), c);
  g_autoptr(GBytes) req_bytes = g_bytes_new_static(body, body_len);
  soup_message_set_request_body_from_bytes(msg, "application/json", req_bytes);

  g_autoptr(GError) local = NULL;
  g_autoptr(GBytes) reply = soup_session_send_and_read(c->soup, msg, NULL, &local);
  /* The body may hold a password: wipe it once it is on the wire. */
  explicit_bzero(body, body_len);
  g_free(body);
  if (!reply) {
    if (g_error_matches(local, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE) && c->pin)
      g_set_error(error, TERN_ERROR, TERN_ERROR_TRANSPORT,
                  "%s: server certificate does not match the fingerprint", c->uri);
    else
      g_set_error(error, TERN_ERROR, TERN_ERROR_TRANSPORT, "%s: %s", c->uri, local->message);
    return NULL;
  }
  guint status = soup_message_get_status(msg);
  if (!SOUP_STATUS_IS_SUCCESSFUL(status)) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_TRANSPORT, "%s: HTTP %u %s", c->uri,
                status, soup_message_get_reason_phrase(msg));
    return NULL;
  }
  gsize len = 0;
  const char *data = g_bytes_get_data(reply, &len);
  if (len > CONN_MAX_REPLY) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_PROTOCOL, "%s: reply of %zu bytes is too large",
                c->uri, len);
    return NULL;
  }
  g_autoptr(JsonParser) parser = json_parser_new();
  if (!json_parser_load_from_data(parser, data, (gssize)len, &local)) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_PROTOCOL, "%s: reply to %s is not JSON: %s",
                c->uri, method, local->message);
    return NULL;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_PROTOCOL, "%s: reply to %s is not a JSON-RPC object",
                c->uri, method);
    return NULL;
  }
  JsonObject *o = json_node_get_object(root);
  JsonNode *err = json_object_get_member(o, "error");
  if (err && !JSON_NODE_HOLDS_NULL(err)) {
    conn_set_reply_error(err, error);
    return NULL;
  }
  JsonNode *result = json_object_get_member(o, "result");
  if (!result) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_PROTOCOL, "%s: reply to %s has no result",
                c->uri, method);
    return NULL;
  }
  return json_node_copy(result);
}

static gboolean
conn_method_is_sessionless(const char *method)
{
  return g_str_equal(method, "session.login_with_password") ||
         g_str_has_prefix(method, "system.");
}

JsonNode *
tern_call(TernConn *c, const char *method, JsonArray *params, GError **error)
{
  JsonArray *full = json_array_new();
  if (!conn_method_is_sessionless(method)) {
    if (!c->session) {
      json_array_unref(full);
      g_set_error(error, TERN_ERROR, TERN_ERROR_INVALID, "%s: not logged in", method);
      return NULL;
    }
    json_array_add_string_element(full, c->session);
  }
  for (guint i = 0; params && i < json_array_get_length(params); i++)
    json_array_add_element(full, json_node_copy(json_array_get_element(params, i)));
  return conn_rpc(c, method, full, error);
}

/* Builds a parameter array from a tern_callf() format.  Caller owns. */
static JsonArray *
conn_params_va(const char *fmt, va_list ap)
{
  JsonArray *a = json_array_new();
  for (const char *f = fmt; f && *f; f++) {
    switch (*f) {
    case 's': {
      const char *s = va_arg(ap, const char *);
      json_array_add_string_element(a, s ? s : "");
      break;
    }
    case 'b':
      json_array_add_boolean_element(a, va_arg(ap, gboolean));
      break;
    case 'i':
      json_array_add_int_element(a, va_arg(ap, gint64));
      break;
    case 'd':
      json_array_add_double_element(a, va_arg(ap, double));
      break;
    case 'n':
      json_array_add_element(a, json_node_copy(va_arg(ap, JsonNode *)));
      break;
    case 'o': {
      JsonObject *o = va_arg(ap, JsonObject *);
      json_array_add_object_element(a, o ? json_object_ref(o) : json_object_new());
      break;
    }
    case 'a': {
      JsonArray *v = va_arg(ap, JsonArray *);
      json_array_add_array_element(a, v ? json_array_ref(v) : json_array_new());
      break;
    }
    default:
      g_critical("tern_callf: unknown format character '%c'", *f);
      break;
    }
  }
  return a;
}

JsonNode *
tern_callf(TernConn *c, GError **error, const char *method, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autoptr(JsonArray) params = conn_params_va(fmt, ap);
  va_end(ap);
  return tern_call(c, method, params, error);
}

char *
tern_callf_string(TernConn *c, GError **error, const char *method, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autoptr(JsonArray) params = conn_params_va(fmt, ap);
  va_end(ap);
  g_autoptr(JsonNode) r = tern_call(c, method, params, error);
  if (!r)
    return NULL;
  if (!JSON_NODE_HOLDS_VALUE(r) || json_node_get_value_type(r) != G_TYPE_STRING) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_PROTOCOL, "%s: expected a string result", method);
    return NULL;
  }
  return g_strdup(json_node_get_string(r));
}

JsonObject *
tern_callf_object(TernConn *c, GError **error, const char *method, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autoptr(JsonArray) params = conn_params_va(fmt, ap);
  va_end(ap);
  g_autoptr(JsonNode) r = tern_call(c, method, params, error);
  if (!r)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT(r)) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_PROTOCOL, "%s: expected a map result", method);
    return NULL;
  }
  return json_node_dup_object(r);
}

gboolean
tern_login(TernConn *c, const char *user, const char *password, GError **error)
{
  g_autofree char *ref = tern_callf_string(c, error, "session.login_with_password", "ssss",
                                           user, password, "1.0", "tern");
  if (!ref)
    return FALSE;
  g_free(c->session);
  c->session = g_steal_pointer(&ref);
  return TRUE;
}

void
tern_logout(TernConn *c)
{
  if (!c || !c->session)
    return;
  JsonNode *r = tern_call(c, "session.logout", NULL, NULL);
  if (r)
    json_node_unref(r);
  g_clear_pointer(&c->session, g_free);
}

gboolean
tern_has_method(TernConn *c, const char *method)
{
  if (!c->methods) {
    c->methods = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(JsonNode) r = tern_call(c, "system.listMethods", NULL, NULL);
    if (r && JSON_NODE_HOLDS_ARRAY(r)) {
      JsonArray *a = json_node_get_array(r);
      for (guint i = 0; i < json_array_get_length(a); i++) {
        const char *s = json_node_get_string(json_array_get_element(a, i));
        if (s)
          g_hash_table_add(c->methods, g_strdup(s));
      }
    }
  }
  return g_hash_table_contains(c->methods, method);
}

gboolean
tern_vdi_import(TernConn *c, const char *vdi, const char *path, GError **error)
{
  if (!c->session) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_INVALID, "import_raw_vdi: not logged in");
    return FALSE;
  }
  g_autoptr(GFile) file = g_file_new_for_path(path);
  g_autoptr(GError) local = NULL;
  g_autoptr(GFileInfo) info = g_file_query_info(file, G_FILE_ATTRIBUTE_STANDARD_SIZE ","
                                                G_FILE_ATTRIBUTE_STANDARD_TYPE,
                                                G_FILE_QUERY_INFO_NONE, NULL, &local);
  g_autoptr(GFileInputStream) in = info ? g_file_read(file, NULL, &local) : NULL;
  if (!in) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_INVALID, "%s: %s", path, local->message);
    return FALSE;
  }
  if (g_file_info_get_file_type(info) != G_FILE_TYPE_REGULAR) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_INVALID, "%s: not a regular file", path);
    return FALSE;
  }
  /* The endpoint's /jsonrpc becomes /import_raw_vdi with the query. */
  g_autoptr(GUri) base = g_uri_parse(c->endpoint, G_URI_FLAGS_NONE, NULL);
  g_autofree char *sess = g_uri_escape_string(c->session, NULL, FALSE);
  g_autofree char *v = g_uri_escape_string(vdi, NULL, FALSE);
  g_autofree char *query = g_strdup_printf("session_id=%s&vdi=%s", sess, v);
  g_autofree char *url = g_uri_join(G_URI_FLAGS_ENCODED_QUERY, g_uri_get_scheme(base), NULL,
                                    g_uri_get_host(base), g_uri_get_port(base),
                                    "/import_raw_vdi", query, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new(SOUP_METHOD_PUT, url);
  if (!msg) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_INVALID, "invalid URL %s", url);
    return FALSE;
  }
  g_signal_connect(msg, "accept-certificate", G_CALLBACK(conn_accept_certificate), c);
  soup_message_set_request_body(msg, "application/octet-stream", G_INPUT_STREAM(in),
                                g_file_info_get_size(info));
  g_autoptr(GBytes) reply = soup_session_send_and_read(c->soup, msg, NULL, &local);
  if (!reply) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_TRANSPORT, "%s: %s", c->uri, local->message);
    return FALSE;
  }
  guint status = soup_message_get_status(msg);
  if (!SOUP_STATUS_IS_SUCCESSFUL(status)) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_TRANSPORT, "import_raw_vdi: HTTP %u %s%s", status,
                soup_message_get_reason_phrase(msg),
                status == 413 ? " (the file is larger than the VDI)" : "");
    return FALSE;
  }
  return TRUE;
}

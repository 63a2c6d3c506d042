/*
 * libtern: a C client for ternd, the Xen Management API (XAPI) daemon.
 *
 * libtern speaks JSON-RPC 2.0 to POST /jsonrpc over one keep-alive HTTP
 * connection (libsoup-3.0), on a Unix socket, over TLS, or over plain TCP
 * for loopback tests.  Values are json-glib nodes, exactly as they cross
 * the wire: an XAPI map is a JsonObject, a set is a JsonArray, a ref is a
 * string "OpaqueRef:<uuid>".  Every call is synchronous and blocks the
 * calling thread; a TernConn must be used by one thread at a time.
 *
 * Errors follow GLib's convention.  Every failure is reported in the
 * TERN_ERROR domain; the GError code (TernErrorCode) says what kind of
 * failure it is, and for an error returned by the server
 * (TERN_ERROR_XAPI) tern_error_code() and tern_error_params() give the
 * XAPI code and parameters, e.g. VM_BAD_POWER_STATE [vm, expected, actual].
 * The message of an XAPI error reads "CODE: name=value, ..." with the
 * parameter names of API.md where they are known.
 *
 * Ownership: a function returning a pointer that is not `const` transfers
 * it to the caller (free JsonNode with json_node_unref, JsonObject with
 * json_object_unref, strings with g_free, GStrv with g_strfreev).  Input
 * arguments are never consumed unless the comment says "takes ownership".
 * Every *_free accepts NULL.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

#define TERN_ERROR (tern_error_quark())
GQuark tern_error_quark(void);

typedef enum {
  TERN_ERROR_XAPI,       /* the server returned an XAPI error: see tern_error_code() */
  TERN_ERROR_TRANSPORT,  /* could not connect, TLS refused, HTTP failure, timeout */
  TERN_ERROR_PROTOCOL,   /* the reply was not valid JSON-RPC, or a value had the wrong type */
  TERN_ERROR_INVALID,    /* bad argument from the caller (URI, params, not logged in) */
  TERN_ERROR_NOT_FOUND,  /* tern_vm_resolve(): no such VM */
  TERN_ERROR_AMBIGUOUS,  /* tern_vm_resolve(): several VMs have that name */
} TernErrorCode;

/* The XAPI error code of E (e.g. "VM_BAD_POWER_STATE"), or NULL when E is
 * not a TERN_ERROR_XAPI error.  The string belongs to E. */
const char *tern_error_code(const GError *e);

/* The XAPI error parameters of E, newly allocated (never NULL: an empty
 * vector when E has none or is not an XAPI error).  Free with g_strfreev. */
GStrv tern_error_params(const GError *e);

/* TRUE when E is the XAPI error CODE. */
gboolean tern_error_is(const GError *e, const char *code);

/* Sets *error to the XAPI error CODE with the parameters PARAMS
 * (NULL-terminated, may be NULL).  Used for errors that arrive inside a
 * task's error_info; exported for callers that relay XAPI errors. */
void tern_error_set_xapi(GError **error, const char *code, const char *const *params);

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

typedef struct TernConn TernConn;

/* Options for tern_conn_open().  A NULL options pointer, or a
 * zero-initialised struct, means: verify TLS normally, 60 s timeout. */
typedef struct {
  /* https only: SHA-256 fingerprint of the server's certificate, in hex,
   * colons optional, case-insensitive ("AB:CD:..." or "abcd...").  When set,
   * the certificate is accepted if and only if its fingerprint matches;
   * certificate authorities are not consulted (ternd's certificate is
   * self-signed; the fingerprint is how a client pins it). */
  const char *fingerprint;
  /* https only: accept any certificate.  For tests; never in production. */
  gboolean insecure;
  /* I/O timeout in seconds for each request; 0 means 60, and values below
   * 10 are raised to 10 (tern_task_wait's event.from polls wait 5 s).  A
   * caller of tern_event_from() must pass a server timeout below it. */
  guint timeout_s;
} TernConnOptions;

/* Opens a connection to URI:
 *   unix:///run/tern/ternd.sock   HTTP on a Unix socket (host "localhost")
 *   https://host:port             HTTP over TLS (see TernConnOptions)
 *   http://host:port              plaintext, for loopback tests
 * No network traffic happens until the first call; a server that cannot be
 * reached is reported by the first call (TERN_ERROR_TRANSPORT).
 * Returns a new connection (free with tern_conn_free) or NULL with ERROR
 * (TERN_ERROR_INVALID for a malformed URI or fingerprint). */
TernConn *tern_conn_open(const char *uri, const TernConnOptions *opts, GError **error);

/* Closes the connection.  Does not log out: call tern_logout() first if the
 * session should end now (otherwise it expires on the server).  Accepts NULL. */
void tern_conn_free(TernConn *c);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TernConn, tern_conn_free)

/* The URI the connection was opened with.  Belongs to C. */
const char *tern_conn_uri(TernConn *c);

/* Calls session.login_with_password(USER, PASSWORD, "1.0", "tern") and keeps
 * the session ref in C for every later call.  On the local Unix socket,
 * ternd trusts uid 0 by its peer credentials: tern_login(c, "root", "")
 * works there.  A refused login is TERN_ERROR_XAPI
 * SESSION_AUTHENTICATION_FAILED.  PASSWORD is not kept. */
gboolean tern_login(TernConn *c, const char *user, const char *password, GError **error);

/* Calls session.logout and forgets the session; errors are ignored (the
 * session is gone either way).  Does nothing when not logged in. */
void tern_logout(TernConn *c);

/* The session ref, or NULL when not logged in.  Belongs to C. */
const char *tern_conn_session(TernConn *c);

/* ------------------------------------------------------------------ */
/* Calls                                                               */
/* ------------------------------------------------------------------ */

/* Calls METHOD with PARAMS (an array; not consumed; NULL means none).  The
 * session ref is prepended for every method except
 * session.login_with_password and system.*; calling such a method without a
 * session is TERN_ERROR_INVALID.  Returns the result (caller owns; a JSON
 * null node for void methods) or NULL with ERROR. */
JsonNode *tern_call(TernConn *c, const char *method, JsonArray *params, GError **error);

/* Convenience form of tern_call(): the parameters are given as a format
 * string, one character per argument that follows it:
 *   's'  const char *       string (NULL is sent as "")
 *   'b'  gboolean           bool
 *   'i'  gint64             int (cast literals: (gint64)1)
 *   'd'  double             float
 *   'n'  JsonNode *         any value, copied (not consumed)
 *   'o'  JsonObject *       map, copied (NULL sends {})
 *   'a'  JsonArray *        set, copied (NULL sends [])
 * Example: tern_callf(c, &err, "VM.start", "sbb", vm, FALSE, FALSE). */
JsonNode *tern_callf(TernConn *c, GError **error, const char *method, const char *fmt, ...);

/* Like tern_callf(), and checks that the result is a string; returns it
 * newly allocated (an XAPI ref, uuid, ...) or NULL with ERROR. */
char *tern_callf_string(TernConn *c, GError **error, const char *method, const char *fmt, ...);

/* Like tern_callf(), and checks that the result is a map; returns a new
 * reference to it or NULL with ERROR. */
JsonObject *tern_callf_object(TernConn *c, GError **error, const char *method, const char *fmt, ...);

/* TRUE when the server lists METHOD in system.listMethods (the answer is
 * cached in C).  FALSE, without error, when it does not or the list cannot
 * be read: for probing tern extensions such as VM.migrate_check. */
gboolean tern_has_method(TernConn *c, const char *method);

/* ------------------------------------------------------------------ */
/* Objects                                                             */
/* ------------------------------------------------------------------ */

/* <CLASS>.get_all_records: a map from ref to record.  Caller owns. */
JsonObject *tern_get_all_records(TernConn *c, const char *cls, GError **error);

/* <CLASS>.get_record(REF).  Caller owns. */
JsonObject *tern_get_record(TernConn *c, const char *cls, const char *ref, GError **error);

/* VM.get_all_records (templates included).  Caller owns. */
JsonObject *tern_vm_get_all_records(TernConn *c, GError **error);

/* Finds the VM named by WHO, which may be an OpaqueRef (checked with
 * VM.get_uuid), a uuid (VM.get_by_uuid) or a name_label
 * (VM.get_by_name_label).  Returns its ref, newly allocated, or NULL with
 * TERN_ERROR_NOT_FOUND, TERN_ERROR_AMBIGUOUS (several VMs carry that name)
 * or the server's error. */
char *tern_vm_resolve(TernConn *c, const char *who, GError **error);

/* ------------------------------------------------------------------ */
/* Storage (src/lib/storage.c; docs/storage.md)                        */
/* ------------------------------------------------------------------ */

/* SR.get_all_records, VDI.get_all_records.  Caller owns. */
JsonObject *tern_sr_get_all_records(TernConn *c, GError **error);
JsonObject *tern_vdi_get_all_records(TernConn *c, GError **error);

/* Finds the object of class CLS ("SR", "VDI", "VM", ...) named by WHO: an
 * OpaqueRef, a uuid or a name_label, as tern_vm_resolve does for VMs.
 * Returns its ref, newly allocated, or NULL with ERROR. */
char *tern_resolve(TernConn *c, const char *cls, const char *who, GError **error);

/* VDI.create in SR of SIZE bytes (type "user"; in the boot SR, a raw
 * file named NAME).  Returns the new VDI's ref. */
char *tern_vdi_create(TernConn *c, const char *sr, const char *name, gint64 size,
                      GError **error);

/* VBD.create: VDI attached to VM at USERDEVICE ("autodetect" for the next
 * free one), as a disk, read-write unless READ_ONLY.  Returns its ref. */
char *tern_vbd_create(TernConn *c, const char *vm, const char *vdi, const char *userdevice,
                      gboolean bootable, gboolean read_only, GError **error);

/* PUT /import_raw_vdi?session_id=..&vdi=VDI with the bytes of the file at
 * PATH (streamed, never read whole).  ternd refuses more than the VDI's
 * virtual_size (HTTP 413).  TERN_ERROR_TRANSPORT on any HTTP failure. */
gboolean tern_vdi_import(TernConn *c, const char *vdi, const char *path, GError **error);

/* Reads a record field that XAPI declares int, sent either as a JSON number
 * or (XML-RPC style) as a decimal string.  Returns DEFAULT_VALUE when the
 * field is missing or not an integer. */
gint64 tern_record_get_int(JsonObject *record, const char *field, gint64 default_value);

/* A string field of RECORD, or NULL when missing or not a string.
 * Belongs to RECORD. */
const char *tern_record_get_string(JsonObject *record, const char *field);

/* ------------------------------------------------------------------ */
/* Tasks and events                                                    */
/* ------------------------------------------------------------------ */

/* Called by tern_task_wait() with the task's record each time it changes
 * (status, progress or other_config) and once more with the final record.
 * The record belongs to the caller of the callback: take a reference to
 * keep it. */
typedef void (*TernProgressFn)(JsonObject *task_record, gpointer user_data);

/* Waits until TASK is no longer pending or cancelling, watching it with
 * event.from on class "task" (falling back to polling task.get_record every
 * 200 ms when the server has no event.from).  PROGRESS (nullable) sees every
 * change.  On success returns the task's result, newly allocated (may be
 * ""); on failure or cancellation returns NULL and sets ERROR from the
 * task's error_info (code, then parameters) as a TERN_ERROR_XAPI error, or
 * TASK_CANCELLED [task] when error_info is empty.  The task is not
 * destroyed. */
char *tern_task_wait(TernConn *c, const char *task, TernProgressFn progress,
                     gpointer user_data, GError **error);

/* Calls task.cancel(TASK). */
gboolean tern_task_cancel(TernConn *c, const char *task, GError **error);

/* One call to event.from(CLASSES, *TOKEN, TIMEOUT_S).  *TOKEN is read and
 * replaced by the new token (start with NULL or "").  Returns the array of
 * events (caller owns; empty after a timeout).  EVENTS_LOST is passed up as
 * an XAPI error: the caller should start again with an empty token. */
JsonArray *tern_event_from(TernConn *c, const char *const *classes, char **token,
                           double timeout_s, GError **error);

/* ------------------------------------------------------------------ */
/* Migration (MIGRATION.md)                                            */
/* ------------------------------------------------------------------ */

/* Migration parameters.  Initialise with TERN_MIGRATE_PARAMS_INIT or
 * tern_migrate_params_init(): the defaults (live, secure) are TRUE, so a
 * zeroed struct would ask for an offline, unencrypted migration.  Passing
 * NULL params means the defaults. */
typedef struct {
  gboolean live;            /* TRUE: move a running VM; FALSE: offline (paused or halted VM) */
  const char *mode;         /* "tunnelled" (default when NULL) or "direct" */
  gboolean secure;          /* refuse any unencrypted path (default TRUE) */
  guint bandwidth_mib;      /* MiB/s cap; 0 = no cap */
  guint downtime_ms;        /* maximum downtime; 0 = server default */
  const char *dest_name;    /* rename on arrival; NULL = keep the name */
  gboolean paused;          /* leave the VM paused on arrival */
  guint max_duration_s;     /* give up or escalate after this; 0 = no limit */
  /* p2p only: SHA-256 fingerprint of the destination's certificate, handed
   * to the source daemon in the destination map as "fingerprint". */
  const char *dest_fingerprint;
  /* p2p only: without a fingerprint, let the source daemon record the
   * destination's certificate on this first use (its known_hosts) instead
   * of refusing it ("trust_on_first_use" in the destination map). */
  gboolean dest_trust_on_first_use;
  /* Extra options (char * -> char *), e.g. compress, parallel,
   * auto_converge, postcopy: copied into the options map as they are.  A
   * key that one of the fields above also sets is overridden by the field.
   * Not consumed; may be NULL. */
  GHashTable *extra;
} TernMigrateParams;

#define TERN_MIGRATE_PARAMS_INIT { .live = TRUE, .secure = TRUE }

/* Sets P to the defaults (live, secure, everything else unset). */
void tern_migrate_params_init(TernMigrateParams *p);

/* The XAPI options map (string -> string) for P (NULL = defaults), with
 * the keys mode, secure, bandwidth, downtime, dest_name, paused,
 * max_duration and the extra options.  "secure" is always present; the
 * others only when set.  Caller owns. */
JsonObject *tern_migrate_params_to_options(const TernMigrateParams *p);

/* Managed migration, destination side of the handshake: on DST, calls
 * session.get_this_host and host.migrate_receive(host, "OpaqueRef:NULL",
 * options).  Returns the destination map (token, url, host, expires,
 * fingerprint, ...) to hand to the source; caller owns.  Each map
 * authorises one migration for a short time. */
JsonObject *tern_vm_migrate_receive(TernConn *dst, const TernMigrateParams *p, GError **error);

/* Managed migration of VM (a ref on SRC) from SRC to DST, both logged in:
 * tern_vm_migrate_receive() on DST, then Async.VM.migrate_send(vm,
 * dest_map, live, {}, {}, options) on SRC, then tern_task_wait() with
 * PROGRESS.  The source daemon never holds credentials for the
 * destination.  Returns the VM's ref on the destination (newly allocated)
 * or NULL with ERROR (the server's XAPI error, e.g. VM_MIGRATE_FAILED). */
char *tern_vm_migrate(TernConn *src, TernConn *dst, const char *vm,
                      const TernMigrateParams *p, TernProgressFn progress,
                      gpointer user_data, GError **error);

/* The destination map of a peer-to-peer migration: {"url": DEST_URI,
 * "user": USER, "password": PASSWORD} plus "fingerprint" when
 * P->dest_fingerprint is set, and "trust_on_first_use": "true" when
 * P->dest_trust_on_first_use is.  Caller owns (it holds the password). */
JsonObject *tern_migrate_p2p_dest(const char *dest_uri, const char *user,
                                  const char *password, const TernMigrateParams *p);

/* Peer-to-peer migration: the client talks only to SRC; the source daemon
 * logs in to DEST_URI with USER and PASSWORD and obtains the token itself.
 * Calls Async.VM.migrate_send(vm, tern_migrate_p2p_dest(...), live, {}, {},
 * options + {"control": "p2p"}) on SRC and waits as tern_vm_migrate() does.
 * Returns the VM's ref on the destination or NULL with ERROR. */
char *tern_vm_migrate_to_uri(TernConn *src, const char *dest_uri, const char *user,
                             const char *password, const char *vm,
                             const TernMigrateParams *p, TernProgressFn progress,
                             gpointer user_data, GError **error);

G_END_DECLS

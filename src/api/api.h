/*
 * api: the XAPI classes and the one method table behind both encodings.
 *
 * The RPC layer (src/rpc/) decodes a request into a method name and a JSON
 * array of arguments and hands it to api_dispatch.  Dispatch finds the
 * method in the table, checks the argument count, the session and the
 * caller's role, and runs the handler with a Call.  A handler answers with
 * call_return or call_fail, at once or later from the main loop (event.from
 * waits, VM.start waits on QEMU), so every method is asynchronous at heart;
 * "Async.<class>.<method>" wraps the same Call in a task and answers with
 * the task's reference at once.
 *
 * Classes are described by tables: their fields (name, type, writable) give
 * the generated get_<field>/set_<field>/add_to_<field>/... methods, and
 * each class file adds its own methods with their minimum role.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "store/store.h"

/* XAPI's six roles, least powerful first, so that a comparison says
 * whether one role includes another. */
typedef enum {
	ROLE_READ_ONLY,
	ROLE_VM_OPERATOR,
	ROLE_VM_ADMIN,
	ROLE_VM_POWER_ADMIN,
	ROLE_POOL_OPERATOR,
	ROLE_POOL_ADMIN,
	ROLE_COUNT,
} Role;

const char *role_name(Role r);
gboolean role_parse(const char *name, Role *out);

typedef struct Api Api;
typedef struct Call Call;
typedef struct Session Session;
typedef struct Method Method;

typedef void (*MethodFn)(Call *call);

typedef enum {
	FT_STRING,
	FT_INT,
	FT_FLOAT,
	FT_BOOL,
	FT_REF,
	FT_SET,     /* array of strings */
	FT_MAP,     /* string -> string */
	FT_DATETIME,
	FT_ANY,     /* computed, read-only */
} FieldType;

typedef struct {
	const char *name;
	FieldType type;
	gboolean writable;
} Field;

typedef struct {
	const char *name;         /* "VM" */
	const Field *fields;      /* terminated by { NULL } */
	const Method *methods;    /* terminated by { NULL } */
	Role set_role;            /* minimum role for generated setters */
	gboolean named;           /* has get_by_name_label */
	/* Refreshes computed fields before a read (host.memory_free). */
	void (*refresh)(Api *api, StoreObj *o);
} ClassDef;

struct Method {
	const char *name;         /* without class: "start" */
	MethodFn fn;
	int nargs;                /* including the session */
	int nargs_min;            /* when fewer are accepted (0: exactly) */
	Role role;
	gboolean async;           /* also served as Async.<class>.<name> */
	gboolean no_session;      /* login and system.* */
	/* Filled at registration for generated accessors. */
	const ClassDef *cls;
	const Field *field;
};

/* Where a request came from: used for peer-credential logins. */
typedef struct {
	gboolean local;           /* on the Unix socket */
	gboolean root;            /* local peer is uid 0 */
	char *peer;               /* for logs */
} CallOrigin;

/* Called once with the reply: VALUE (borrowed) or ERROR. */
typedef void (*CallReplyFn)(JsonNode *value, const GError *error,
			    gpointer user_data);

struct Call {
	int refs;
	Api *api;
	const Method *method;
	char *name;               /* full method name as called */
	JsonArray *args;
	Session *session;         /* NULL for session-less methods */
	CallOrigin origin;
	StoreObj *task;           /* set for Async.* calls */
	char *task_ref;
	GCancellable *cancel;     /* cancelled by task.cancel; NULL unless
				   * the call runs as a task (Async.*) */
	gboolean done;
	CallReplyFn reply;
	gpointer reply_data;
};

struct Session {
	char *ref;                /* the secret: never listed or logged */
	char *uuid;
	char *originator;
	char *created;
	char *user;
	Role role;
	gboolean local_root;
	gint64 last_active_us;
};

typedef struct {
	char *state_dir;
	char *run_dir;
	char *accel;              /* "tcg", "kvm", "auto" */
	char *cpu_model;          /* default CPU model for VMs */
	char *qemu_binary;
	guint session_idle_s;
	char *migrate_url;        /* how peers reach this host's API port */
	char *tls_fingerprint;    /* SHA-256 of the API certificate */
	gboolean tls;             /* remote listener speaks TLS */
	gint64 memory_reserve;    /* bytes kept for the host itself */
	guint login_workers;      /* password checks at once (Argon2id) */
	guint login_queue;        /* checks waiting; more are refused */
	const char *qemu_user;    /* QEMU's -runas user; "" for none */
	gboolean qemu_sandbox;    /* QEMU's seccomp filter */
	gint64 console_log_max;   /* bytes per console log; 0: no cap */
	guint task_keep_s;        /* finished tasks are destroyed after */
	guint task_keep_max;      /* and when more are finished than this */
	const char *boot_dir;     /* the boot SR's directory (docs/storage.md) */
} ApiConfig;

struct Api {
	Store *store;
	ApiConfig cfg;
	char *host_ref;
	char *pool_ref;
	GHashTable *methods;      /* full name -> Method (owned copies) */
	GPtrArray *method_names;
	GHashTable *sessions;     /* ref -> Session */
	GHashTable *task_calls;   /* task ref -> Call (running Async calls) */
	GQueue *tasks_done;       /* TaskDone, finished tasks oldest first */
	guint task_gc_id;         /* when the oldest finished task expires */
	GList *waiters;           /* event.from calls waiting */
	gpointer qemu;            /* the QEMU driver (src/qemu/driver.h) */
	gpointer migrate;         /* the migration engine (src/migrate/) */
	GTlsCertificate *cert;    /* the API listener's, for the channel */
	guint sweep_id;
	guint logins_running;     /* password checks in workers */
	GQueue logins_waiting;    /* GTasks not started yet (session.c) */
};

Api *api_new(Store *store, const ApiConfig *cfg, GError **error);
void api_free(Api *api);

/* Runs METHOD with ARGS (borrowed); REPLY is called exactly once, possibly
 * before this returns. */
void api_dispatch(Api *api, const char *method, JsonArray *args,
		  const CallOrigin *origin, CallReplyFn reply,
		  gpointer reply_data);

/* Answers.  call_return takes ownership of VALUE (NULL means ""). */
void call_return(Call *call, JsonNode *value);
void call_return_string(Call *call, const char *s);
void call_fail(Call *call, GError *error); /* takes ownership */
Call *call_ref(Call *call);
void call_unref(Call *call);

/* Argument access, with XAPI errors (FIELD_TYPE_ERROR, HANDLE_INVALID)
 * set on failure.  Indexes count the session as argument 0. */
const char *call_arg_string(Call *call, guint i, GError **error);
gboolean call_arg_bool(Call *call, guint i, gboolean *out, GError **error);
gboolean call_arg_int(Call *call, guint i, gint64 *out, GError **error);
gboolean call_arg_float(Call *call, guint i, double *out, GError **error);
JsonObject *call_arg_map(Call *call, guint i, GError **error);
JsonArray *call_arg_array(Call *call, guint i, GError **error);
StoreObj *call_arg_obj(Call *call, guint i, const char *cls,
		       GError **error);

/* Task progress for Async calls (no-ops otherwise). */
void call_set_progress(Call *call, double progress);
void call_task_update(Call *call, const char *key, const char *value);
/* Merges KV (string values) into the task's other_config at once. */
void call_task_update_many(Call *call, JsonObject *kv);
/* Adds or removes "cancel" in the task's allowed_operations. */
void call_task_set_cancellable(Call *call, gboolean cancellable);

/* Helpers for handlers. */
StoreObj *api_host(Api *api);
JsonNode *api_record_node(Api *api, StoreObj *o);
char *api_now_datetime(void);

/* Class descriptions and their setup (src/api/<class>.c). */
extern const ClassDef session_class;
extern const ClassDef pool_class;
extern const ClassDef host_class;
extern const ClassDef vm_class;
extern const ClassDef task_class;
extern const ClassDef event_class;
extern const ClassDef network_class;
extern const ClassDef vif_class;
extern const ClassDef pif_class;

gboolean host_init(Api *api, GError **error);
char *host_qemu_version(const char *binary);
void host_refresh(Api *api, StoreObj *o);

/* Storage (sr.c, pbd.c, vdi.c, vbd.c): records over src/storage/. */
extern const ClassDef sr_class;
extern const ClassDef pbd_class;
extern const ClassDef vdi_class;
extern const ClassDef vbd_class;
/* At start: the default local SR and the boot SR (made on first start,
 * plugged and scanned every start). */
gboolean sr_init(Api *api, GError **error);
/* The directory of SR on this host: its PBD's device_config:location,
 * when that PBD is attached (SR_NO_PBDS otherwise).  Borrowed. */
const char *sr_dir(Api *api, StoreObj *sr, GError **error);
/* This host's boot SR (content_type "kernel"), or NULL. */
StoreObj *sr_boot(Api *api);
/* Rebuilds SR's VDI records from its directory. */
gboolean sr_scan(Api *api, StoreObj *sr, GError **error);
/* Recomputes SR's sizes (statvfs, the VDIs' sizes). */
void sr_refresh(Api *api, StoreObj *sr);
/* Adds REF to (or removes it from) the set FIELD of O. */
void sr_link(Api *api, StoreObj *o, const char *field, const char *ref,
	     gboolean add);
/* The image file of VDI (a new string), checked to be a regular file. */
char *vdi_path(Api *api, StoreObj *vdi, GError **error);
/* PUT /import_raw_vdi (src/rpc/http.c): the upload of LENGTH bytes into
 * a VDI.  vdi_import_open checks the session (vm-admin at least), the VDI
 * (not in use) and the length (at most virtual_size) and opens the file
 * the bytes go to; *STATUS is the HTTP status of a refusal.
 * vdi_import_finish ends it: a raw VDI takes the bytes as they are (and
 * its size becomes theirs), a qcow2 VDI is filled from them (qemu-img
 * convert -n); DONE gets NULL or the error. */
typedef struct VdiImport VdiImport;
VdiImport *vdi_import_open(Api *api, const char *session_ref,
			   const char *vdi_ref, gint64 length, guint *status,
			   GError **error);
gboolean vdi_import_write(VdiImport *imp, const void *buf, gsize len,
			  GError **error);
void vdi_import_finish(Api *api, VdiImport *imp /* takes */,
		       void (*done)(const GError *error, gpointer data),
		       gpointer data);
void vdi_import_free(VdiImport *imp);
/* Whether a VBD of a VM that is not Halted uses VDI. */
gboolean vdi_attached(Api *api, StoreObj *vdi);
/* Sets currently_attached on every VBD of VM (at start and halt). */
void vbd_mark_attached(Api *api, StoreObj *vm, gboolean attached);
/* A new VBD of VM on VDI (a Disk, RW) at USERDEVICE; linked both ways. */
StoreObj *vbd_add(Api *api, StoreObj *vm, StoreObj *vdi,
		  const char *userdevice, gboolean bootable, GError **error);

/* Sessions (src/api/session.c). */
Session *session_lookup(Api *api, const char *ref);
void session_sweep(Api *api);
void session_free(Session *s);

/* Tasks (src/api/task.c). */
StoreObj *task_create(Api *api, const char *name, Session *session,
		      GError **error);
void task_finish(Api *api, StoreObj *task, JsonNode *result,
		 const GError *error, gboolean cancelled);
void task_set_field(Api *api, StoreObj *task, const char *field,
		    JsonNode *value /* takes */);
/* Finished tasks are destroyed after cfg.task_keep_s, or sooner when more
 * than cfg.task_keep_max are finished; task_gc_free stops that. */
void task_gc_init(Api *api);
void task_gc_free(Api *api);

/* Events (src/api/event.c): wakes event.from waiters after a change. */
void event_notify(Api *api);

/* Field values: type check (FIELD_TYPE_ERROR) and canonical form. */
gboolean api_field_check(const Field *f, JsonNode *v, GError **error);
JsonNode *api_field_normalise(const Field *f, JsonNode *v);

/* VM records (src/api/vm.c). */
JsonObject *vm_default_record(void);
JsonObject *vm_record_from_map(JsonObject *given, GError **error);
StoreObj *vm_add(Api *api, JsonObject *rec, GError **error);
gboolean vm_update_operations(Api *api, StoreObj *vm, GError **error);
const char *vm_power_state(StoreObj *vm);
/* EXPECTED is one state or several joined by '|'. */
gboolean vm_check_power(StoreObj *vm, const char *expected, GError **error);

/* One operation at a time per VM (src/api/vm-power.c): vm_op_begin marks
 * OP in current_operations or fails with OTHER_OPERATION_IN_PROGRESS. */
gboolean vm_op_idle(StoreObj *vm, GError **error);
gboolean vm_op_begin(Api *api, StoreObj *vm, const char *op, GError **error);
void vm_op_end(Api *api, const char *vm_ref);
/* Sets fields of a VM by name: pairs of (field, JsonNode*) ending in
 * NULL; the nodes are taken. */
gboolean vm_set(Api *api, StoreObj *vm, GError **error, ...)
	G_GNUC_NULL_TERMINATED;

/* What the VM boots from and writes to (vm-storage.c): resolved from its
 * records and checked (BOOTLOADER_FAILED, VM_FILE_MISSING) for QEMU. */
typedef struct {
	char *kernel;
	char *initrd;
	GPtrArray *disks;         /* QemuDisk */
} VmStorage;
gboolean vm_storage_resolve(Api *api, StoreObj *vm, VmStorage *out,
			    GError **error);
/* The QemuDisk (qemu/disk.h) of one VBD: its VDI's file in its SR,
 * checked; NULL with an error (VDI_MISSING, SR_NO_PBDS, ...). */
gpointer vm_storage_vbd_disk(Api *api, StoreObj *vbd, GError **error);
/* The path of the boot file NAME (PV_kernel/PV_ramdisk: a file name in
 * the boot SR, or a VDI uuid or ref there), checked to be a regular file:
 * a new string, or NULL with *WHY a static phrase completing "NAME ...". */
char *vm_storage_boot_path(Api *api, const char *name, const char **why);
/* Whether NAME may be a PV_kernel/PV_ramdisk value (INVALID_VALUE). */
gboolean vm_storage_boot_name_ok(const char *field, const char *name,
				 GError **error);
/* Once at start: old records (absolute PV_kernel paths, other_config:disks)
 * moved into the boot SR and the local SR. */
gboolean vm_storage_upgrade(Api *api, GError **error);
void vm_storage_clear(VmStorage *s);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(VmStorage, vm_storage_clear)

/* Networks (network.c, vif.c, pif.c, vm-net.c; docs/networking.md). */
/* Copies the fields of GIVEN named in GIVEN_OK (type-checked) into REC. */
gboolean network_fill(const Field *fields, const char *const *given_ok,
		      JsonObject *given, JsonObject *rec, GError **error);
/* Adds ITEM to (removes it from) the set FIELD of the record REF. */
gboolean network_ref_add(Api *api, const char *ref, const char *field,
			 const char *item, GError **error);
gboolean network_ref_remove(Api *api, const char *ref, const char *field,
			    const char *item, GError **error);
JsonObject *network_default_record(void);
StoreObj *network_add(Api *api, JsonObject *rec, GError **error);
/* The first PREFIX<N> neither a network nor a host link uses. */
char *network_pick_bridge(Api *api, const char *prefix);
void vif_set_attached(Api *api, StoreObj *vif, gboolean attached);
/* Removes the VIFs whose VM no longer exists. */
void vif_gc(Api *api);
void pif_reconcile(Api *api);
/* The alias marking this host's bridges and taps (net.h: net_owner). */
char *vm_net_owner(Api *api);
/* Whether VM (may be NULL) has a QEMU: Running or Paused. */
gboolean vm_net_running(StoreObj *vm);
/* The tap of VIF opened on its network's bridge, as a QemuNic (qemu/nic.h)
 * owning the fd. */
struct QemuNic;
struct QemuNic *vm_net_nic_open(Api *api, StoreObj *vif, GError **error);
/* The VM's VIFs, by device, as QemuNics for QemuStartOpts.nics (a new
 * array; its free closes the taps ternd holds). */
GPtrArray *vm_net_resolve(Api *api, StoreObj *vm, GError **error);
/* Once at start: leftover taps and bridges removed, PIFs plugged. */
void vm_net_reconcile(Api *api);

void vm_power_start(Call *call);
void vm_power_clean_shutdown(Call *call);
void vm_power_hard_shutdown(Call *call);
void vm_power_clean_reboot(Call *call);
void vm_power_hard_reboot(Call *call);
void vm_power_pause(Call *call);
void vm_power_unpause(Call *call);
void vm_power_get_console_log(Call *call);

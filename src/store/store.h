/*
 * store: the daemon's objects, kept in memory and in SQLite.
 *
 * Every XAPI object (pool, host, VM, task, ...) is a record: a JSON
 * object of its fields, addressed by an opaque reference.  The store keeps
 * all records in memory for fast reads and writes the persistent classes to
 * SQLite (WAL) before the caller replies, so a change that was answered is
 * on disk.  Tasks are transient, as in XAPI: they live in memory only.
 *
 * Records are copy-on-write.  A caller that changes an object takes a copy
 * (store_obj_dup), edits it, and hands it back with store_replace; the old
 * record stays valid for whoever still holds it, which is what lets an
 * event keep its snapshot without a deep copy.
 *
 * Every add, replace and remove appends an event (add, mod, del) with the
 * record as its snapshot to a bounded ring; event.from reads the ring.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

typedef struct Store Store;

typedef struct {
	char *ref;        /* "OpaqueRef:<uuid>" */
	char *cls;        /* XAPI class name, e.g. "VM" */
	char *uuid;
	JsonObject *rec;  /* the current record; never modified in place */
} StoreObj;

typedef struct {
	guint64 id;
	gint64 timestamp_us;
	const char *cls;         /* interned */
	const char *operation;   /* "add", "mod", "del" */
	char *ref;
	JsonObject *snapshot;    /* owned reference; NULL for nothing */
} StoreEvent;

typedef void (*StoreEventFn)(Store *store, const StoreEvent *ev,
			     gpointer user_data);

Store *store_open(const char *path, GError **error);
void store_close(Store *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Store, store_close)

/* Wraps several changes in one SQLite transaction (nesting counts). */
gboolean store_begin(Store *store, GError **error);
gboolean store_end(Store *store, GError **error);

/* Lookups return borrowed objects, valid until the object is removed. */
StoreObj *store_get(Store *store, const char *ref);
StoreObj *store_get_typed(Store *store, const char *cls, const char *ref);
StoreObj *store_get_by_uuid(Store *store, const char *cls, const char *uuid);
/* A new array of borrowed StoreObj pointers of one class. */
GPtrArray *store_list(Store *store, const char *cls);
guint store_count(Store *store, const char *cls);

/* Adds a record of class CLS.  Takes ownership of REC, which must hold a
 * "uuid" member.  Returns the new object (borrowed). */
StoreObj *store_add(Store *store, const char *cls, JsonObject *rec,
		    GError **error);
/* Replaces O's record by REC (takes ownership) and records a "mod" event. */
gboolean store_replace(Store *store, StoreObj *o, JsonObject *rec,
		       GError **error);
/* Removes O (which is freed) and records a "del" event. */
gboolean store_remove(Store *store, StoreObj *o, GError **error);

/* A deep copy of O's record, for the copy-on-write edit above. */
JsonObject *store_obj_dup(const StoreObj *o);

/* Records an event without a change (event.inject). Returns its id. */
guint64 store_inject(Store *store, StoreObj *o);

/* Events.  The ring keeps the last STORE_EVENT_RING events, and fewer when
 * their snapshots together pass the byte bound (store_set_event_bytes,
 * STORE_EVENT_BYTES by default): the oldest go first, the newest always
 * stays. */
#define STORE_EVENT_RING 8192
#define STORE_EVENT_BYTES ((gsize)16 << 20)
void store_set_event_bytes(Store *store, gsize max_bytes);
/* The estimated bytes N holds in memory (what the bound counts). */
gsize store_json_mem(JsonNode *n);
guint64 store_last_event(Store *store);
guint64 store_first_event(Store *store);
/* The events with id > AFTER, oldest first, in a new array of borrowed
 * pointers; NULL when AFTER is older than the ring (events were lost). */
GPtrArray *store_events_since(Store *store, guint64 after);
void store_set_event_fn(Store *store, StoreEventFn fn, gpointer user_data);

/* Key/value settings kept with the data (host identity, schema). */
char *store_meta_get(Store *store, const char *key);
gboolean store_meta_set(Store *store, const char *key, const char *value,
			GError **error);

/* Local users: name, Argon2id hash string, role name. */
typedef struct {
	char *name;
	char *hash;
	char *role;
} StoreUser;
void store_user_free(StoreUser *u);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreUser, store_user_free)
StoreUser *store_user_get(Store *store, const char *name);
GPtrArray *store_user_list(Store *store); /* of StoreUser, owned */
gboolean store_user_put(Store *store, const StoreUser *u, GError **error);
gboolean store_user_delete(Store *store, const char *name, GError **error);

/* Migration journal (see src/migrate/journal.c): one row per migration. */
typedef struct {
	char *id;       /* migration uuid */
	char *side;     /* "src" or "dst" */
	char *vm_uuid;
	char *phase;
	char *data;     /* JSON with whatever the side needs to recover */
} StoreJournal;
void store_journal_free(StoreJournal *j);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreJournal, store_journal_free)
gboolean store_journal_put(Store *store, const StoreJournal *j,
			   GError **error);
gboolean store_journal_delete(Store *store, const char *id, GError **error);
GPtrArray *store_journal_list(Store *store); /* of StoreJournal, owned */

/* A random (CSPRNG) version 4 uuid, and a new reference
 * "OpaqueRef:<uuid>". */
char *store_new_uuid(void);
char *store_new_ref(void);

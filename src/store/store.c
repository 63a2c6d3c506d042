/*
 * store: records in memory, persisted to SQLite (see store.h).
 *
 * NOTES ON THE DESIGN
 *
 * 1. Memory is the read path.  All records live in one hash table by
 *    reference and one table per class; reads never touch SQLite.
 * 2. SQLite is the write path.  A change to a persistent class is written
 *    (one row per object, the record as JSON text) before the in-memory
 *    table changes, so a failed write leaves memory as it was.  WAL mode,
 *    synchronous=FULL: a returned change survives a crash of the machine.
 * 3. The schema carries a version in PRAGMA user_version; store_migrate
 *    upgrades older files step by step.
 * 4. Events are numbered from 1 in the order of the changes.  The ring
 *    holds the last STORE_EVENT_RING, and fewer when their snapshots
 *    weigh more than event_max_bytes together (an estimate of each
 *    snapshot's size in memory, store_json_mem, taken when it is
 *    recorded; a snapshot shared with the live record is counted anyway,
 *    so the bound is an upper one); anything older is lost and
 *    event.from says so with EVENTS_LOST.
 */
#include "store/store.h"

#include <sodium.h>
#include <sqlite3.h>
#include <string.h>

#include "common/xerr.h"

#define STORE_SCHEMA_VERSION 1

struct Store {
	sqlite3 *db;
	GHashTable *objs;      /* ref -> StoreObj (owned) */
	GHashTable *classes;   /* cls -> GHashTable(ref -> StoreObj, borrowed) */
	GHashTable *uuids;     /* "cls/uuid" -> StoreObj (borrowed) */
	sqlite3_stmt *st_put;
	sqlite3_stmt *st_del;
	int depth;             /* store_begin nesting */

	StoreEvent ring[STORE_EVENT_RING];
	gsize ring_size[STORE_EVENT_RING]; /* each event's estimated bytes */
	guint64 next_event;    /* id of the next event */
	guint64 first_event;   /* id of the oldest event still held */
	gsize event_bytes;     /* sum of ring_size over the held events */
	gsize event_max_bytes;
	StoreEventFn event_fn;
	gpointer event_data;
};

/* Tasks live in memory only, as in XAPI. */
static const char *const store_transient[] = { "task", NULL };

static gboolean
store_is_transient(const char *cls)
{
	return g_strv_contains(store_transient, cls);
}

static gboolean
store_sql_error(Store *store, GError **error, const char *what)
{
	xerr_set(error, "INTERNAL_ERROR",
		 "database", what, sqlite3_errmsg(store->db), NULL);
	return FALSE;
}

static gboolean
store_exec(Store *store, const char *sql, GError **error)
{
	char *msg = NULL;

	if (sqlite3_exec(store->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		xerr_set(error, "INTERNAL_ERROR", "database", sql, msg, NULL);
		sqlite3_free(msg);
		return FALSE;
	}
	return TRUE;
}

/* Schema migrations: entry N upgrades user_version N to N+1. */
static const char *const store_migrations[STORE_SCHEMA_VERSION] = {
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE objects (ref TEXT PRIMARY KEY, class TEXT NOT NULL,"
	"  record TEXT NOT NULL);"
	"CREATE TABLE users (name TEXT PRIMARY KEY, hash TEXT NOT NULL,"
	"  role TEXT NOT NULL);"
	"CREATE TABLE journal (id TEXT PRIMARY KEY, side TEXT NOT NULL,"
	"  vm_uuid TEXT NOT NULL, phase TEXT NOT NULL, data TEXT NOT NULL);",
};

static gboolean
store_migrate(Store *store, GError **error)
{
	sqlite3_stmt *st;
	int version = 0;

	if (sqlite3_prepare_v2(store->db, "PRAGMA user_version", -1, &st,
			       NULL) != SQLITE_OK)
		return store_sql_error(store, error, "schema version");
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);

	if (version > STORE_SCHEMA_VERSION) {
		xerr_set(error, "INTERNAL_ERROR", "database schema is newer "
			 "than this ternd understands", NULL);
		return FALSE;
	}
	for (; version < STORE_SCHEMA_VERSION; version++) {
		g_autofree char *sql = g_strdup_printf(
			"BEGIN; %s PRAGMA user_version = %d; COMMIT;",
			store_migrations[version], version + 1);
		if (!store_exec(store, sql, error))
			return FALSE;
		g_info("store: schema upgraded to version %d", version + 1);
	}
	return TRUE;
}

static void
store_obj_free(StoreObj *o)
{
	if (o == NULL)
		return;
	g_free(o->ref);
	g_free(o->uuid);
	if (o->rec)
		json_object_unref(o->rec);
	g_free(o);
}

static char *
store_uuid_key(const char *cls, const char *uuid)
{
	return g_strconcat(cls, "/", uuid, NULL);
}

static GHashTable *
store_class_table(Store *store, const char *cls)
{
	GHashTable *t = g_hash_table_lookup(store->classes, cls);

	if (t == NULL) {
		t = g_hash_table_new(g_str_hash, g_str_equal);
		g_hash_table_insert(store->classes,
				    (gpointer)g_intern_string(cls), t);
	}
	return t;
}

static void
store_index(Store *store, StoreObj *o)
{
	g_hash_table_insert(store->objs, o->ref, o);
	g_hash_table_insert(store_class_table(store, o->cls), o->ref, o);
	g_hash_table_insert(store->uuids, store_uuid_key(o->cls, o->uuid), o);
}

static StoreObj *
store_obj_new(const char *ref, const char *cls, JsonObject *rec)
{
	StoreObj *o = g_new0(StoreObj, 1);

	o->ref = g_strdup(ref);
	o->cls = (char *)g_intern_string(cls);
	o->uuid = g_strdup(json_object_get_string_member_with_default(
		rec, "uuid", ""));
	o->rec = rec;
	return o;
}

static gboolean
store_load(Store *store, GError **error)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(store->db,
			       "SELECT ref, class, record FROM objects", -1,
			       &st, NULL) != SQLITE_OK)
		return store_sql_error(store, error, "load");
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *ref = (const char *)sqlite3_column_text(st, 0);
		const char *cls = (const char *)sqlite3_column_text(st, 1);
		const char *text = (const char *)sqlite3_column_text(st, 2);
		g_autoptr(GError) e = NULL;
		g_autoptr(JsonNode) n = json_from_string(text, &e);

		if (n == NULL || !JSON_NODE_HOLDS_OBJECT(n)) {
			g_warning("store: skipping unreadable record %s", ref);
			continue;
		}
		store_index(store, store_obj_new(ref, cls,
			json_object_ref(json_node_get_object(n))));
	}
	sqlite3_finalize(st);
	return TRUE;
}

Store *
store_open(const char *path, GError **error)
{
	g_autoptr(Store) store = g_new0(Store, 1);

	store->objs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					    (GDestroyNotify)store_obj_free);
	store->classes = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
		(GDestroyNotify)g_hash_table_unref);
	store->uuids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					     NULL);
	store->next_event = 1;
	store->first_event = 1;
	store->event_max_bytes = STORE_EVENT_BYTES;

	if (sqlite3_open(path, &store->db) != SQLITE_OK) {
		store_sql_error(store, error, path);
		return NULL;
	}
	sqlite3_busy_timeout(store->db, 5000);
	if (!store_exec(store, "PRAGMA journal_mode=WAL;"
			"PRAGMA synchronous=FULL;"
			"PRAGMA foreign_keys=ON;", error) ||
	    !store_migrate(store, error) || !store_load(store, error))
		return NULL;
	if (sqlite3_prepare_v2(store->db,
			       "INSERT OR REPLACE INTO objects(ref, class, "
			       "record) VALUES (?, ?, ?)", -1, &store->st_put,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(store->db, "DELETE FROM objects WHERE ref = ?",
			       -1, &store->st_del, NULL) != SQLITE_OK) {
		store_sql_error(store, error, "prepare");
		return NULL;
	}
	return g_steal_pointer(&store);
}

void
store_close(Store *store)
{
	if (store == NULL)
		return;
	sqlite3_finalize(store->st_put);
	sqlite3_finalize(store->st_del);
	if (store->db)
		sqlite3_close(store->db);
	for (guint i = 0; i < STORE_EVENT_RING; i++) {
		g_free(store->ring[i].ref);
		if (store->ring[i].snapshot)
			json_object_unref(store->ring[i].snapshot);
	}
	g_hash_table_unref(store->uuids);
	g_hash_table_unref(store->classes);
	g_hash_table_unref(store->objs);
	g_free(store);
}

gboolean
store_begin(Store *store, GError **error)
{
	if (store->depth++ > 0)
		return TRUE;
	return store_exec(store, "BEGIN", error);
}

gboolean
store_end(Store *store, GError **error)
{
	g_return_val_if_fail(store->depth > 0, FALSE);
	if (--store->depth > 0)
		return TRUE;
	return store_exec(store, "COMMIT", error);
}

StoreObj *
store_get(Store *store, const char *ref)
{
	return ref ? g_hash_table_lookup(store->objs, ref) : NULL;
}

StoreObj *
store_get_typed(Store *store, const char *cls, const char *ref)
{
	StoreObj *o = store_get(store, ref);

	return o != NULL && strcmp(o->cls, cls) == 0 ? o : NULL;
}

StoreObj *
store_get_by_uuid(Store *store, const char *cls, const char *uuid)
{
	g_autofree char *key = store_uuid_key(cls, uuid);

	return g_hash_table_lookup(store->uuids, key);
}

GPtrArray *
store_list(Store *store, const char *cls)
{
	GHashTable *t = g_hash_table_lookup(store->classes, cls);
	GPtrArray *out = g_ptr_array_new();
	GHashTableIter it;
	gpointer v;

	if (t == NULL)
		return out;
	g_ptr_array_set_size(out, g_hash_table_size(t));
	g_ptr_array_set_size(out, 0);
	g_hash_table_iter_init(&it, t);
	while (g_hash_table_iter_next(&it, NULL, &v))
		g_ptr_array_add(out, v);
	return out;
}

guint
store_count(Store *store, const char *cls)
{
	GHashTable *t = g_hash_table_lookup(store->classes, cls);

	return t ? g_hash_table_size(t) : 0;
}

/*
 * Roughly the bytes N holds in memory, as json-glib keeps it, without
 * asking malloc: what a snapshot costs to keep.  Every node is a JsonNode
 * and, for a scalar, a JsonValue (about 80 bytes from GLib's slices); an
 * object adds its hash table, and each member a hash slot, a list link
 * and its key; an array adds its pointer array; a string its copy.  The
 * figures are a least-squares fit to malloc's own count over 60 random
 * records of 2 to 350 kB (within 2% on each); JSON text's length, which
 * the ring once counted, is 3 to 40 times too low.  tests/unit/
 * test-store.c checks the estimate against malloc.
 */
gsize
store_json_mem(JsonNode *n)
{
	gsize size = 80;

	if (JSON_NODE_HOLDS_OBJECT(n)) {
		JsonObjectIter it;
		const char *k;
		JsonNode *v;

		size += 170;
		json_object_iter_init(&it, json_node_get_object(n));
		while (json_object_iter_next(&it, &k, &v))
			size += 84 + strlen(k) + store_json_mem(v);
	} else if (JSON_NODE_HOLDS_ARRAY(n)) {
		JsonArray *a = json_node_get_array(n);

		size += 72;
		for (guint i = 0; i < json_array_get_length(a); i++)
			size += store_json_mem(json_array_get_element(a, i));
	} else if (JSON_NODE_HOLDS_VALUE(n) &&
		   json_node_get_value_type(n) == G_TYPE_STRING) {
		size += 20 + strlen(json_node_get_string(n));
	}
	return size;
}

static gsize
store_snapshot_size(JsonObject *o)
{
	if (o == NULL)
		return 0;
	g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), o);
	return store_json_mem(n);
}

/* Forgets the oldest event held. */
static void
store_drop_oldest(Store *store)
{
	guint slot = store->first_event % STORE_EVENT_RING;
	StoreEvent *ev = &store->ring[slot];

	g_clear_pointer(&ev->ref, g_free);
	g_clear_pointer(&ev->snapshot, json_object_unref);
	store->event_bytes -= store->ring_size[slot];
	store->ring_size[slot] = 0;
	store->first_event++;
}

void
store_set_event_bytes(Store *store, gsize max_bytes)
{
	store->event_max_bytes = max_bytes;
	while (store->event_bytes > store->event_max_bytes &&
	       store->first_event + 1 < store->next_event)
		store_drop_oldest(store);
}

static void
store_emit(Store *store, const char *cls, const char *op, const char *ref,
	   JsonObject *snapshot)
{
	guint64 id = store->next_event;
	guint slot = id % STORE_EVENT_RING;
	StoreEvent *ev = &store->ring[slot];

	/* The slot's old event goes first, by count, then the oldest ones
	 * until the new one fits the byte bound. */
	if (store->first_event + STORE_EVENT_RING <= id)
		store_drop_oldest(store);
	store->next_event++;
	ev->id = id;
	ev->timestamp_us = g_get_real_time();
	ev->cls = g_intern_string(cls);
	ev->operation = op;
	ev->ref = g_strdup(ref);
	ev->snapshot = snapshot ? json_object_ref(snapshot) : NULL;
	store->ring_size[slot] = 64 + strlen(ref) + store_snapshot_size(snapshot);
	store->event_bytes += store->ring_size[slot];
	while (store->event_bytes > store->event_max_bytes &&
	       store->first_event < id)
		store_drop_oldest(store);
	if (store->event_fn)
		store->event_fn(store, ev, store->event_data);
}

static gboolean
store_write(Store *store, const char *ref, const char *cls, JsonObject *rec,
	    GError **error)
{
	if (store_is_transient(cls))
		return TRUE;

	g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), rec);
	g_autofree char *text = json_to_string(n, FALSE);
	sqlite3_stmt *st = store->st_put;

	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, cls, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_sql_error(store, error, "write");
	return TRUE;
}

StoreObj *
store_add(Store *store, const char *cls, JsonObject *rec, GError **error)
{
	g_autofree char *ref = store_new_ref();

	if (!store_write(store, ref, cls, rec, error)) {
		json_object_unref(rec);
		return NULL;
	}
	StoreObj *o = store_obj_new(ref, cls, rec);
	store_index(store, o);
	store_emit(store, o->cls, "add", o->ref, o->rec);
	return o;
}

gboolean
store_replace(Store *store, StoreObj *o, JsonObject *rec, GError **error)
{
	if (!store_write(store, o->ref, o->cls, rec, error)) {
		json_object_unref(rec);
		return FALSE;
	}
	json_object_unref(o->rec);
	o->rec = rec;
	store_emit(store, o->cls, "mod", o->ref, o->rec);
	return TRUE;
}

gboolean
store_remove(Store *store, StoreObj *o, GError **error)
{
	if (!store_is_transient(o->cls)) {
		sqlite3_stmt *st = store->st_del;

		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, o->ref, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return store_sql_error(store, error, "delete");
	}
	store_emit(store, o->cls, "del", o->ref, o->rec);
	g_autofree char *key = store_uuid_key(o->cls, o->uuid);
	g_hash_table_remove(store->uuids, key);
	g_hash_table_remove(store_class_table(store, o->cls), o->ref);
	g_hash_table_remove(store->objs, o->ref);
	return TRUE;
}

/* json_node_copy shares objects and arrays with the original; a record
 * edit needs its own, all the way down. */
static JsonNode *
store_deep_copy(JsonNode *n)
{
	if (JSON_NODE_HOLDS_OBJECT(n)) {
		JsonObject *src = json_node_get_object(n);
		JsonObject *dst = json_object_new();
		JsonObjectIter it;
		const char *k;
		JsonNode *v;

		json_object_iter_init(&it, src);
		while (json_object_iter_next(&it, &k, &v))
			json_object_set_member(dst, k, store_deep_copy(v));
		JsonNode *out = json_node_init_object(json_node_alloc(), dst);
		json_object_unref(dst);
		return out;
	}
	if (JSON_NODE_HOLDS_ARRAY(n)) {
		JsonArray *src = json_node_get_array(n);
		guint len = json_array_get_length(src);
		JsonArray *dst = json_array_sized_new(len);

		for (guint i = 0; i < len; i++)
			json_array_add_element(dst, store_deep_copy(
				json_array_get_element(src, i)));
		JsonNode *out = json_node_init_array(json_node_alloc(), dst);
		json_array_unref(dst);
		return out;
	}
	return json_node_copy(n);
}

JsonObject *
store_obj_dup(const StoreObj *o)
{
	g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(),
						      o->rec);
	g_autoptr(JsonNode) copy = store_deep_copy(n);

	return json_object_ref(json_node_get_object(copy));
}

guint64
store_inject(Store *store, StoreObj *o)
{
	store_emit(store, o->cls, "mod", o->ref, o->rec);
	return store->next_event - 1;
}

guint64
store_last_event(Store *store)
{
	return store->next_event - 1;
}

guint64
store_first_event(Store *store)
{
	return store->first_event;
}

GPtrArray *
store_events_since(Store *store, guint64 after)
{
	if (after + 1 < store_first_event(store))
		return NULL;
	GPtrArray *out = g_ptr_array_new();
	for (guint64 id = after + 1; id < store->next_event; id++)
		g_ptr_array_add(out, &store->ring[id % STORE_EVENT_RING]);
	return out;
}

void
store_set_event_fn(Store *store, StoreEventFn fn, gpointer user_data)
{
	store->event_fn = fn;
	store->event_data = user_data;
}

char *
store_meta_get(Store *store, const char *key)
{
	sqlite3_stmt *st;
	char *value = NULL;

	if (sqlite3_prepare_v2(store->db,
			       "SELECT value FROM meta WHERE key = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		value = g_strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return value;
}

/* Runs SQL with text parameters; NULL-terminated. */
static gboolean
store_run(Store *store, GError **error, const char *sql, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	const char *p;
	int i = 1;

	if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store_sql_error(store, error, "prepare");
	va_start(ap, sql);
	while ((p = va_arg(ap, const char *)) != NULL)
		sqlite3_bind_text(st, i++, p, -1, SQLITE_TRANSIENT);
	va_end(ap);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_sql_error(store, error, "write");
	return TRUE;
}

gboolean
store_meta_set(Store *store, const char *key, const char *value,
	       GError **error)
{
	return store_run(store, error,
			 "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
			 key, value, NULL);
}

void
store_user_free(StoreUser *u)
{
	if (u == NULL)
		return;
	g_free(u->name);
	if (u->hash)
		explicit_bzero(u->hash, strlen(u->hash));
	g_free(u->hash);
	g_free(u->role);
	g_free(u);
}

static StoreUser *
store_user_row(sqlite3_stmt *st)
{
	StoreUser *u = g_new0(StoreUser, 1);

	u->name = g_strdup((const char *)sqlite3_column_text(st, 0));
	u->hash = g_strdup((const char *)sqlite3_column_text(st, 1));
	u->role = g_strdup((const char *)sqlite3_column_text(st, 2));
	return u;
}

StoreUser *
store_user_get(Store *store, const char *name)
{
	sqlite3_stmt *st;
	StoreUser *u = NULL;

	if (sqlite3_prepare_v2(store->db, "SELECT name, hash, role FROM users "
			       "WHERE name = ?", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		u = store_user_row(st);
	sqlite3_finalize(st);
	return u;
}

GPtrArray *
store_user_list(Store *store)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(
		(GDestroyNotify)store_user_free);
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(store->db, "SELECT name, hash, role FROM users "
			       "ORDER BY name", -1, &st, NULL) != SQLITE_OK)
		return out;
	while (sqlite3_step(st) == SQLITE_ROW)
		g_ptr_array_add(out, store_user_row(st));
	sqlite3_finalize(st);
	return out;
}

gboolean
store_user_put(Store *store, const StoreUser *u, GError **error)
{
	return store_run(store, error, "INSERT OR REPLACE INTO users(name, "
			 "hash, role) VALUES (?, ?, ?)", u->name, u->hash,
			 u->role, NULL);
}

gboolean
store_user_delete(Store *store, const char *name, GError **error)
{
	return store_run(store, error, "DELETE FROM users WHERE name = ?",
			 name, NULL);
}

void
store_journal_free(StoreJournal *j)
{
	if (j == NULL)
		return;
	g_free(j->id);
	g_free(j->side);
	g_free(j->vm_uuid);
	g_free(j->phase);
	g_free(j->data);
	g_free(j);
}

gboolean
store_journal_put(Store *store, const StoreJournal *j, GError **error)
{
	return store_run(store, error, "INSERT OR REPLACE INTO journal(id, "
			 "side, vm_uuid, phase, data) VALUES (?, ?, ?, ?, ?)",
			 j->id, j->side, j->vm_uuid, j->phase, j->data, NULL);
}

gboolean
store_journal_delete(Store *store, const char *id, GError **error)
{
	return store_run(store, error, "DELETE FROM journal WHERE id = ?", id,
			 NULL);
}

GPtrArray *
store_journal_list(Store *store)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(
		(GDestroyNotify)store_journal_free);
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(store->db, "SELECT id, side, vm_uuid, phase, "
			       "data FROM journal", -1, &st, NULL) != SQLITE_OK)
		return out;
	while (sqlite3_step(st) == SQLITE_ROW) {
		StoreJournal *j = g_new0(StoreJournal, 1);
		j->id = g_strdup((const char *)sqlite3_column_text(st, 0));
		j->side = g_strdup((const char *)sqlite3_column_text(st, 1));
		j->vm_uuid = g_strdup((const char *)sqlite3_column_text(st, 2));
		j->phase = g_strdup((const char *)sqlite3_column_text(st, 3));
		j->data = g_strdup((const char *)sqlite3_column_text(st, 4));
		g_ptr_array_add(out, j);
	}
	sqlite3_finalize(st);
	return out;
}

char *
store_new_uuid(void)
{
	guint8 b[16];

	/* References double as bearer secrets (a session ref is the session),
	 * so they come from the CSPRNG, not from g_random. */
	randombytes_buf(b, sizeof b);
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	return g_strdup_printf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
			       "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
			       b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
			       b[11], b[12], b[13], b[14], b[15]);
}

char *
store_new_ref(void)
{
	g_autofree char *uuid = store_new_uuid();

	return g_strconcat("OpaqueRef:", uuid, NULL);
}

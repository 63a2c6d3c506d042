/*
 * qualify-int: what the two halves of qualification share: the host's
 * capabilities as the probe found them (qualify-caps.c) and the helpers
 * the checks (qualify.c) use to read them and the source's facts.
 */
#pragma once

#include "migrate/qualify.h"

typedef struct {
	char *alias_of;       /* "qemu64-v1" for "qemu64"; NULL */
	GHashTable *unavailable; /* canonical feature names */
} QualifyModel;

struct HostCaps {
	gboolean ok;          /* the probe answered */
	char *error;          /* why not */
	char *arch;           /* uname machine: "x86_64" */
	char *accel;          /* what the probe ran with */
	char *qemu_version;   /* "7.2.22" */
	char *default_machine;
	GHashTable *machines; /* name and alias -> machine name */
	GPtrArray *machine_list; /* "name" or "alias=name", sorted */
	GHashTable *models;   /* name -> QualifyModel */
	/* Model -> set of canonical feature names of its full expansion;
	 * a NULL value means QEMU could not expand that model. */
	GHashTable *expansions;
	gint64 probe_us;
};

/* The canonical name of CPU property PROP (QEMU's aliases resolved). */
char *qualify_feature_name(const char *prop);
/* A set of strings (keys owned). */
GHashTable *qualify_set_new(void);
/* The members of SET, sorted, in a new array of borrowed strings. */
GPtrArray *qualify_set_sorted(GHashTable *set);
/* The strings of A joined by SEP, in a new string. */
char *qualify_join(GPtrArray *a, const char *sep);

/* Typed access to JSON that came from elsewhere: NULL or FALSE when O is
 * NULL, KEY is missing or its value has another type. */
JsonNode *qualify_member(JsonObject *o, const char *key);
const char *qualify_str(JsonObject *o, const char *key);
gboolean qualify_int(JsonObject *o, const char *key, gint64 *out);
gboolean qualify_bool(JsonObject *o, const char *key, gboolean *out);
JsonObject *qualify_obj(JsonObject *o, const char *key);
JsonArray *qualify_arr(JsonObject *o, const char *key);
/* A string in a string map of a record (platform, other_config). */
const char *qualify_map_get(JsonObject *rec, const char *map,
			    const char *key);

/* The canonical features of MODEL's full expansion on this host,
 * expanded now by a short QEMU run when not cached.  NULL when QEMU
 * cannot expand MODEL.  Borrowed from CAPS. */
GHashTable *qualify_caps_expansion(Api *api, HostCaps *caps,
				   const char *model);
/* This host's other_config:cpu_model_max, or NULL. */
const char *qualify_host_model_max(Api *api);

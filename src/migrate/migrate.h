/*
 * migrate: live migration between two ternd hosts (MIGRATION.md).
 *
 * The destination side (migrate-dst.c) issues tokens with
 * host.migrate_receive and accepts the migration channel on the API port;
 * the source side (migrate-src.c) runs VM.migrate_send as one state
 * machine.  qualify.c checks a destination before anything stops; both
 * sides journal their phase in SQLite (journal.c) so that a restarted
 * daemon finishes or rolls back what it was doing.
 */
#pragma once

#include <gio/gio.h>

#include "api/api.h"

void migrate_dst_receive(Call *call);
void migrate_src_send(Call *call);
void migrate_assert_can_migrate(Call *call);
void migrate_check(Call *call);
void migrate_set_bandwidth(Call *call);

/* The API listener hands over a connection that opened with the
 * migration preamble (see channel.c).  Takes a reference on CONN. */
void migrate_dst_accept(Api *api, GSocketConnection *conn);

/* Recovers journaled migrations after a restart. */
void migrate_recover(Api *api);

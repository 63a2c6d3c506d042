/* Temporary: migration entry points until the engine lands. */
#include "migrate/migrate.h"
#include "common/xerr.h"

static void
migrate_unsupported(Call *call)
{
	call_fail(call, xerr_new("OPERATION_NOT_ALLOWED",
				 "migration is not available yet", NULL));
}

void migrate_dst_receive(Call *call) { migrate_unsupported(call); }
void migrate_src_send(Call *call) { migrate_unsupported(call); }
void migrate_assert_can_migrate(Call *call) { migrate_unsupported(call); }
void migrate_check(Call *call) { migrate_unsupported(call); }
void migrate_set_bandwidth(Call *call) { migrate_unsupported(call); }
void migrate_dst_accept(Api *api, GSocketConnection *conn) { (void)api; (void)conn; }
void migrate_recover(Api *api) { (void)api; }

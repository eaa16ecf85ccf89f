/*
 * store_migrate.h - the key layout in Redis: the tagged one (every
 * multi-key script in one Redis Cluster slot) replaced one without tags.
 * store_layout_check moves an earlier broker's state once (store_migrate.c).
 */
#ifndef ZTB_BROKER_STORE_MIGRATE_H
#define ZTB_BROKER_STORE_MIGRATE_H

#include <stddef.h>

/* Where the layout version is recorded, and this broker's. */
#define ZTB_LAYOUT_KEY     "ztb:layout"
#define ZTB_LAYOUT_VERSION "2"

/*
 * 0 if Redis holds the tagged layout: at once when ZTB_LAYOUT_KEY says so;
 * else, on a single Redis or Sentinel master (cluster == 0), after moving
 * an earlier layout's keys in one atomic script (logged
 * redis.layout_migrated); on a Cluster after recording it. -1 with the
 * reason and the fix in err when Redis cannot be read or the move failed
 * (the broker is then not ready: revocations under the old names would not
 * be in force).
 */
int store_layout_check(int cluster, char *err, size_t errcap);

#endif /* ZTB_BROKER_STORE_MIGRATE_H */

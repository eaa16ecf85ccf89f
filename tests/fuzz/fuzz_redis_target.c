/*
 * fuzz_redis_target.c - the Redis URL parser on arbitrary text.
 *
 * Checks, beyond memory safety: a refused URL leaves no password behind and
 * its message never holds the password given; an accepted one has a host or
 * an absolute socket path (never both), a port in 1-65535 and a database in
 * 0-15, and its description does not depend on the password.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/redis_target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *url = malloc(size + 1);
    if (url == NULL)
        abort();
    memcpy(url, data, size);
    url[size] = '\0';
    struct redis_target t;
    char err[256], d[512];
    if (redis_target_parse(url, 0, &t, err, sizeof(err)) != ZTB_OK) {
        if (t.password[0] != '\0' || t.sentinel_password[0] != '\0')
            abort();
    } else {
        /* exactly one of: a host, a socket path, sentinels, Cluster seeds */
        if ((t.host[0] != '\0') + (t.path[0] != '\0') + (t.nsentinels > 0) + (t.nseeds > 0) != 1)
            abort();
        if (t.nseeds > REDIS_TARGET_MAX_SEEDS || (t.nseeds > 0 && t.db != 0))
            abort();
        for (size_t i = 0; i < t.nseeds; i++)
            if (t.seeds[i].host[0] == '\0' || t.seeds[i].port < 1 || t.seeds[i].port > 65535)
                abort();
        if (t.nsentinels > REDIS_TARGET_MAX_SENTINELS ||
            (t.nsentinels > 0) != (t.master_name[0] != '\0'))
            abort();
        for (size_t i = 0; i < t.nsentinels; i++)
            if (t.sentinels[i].host[0] == '\0' || t.sentinels[i].port < 1 ||
                t.sentinels[i].port > 65535)
                abort();
        if (t.path[0] != '\0' && t.path[0] != '/')
            abort();
        if (t.port < 1 || t.port > 65535 || t.db < 0 || t.db > 15)
            abort();
        /* the description does not depend on the password at all */
        char d2[512];
        redis_target_describe(&t, d, sizeof(d));
        redis_target_wipe(&t);
        redis_target_describe(&t, d2, sizeof(d2));
        if (strcmp(d, d2) != 0 || t.sentinel_password[0] != '\0')
            abort();
    }
    free(url);
    return 0;
}

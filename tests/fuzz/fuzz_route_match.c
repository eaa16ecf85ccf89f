/*
 * fuzz_route_match.c - route_table_match (GET /v1/authorize) on arbitrary
 * request targets. Checks, beyond memory safety: a match names a resource
 * built only from the route's literals and unreserved characters (never a
 * '%', '/' beyond the template's, or a dot segment), and the input's path
 * (before any query) has no empty or dot segment.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/route_table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char doc[] =
    "{\"routes\": [{\"method\": \"POST\", \"path\": \"/refunds/{id}\", \"audience\": \"p\","
    " \"action\": \"p:r\", \"resource\": \"orders/{id}\"},"
    " {\"method\": \"POST\", \"path\": \"/a/{x}/b/{y}\", \"audience\": \"p\","
    " \"action\": \"p:r\", \"resource\": \"{x}:{y}\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct route_table *t;
    char why[200];
    if (t == NULL && route_table_parse(doc, sizeof(doc) - 1, &t, why, sizeof(why)) != ZTB_OK)
        abort();
    char *uri = malloc(size + 1);
    if (uri == NULL)
        return 0;
    memcpy(uri, data, size);
    uri[size] = '\0';
    struct route_need n;
    if (route_table_match(t, "POST", uri, &n) == ZTB_OK) {
        char *q = strchr(uri, '?');
        if (q != NULL)
            *q = '\0'; /* the checks below are on the path */
        size_t slashes = 0;
        for (const char *p = n.resource; *p; p++)
            slashes += *p == '/';
        if (strchr(n.resource, '%') != NULL || slashes > 1 || strstr(uri, "//") != NULL ||
            strstr(uri, "/./") != NULL || strstr(uri, "/../") != NULL)
            abort();
        if (n.route == 0 && slashes != 1)
            abort();
        if (n.route == 1 && slashes != 0)
            abort();
    }
    free(uri);
    return 0;
}

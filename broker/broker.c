/*
 * broker.c - the one broker instance that handlers share (see broker.h).
 * main.c fills it at start-up before any thread exists; afterwards handlers
 * only read it, except for the atomic fields.
 */
#include <malloc.h>
#include <stdlib.h>

#include <jansson.h>

#include "broker/broker.h"
#include "common/secret.h"

struct broker g_broker;

/* jansson frees through this: every JSON value the broker drops is wiped
 * first (request bodies and responses hold assertions, tokens, join tokens).
 * malloc_usable_size gives the block's real size, so nothing is missed. */
static void *json_alloc(size_t n)
{
    return malloc(n);
}

static void json_free_wiped(void *p)
{
    if (p != NULL) {
        ztb_wipe(p, malloc_usable_size(p));
        free(p);
    }
}

void broker_json_wipe_on_free(void)
{
    json_set_alloc_funcs(json_alloc, json_free_wiped);
}

/*
 * broker.c - the one broker instance that handlers share (see broker.h).
 * main.c fills it at start-up before any thread exists; afterwards handlers
 * only read it, except for the atomic fields.
 */
#include "broker/broker.h"
#include "common/secret.h"

struct broker g_broker;

/* every JSON value the broker drops is wiped first (request bodies and
 * responses hold assertions, tokens, join tokens) */
void broker_json_wipe_on_free(void)
{
    ztb_json_wipe_on_free();
}

/*
 * broker.c - the one broker instance that handlers share (see broker.h).
 * main.c fills it at start-up before any thread exists; afterwards handlers
 * only read it, except for the atomic fields.
 */
#include "broker/broker.h"

struct broker g_broker;

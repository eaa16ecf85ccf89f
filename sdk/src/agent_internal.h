/*
 * agent_internal.h - what other parts of libztb use of an agent handle.
 */
#ifndef ZTB_SDK_AGENT_INTERNAL_H
#define ZTB_SDK_AGENT_INTERNAL_H

#include <ztb/agent.h>

/*
 * Ask the broker's /v1/introspect about token, authenticated as agent a (its
 * session). *active is the answer. UNAVAILABLE/TIMEOUT/HTTP when the broker
 * cannot answer, INVALID_CLIENT when it does not accept the agent.
 * Thread-safe; blocks for the round trip.
 */
ztb_err agent_introspect(ztb_agent *a, const char *token, int *active);

#endif /* ZTB_SDK_AGENT_INTERNAL_H */

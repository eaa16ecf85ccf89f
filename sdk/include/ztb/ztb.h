/*
 * ztb/ztb.h - libztb, the ztb SDK for agents and API gateways.
 *
 * Include this one header. Everything libztb exports is declared in
 * <ztb/...> headers and prefixed ztb_; nothing else is visible:
 *
 *   <ztb/version.h>   ZTB_VERSION_MAJOR/MINOR/PATCH, ZTB_VERSION_STRING: the
 *                     version compiled against (ztb_version(): the one running)
 *   <ztb/error.h>     the stable error codes, ztb_strerror()
 *   <ztb/agent.h>     agents: enroll, then one token per action (ztb_agent_token)
 *   <ztb/verifier.h>  gateways: verify a token for a request (ztb_verify)
 *   <ztb/resource.h>  gateways and MCP servers: protected resource metadata
 *                     (RFC 9728), reading Authorization, refusing with a challenge
 *
 *   #include <ztb/ztb.h>
 *   cc app.c $(pkg-config --cflags --libs ztb)
 */
#ifndef ZTB_ZTB_H
#define ZTB_ZTB_H

#include <ztb/export.h>
#include <ztb/version.h>
#include <ztb/error.h>
#include <ztb/agent.h>
#include <ztb/verifier.h>
#include <ztb/resource.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The version of the library the program runs with, e.g. "0.1.0" (static
 * storage). ZTB_VERSION_STRING is the one it was compiled against.
 */
ZTB_API const char *ztb_version(void);

#ifdef __cplusplus
}
#endif

#endif /* ZTB_ZTB_H */

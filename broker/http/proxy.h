/*
 * proxy.h - the client's address behind trusted load balancers.
 *
 * With --trusted-proxy CIDR[,CIDR...] (repeatable), a request whose TCP peer
 * lies in one of those networks may name the client in X-Forwarded-For; the
 * client is the rightmost address of that list that is not itself a
 * trusted proxy (each proxy appends the address it saw, so everything to
 * the left of the first untrusted hop was written by the client and is
 * worth nothing). From a peer that is not a trusted proxy the header is
 * ignored: the peer is the client. A trusted peer's header that is
 * malformed (or sent twice) gives no address at all, so `source_ip`
 * conditions fail closed rather than match the proxy's own network.
 */
#ifndef ZTB_BROKER_HTTP_PROXY_H
#define ZTB_BROKER_HTTP_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

/* Most networks in the list. */
#define TRUSTED_PROXY_MAX 32

/*
 * Set the trusted networks from list ("10.0.0.0/8,fd00::/8,192.0.2.7": CIDRs
 * or single addresses, comma-separated; "" none). Process-wide; call before
 * serving. INVALID_ARG with the bad entry named in err.
 */
ztb_err trusted_proxies_set(const char *list, char *err, size_t errcap);

/* 1 if any network is trusted. */
int trusted_proxies_any(void);

/*
 * The client's address for a request from peer (family 4 or 6, addr; family
 * 0: unknown) with X-Forwarded-For value xff (NULL: absent; xff_twice: the
 * header was sent more than once). Writes family (0: unknown) and addr.
 */
void trusted_proxies_client(uint8_t peer_family, const uint8_t peer_addr[16], const char *xff,
                            int xff_twice, uint8_t *family, uint8_t addr[16]);

#endif /* ZTB_BROKER_HTTP_PROXY_H */

/*
 * proxy.c - X-Forwarded-For from trusted proxies only (see proxy.h).
 *
 * The list is walked from the right, one comma-separated entry at a time,
 * each parsed as a bare IPv4 or IPv6 address (policy_ip_parse: IPv4-mapped
 * IPv6 becomes IPv4). Must never: believe the header from an untrusted
 * peer, or fall back to the proxy's own address when the header is bad.
 */
#include <stdio.h>
#include <string.h>

#include "broker/http/proxy.h"
#include "policy/cond.h"

static struct policy_cidr nets[TRUSTED_PROXY_MAX];
static size_t n_nets;

ztb_err trusted_proxies_set(const char *list, char *err, size_t errcap)
{
    n_nets = 0;
    const char *p = list ? list : "";
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char one[64];
        while (n > 0 && *p == ' ') {
            p++;
            n--;
        }
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (n == 0 || n >= sizeof(one) || n_nets == TRUSTED_PROXY_MAX) {
            snprintf(err, errcap,
                     n_nets == TRUSTED_PROXY_MAX ? "trusted_proxy: more than 32 networks"
                                                 : "trusted_proxy: an empty or over-long entry");
            n_nets = 0;
            return ZTB_ERR_INVALID_ARG;
        }
        memcpy(one, p, n);
        one[n] = '\0';
        if (policy_parse_cidr(one, &nets[n_nets]) != ZTB_OK) {
            snprintf(err, errcap,
                     "trusted_proxy: '%s' is not a network (e.g. 10.0.0.0/8, fd00::/8 or one "
                     "address; host bits zero)",
                     one);
            n_nets = 0;
            return ZTB_ERR_INVALID_ARG;
        }
        n_nets++;
        p = comma ? comma + 1 : p + n;
    }
    return ZTB_OK;
}

int trusted_proxies_any(void)
{
    return n_nets > 0;
}

static int trusted(const policy_ip *ip)
{
    for (size_t i = 0; i < n_nets; i++)
        if (policy_cidr_contains(&nets[i], ip))
            return 1;
    return 0;
}

/* The peer, normalised the way policy_ip_parse normalises (mapped IPv4). */
static policy_ip peer_ip(uint8_t family, const uint8_t addr[16])
{
    policy_ip ip = {0};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == 6 && memcmp(addr, mapped, 12) == 0) {
        ip.family = 4;
        memcpy(ip.addr, addr + 12, 4);
    } else if (family == 4 || family == 6) {
        ip.family = family;
        memcpy(ip.addr, addr, family == 4 ? 4 : 16);
    }
    return ip;
}

void trusted_proxies_client(uint8_t peer_family, const uint8_t peer_addr[16], const char *xff,
                            int xff_twice, uint8_t *family, uint8_t addr[16])
{
    *family = peer_family;
    memcpy(addr, peer_addr, 16);
    policy_ip hop = peer_ip(peer_family, peer_addr);
    if (n_nets == 0 || hop.family == 0 || !trusted(&hop))
        return; /* the peer is the client: its header means nothing */
    if (xff == NULL && !xff_twice)
        return; /* a trusted proxy that forwarded nothing is the client */
    *family = 0;
    memset(addr, 0, 16);
    if (xff_twice || xff == NULL)
        return;
    size_t end = strlen(xff);
    if (end > 4096)
        return;
    for (;;) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        size_t a = start, b = end;
        while (a < b && (xff[a] == ' ' || xff[a] == '\t'))
            a++;
        while (b > a && (xff[b - 1] == ' ' || xff[b - 1] == '\t'))
            b--;
        char one[64];
        policy_ip ip;
        if (b == a || b - a >= sizeof(one))
            return; /* malformed: no address */
        memcpy(one, xff + a, b - a);
        one[b - a] = '\0';
        if (policy_ip_parse(one, &ip) != ZTB_OK)
            return;
        if (!trusted(&ip) || start == 0) {
            /* the first untrusted hop from the right (or the leftmost) */
            *family = ip.family;
            memcpy(addr, ip.addr, 16);
            return;
        }
        end = start - 1; /* before the comma */
    }
}

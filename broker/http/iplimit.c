/*
 * iplimit.c - per-address GCRA in a fixed table (see iplimit.h).
 *
 * An address is a 16-byte key (IPv4 as ::ffff:a.b.c.d, IPv6 cut to its /64).
 * Its bucket of IPLIMIT_WAYS entries is chosen by a hash keyed with 128
 * random bits; a lookup scans those entries only. Entries hold the GCRA
 * theoretical arrival time (TAT) in µs.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/http/iplimit.h"
#include "common/guard.h"
#include "common/secret.h"

#define IPLIMIT_WAYS 4

struct ip_entry {
    uint8_t addr[16];
    int64_t tat; /* 0: empty */
};

struct iplimit {
    pthread_mutex_t mu;
    int64_t interval_us; /* 0: no limit */
    int64_t burst;
    size_t nbuckets; /* power of two */
    uint64_t k0, k1; /* hash key */
    struct ip_entry *e;
};

int64_t iplimit_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

ztb_err iplimit_new(unsigned rate, unsigned burst, size_t slots, struct iplimit **out)
{
    *out = NULL;
    struct iplimit *l = calloc(1, sizeof(*l));
    ZTB_ENSURE(l != NULL, ZTB_ERR_NOMEM);
    size_t nb = 1;
    while (nb * IPLIMIT_WAYS < slots && nb < ((size_t)1 << 24))
        nb <<= 1;
    l->nbuckets = nb;
    l->interval_us = rate ? 1000000 / (int64_t)rate : 0;
    if (rate && l->interval_us == 0)
        l->interval_us = 1;
    l->burst = burst ? burst : (rate ? rate : 1);
    l->e = calloc(nb * IPLIMIT_WAYS, sizeof(*l->e));
    uint64_t k[2];
    if (l->e == NULL || ztb_random(k, sizeof(k)) != ZTB_OK ||
        pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l->e);
        free(l);
        return ZTB_ERR_NOMEM;
    }
    l->k0 = k[0];
    l->k1 = k[1];
    *out = l;
    return ZTB_OK;
}

void iplimit_free(struct iplimit *l)
{
    if (l == NULL)
        return;
    pthread_mutex_destroy(&l->mu);
    free(l->e);
    free(l);
}

/* The 16-byte key of peer; 0 if it is not an IP address. */
static int addr_key(const struct sockaddr *peer, uint8_t key[16])
{
    memset(key, 0, 16);
    if (peer == NULL)
        return 0;
    if (peer->sa_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)(const void *)peer)->sin_addr, 4);
        return 1;
    }
    if (peer->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr.s6_addr;
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        memcpy(key, a, memcmp(a, v4mapped, 12) == 0 ? 16 : 8); /* v4-mapped: the address */
        return 1;
    }
    return 0;
}

/* A keyed mix of the key's two halves (splitmix64 finaliser). */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static size_t bucket_of(const struct iplimit *l, const uint8_t key[16])
{
    uint64_t a, b;
    memcpy(&a, key, 8);
    memcpy(&b, key + 8, 8);
    return (size_t)(mix(mix(a ^ l->k0) ^ b ^ l->k1) & (l->nbuckets - 1));
}

int iplimit_take(struct iplimit *l, const struct sockaddr *peer, int64_t now_us,
                 uint32_t *retry_after_ms)
{
    *retry_after_ms = 0;
    uint8_t key[16];
    if (l == NULL || l->interval_us == 0 || !addr_key(peer, key))
        return 1;
    struct ip_entry *set = &l->e[bucket_of(l, key) * IPLIMIT_WAYS];
    int allowed = 1;
    pthread_mutex_lock(&l->mu);
    struct ip_entry *slot = NULL, *victim = &set[0];
    for (size_t i = 0; i < IPLIMIT_WAYS; i++) {
        if (set[i].tat != 0 && memcmp(set[i].addr, key, 16) == 0) {
            slot = &set[i];
            break;
        }
        if (set[i].tat < victim->tat)
            victim = &set[i];
    }
    if (slot == NULL) {
        /* empty (tat 0), or the one with the fullest budget; a new address
         * starts with a full budget, so its first request always passes and
         * the slot never stays looking empty */
        slot = victim;
        memcpy(slot->addr, key, 16);
        slot->tat = 0;
    }
    int64_t tat = slot->tat > now_us ? slot->tat : now_us;
    int64_t next = tat + l->interval_us;
    int64_t at = next - l->burst * l->interval_us;
    if (at > now_us) {
        allowed = 0;
        int64_t ms = (at - now_us + 999) / 1000;
        *retry_after_ms = ms < 1 ? 1 : ms > 86400000 ? 86400000 : (uint32_t)ms;
    } else {
        slot->tat = next;
    }
    pthread_mutex_unlock(&l->mu);
    return allowed;
}

/*
 * redis_cluster.c - the slot function, the slot map and routed commands
 * for Redis Cluster (see redis_cluster.h).
 *
 * The slot map comes from CLUSTER SLOTS (Redis 3.0 and later; the reply
 * lists [start, end, [host, port, id], replicas...] per range), asked of a
 * node this handle is connected to, else of each seed and known node in
 * turn. A node that reports an empty host ("?" or "" when it does not know
 * its own address) is reached at the address the map was read from.
 * Redirections are parsed from "MOVED <slot> <host>:<port>" and
 * "ASK <slot> <host>:<port>" (the port after the last ':', so an IPv6
 * address without brackets is read whole).
 *
 * Must never: send a command again after it failed in transport, follow
 * redirections without bound, or read past the bytes of an encoded
 * command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/redis_cluster.h"

/* CRC16-CCITT (XMODEM): polynomial 0x1021, initial 0, as the Redis Cluster
 * specification defines it for key slots. */
static uint16_t crc16(const char *buf, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)(unsigned char)buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

unsigned redis_key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open != NULL) {
        size_t rest = len - (size_t)(open + 1 - key);
        const char *close = memchr(open + 1, '}', rest);
        if (close != NULL && close > open + 1)
            return crc16(open + 1, (size_t)(close - open - 1)) & (REDIS_CLUSTER_SLOTS - 1);
    }
    return crc16(key, len) & (REDIS_CLUSTER_SLOTS - 1);
}

/* Read "<c><decimal>\r\n" at *p (within end); -1 if it is not there. */
static long long resp_number(const char **p, const char *end, char c)
{
    const char *s = *p;
    if (s >= end || *s != c)
        return -1;
    s++;
    long long v = 0;
    int digits = 0;
    while (s < end && *s >= '0' && *s <= '9' && digits < 12) {
        v = v * 10 + (*s - '0');
        s++;
        digits++;
    }
    if (digits == 0 || end - s < 2 || s[0] != '\r' || s[1] != '\n')
        return -1;
    *p = s + 2;
    return v;
}

/* Commands that name no key (the first argument is not one). */
static const char *const keyless[] = {
    "PING",   "INFO",     "CONFIG",    "WAIT",        "TIME",   "ROLE",     "CLUSTER",
    "SCRIPT", "PUBLISH",  "SUBSCRIBE", "AUTH",        "SELECT", "ASKING",   "CLIENT",
    "HELLO",  "COMMAND",  "MULTI",     "EXEC",        "DBSIZE", "FUNCTION", "ECHO",
    "ACL",    "READONLY", "READWRITE", "UNSUBSCRIBE",
};

int redis_command_slot(const char *cmd, size_t len)
{
    const char *p = cmd, *end = cmd + len;
    long long argc = resp_number(&p, end, '*');
    if (argc < 1 || argc > 1024)
        return -2;
    const char *arg[4] = {0};
    size_t alen[4] = {0};
    for (long long i = 0; i < argc; i++) {
        long long n = resp_number(&p, end, '$');
        if (n < 0 || end - p < n + 2 || p[n] != '\r' || p[n + 1] != '\n')
            return -2;
        if (i < 4) {
            arg[i] = p;
            alen[i] = (size_t)n;
        }
        p += n + 2;
    }
    if (p != end)
        return -2;
    char name[16];
    if (alen[0] >= sizeof(name))
        return argc > 1 ? (int)redis_key_slot(arg[1], alen[1]) : -1;
    memcpy(name, arg[0], alen[0]);
    name[alen[0]] = '\0';
    if (strcasecmp(name, "EVAL") == 0 || strcasecmp(name, "EVALSHA") == 0 ||
        strcasecmp(name, "EVAL_RO") == 0 || strcasecmp(name, "EVALSHA_RO") == 0 ||
        strcasecmp(name, "FCALL") == 0 || strcasecmp(name, "FCALL_RO") == 0) {
        if (argc < 4 || alen[2] == 0 || alen[2] > 5 || arg[2][0] == '0')
            return -1;
        return (int)redis_key_slot(arg[3], alen[3]);
    }
    for (size_t i = 0; i < sizeof(keyless) / sizeof(keyless[0]); i++)
        if (strcasecmp(name, keyless[i]) == 0)
            return -1;
    return argc > 1 ? (int)redis_key_slot(arg[1], alen[1]) : -1;
}

/* ---- the handle ---------------------------------------------------------- */

struct redis_cluster *redis_cluster_new(const struct redis_target *t,
                                        void (*note)(enum redis_error_kind, void *), void *arg)
{
    struct redis_cluster *cl = calloc(1, sizeof(*cl));
    if (cl == NULL)
        return NULL;
    cl->t = t;
    cl->last = -1;
    cl->note = note;
    cl->note_arg = arg;
    return cl;
}

static void drop_links(struct redis_cluster *cl)
{
    for (size_t i = 0; i < cl->nnodes; i++) {
        redis_link_free(cl->nodes[i].link);
        cl->nodes[i].link = NULL;
    }
}

void redis_cluster_free(struct redis_cluster *cl)
{
    if (cl == NULL)
        return;
    drop_links(cl);
    free(cl);
}

void redis_cluster_reset(struct redis_cluster *cl)
{
    drop_links(cl);
    cl->nnodes = 0;
    cl->mapped = 0;
    cl->last = -1;
    memset(cl->slot_node, 0, sizeof(cl->slot_node));
}

/* cl->errstr = "host:port: why" for a node's transport failure (a long
 * host name or reason is cut: it is a message). */
static void node_error(struct redis_cluster *cl, int node, const char *why)
{
    if (snprintf(cl->errstr, sizeof(cl->errstr), "%s:%d: %s", cl->nodes[node].host,
                 cl->nodes[node].port, why) < 0)
        cl->errstr[0] = '\0';
}

static void note(struct redis_cluster *cl, enum redis_error_kind k)
{
    if (cl->note != NULL)
        cl->note(k, cl->note_arg);
}

/* The index of node host:port, added if new; -1 if the table is full. */
static int node_index(struct redis_cluster *cl, const char *host, size_t hl, int port)
{
    for (size_t i = 0; i < cl->nnodes; i++)
        if (cl->nodes[i].port == port && strlen(cl->nodes[i].host) == hl &&
            memcmp(cl->nodes[i].host, host, hl) == 0)
            return (int)i;
    if (cl->nnodes == REDIS_CLUSTER_MAX_NODES || hl == 0 || hl >= sizeof(cl->nodes[0].host))
        return -1;
    struct redis_cluster_node *n = &cl->nodes[cl->nnodes];
    memcpy(n->host, host, hl);
    n->host[hl] = '\0';
    n->port = port;
    n->link = NULL;
    n->replicas = 0;
    return (int)cl->nnodes++;
}

struct redis_link *redis_cluster_link_of(struct redis_cluster *cl, int node)
{
    if (node < 0 || (size_t)node >= cl->nnodes)
        return NULL;
    struct redis_cluster_node *n = &cl->nodes[node];
    if (n->link != NULL && n->link->err) {
        redis_link_free(n->link);
        n->link = NULL;
    }
    if (n->link == NULL && redis_target_connect_node(cl->t, n->host, n->port, &n->link, cl->errstr,
                                                     sizeof(cl->errstr)) != ZTB_OK) {
        n->link = NULL;
        cl->fail_kind = REDIS_EK_CONNECTION;
    }
    return n->link;
}

/* Apply a CLUSTER SLOTS reply read from host (the address asked); 1 if it
 * mapped any slot. */
static int apply_slots(struct redis_cluster *cl, const redisReply *r, const char *asked)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return 0;
    uint8_t map[REDIS_CLUSTER_SLOTS] = {0};
    int reps[REDIS_CLUSTER_MAX_NODES] = {0};
    int any = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2)
            continue;
        const redisReply *m = e->element[2];
        if (m->element[0]->type != REDIS_REPLY_STRING || m->element[1]->type != REDIS_REPLY_INTEGER)
            continue;
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        if (lo < 0 || hi >= REDIS_CLUSTER_SLOTS || lo > hi)
            continue;
        const char *h = m->element[0]->str;
        size_t hl = m->element[0]->len;
        if (hl == 0 || (hl == 1 && h[0] == '?')) {
            h = asked;
            hl = strlen(asked);
        }
        int idx = node_index(cl, h, hl, (int)m->element[1]->integer);
        if (idx < 0)
            continue;
        for (long long s = lo; s <= hi; s++)
            map[s] = (uint8_t)(idx + 1);
        /* after [start, end, master]: one entry per replica that is not failed */
        if ((int)(e->elements - 3) > reps[idx])
            reps[idx] = (int)(e->elements - 3);
        any = 1;
    }
    if (any) {
        memcpy(cl->slot_node, map, sizeof(map));
        for (size_t i = 0; i < cl->nnodes; i++)
            cl->nodes[i].replicas = reps[i];
        cl->mapped = 1;
    }
    return any;
}

/* Ask one connection for the map; 1 if it was read. */
static int map_from(struct redis_cluster *cl, struct redis_link *l, const char *host)
{
    redisReply *r = redis_link_commandf(l, "CLUSTER SLOTS");
    int ok = apply_slots(cl, r, host);
    if (r != NULL && !ok)
        snprintf(cl->errstr, sizeof(cl->errstr), "CLUSTER SLOTS at %s: %s", host,
                 r->type == REDIS_REPLY_ERROR ? r->str : "no slots (is it a Cluster node?)");
    if (r != NULL)
        freeReplyObject(r);
    return ok;
}

/* Read the slot map: from a node already connected, else from each known
 * node and seed in turn. 1 if it was read. */
static int refresh(struct redis_cluster *cl)
{
    for (size_t i = 0; i < cl->nnodes; i++) {
        struct redis_link *l = cl->nodes[i].link;
        if (l != NULL && !l->err && map_from(cl, l, cl->nodes[i].host))
            return 1;
    }
    for (size_t i = 0; i < cl->nnodes; i++) {
        struct redis_link *l = redis_cluster_link_of(cl, (int)i);
        if (l != NULL && map_from(cl, l, cl->nodes[i].host))
            return 1;
    }
    for (size_t i = 0; i < cl->t->nseeds; i++) {
        struct redis_link *l = NULL;
        const struct redis_sentinel_addr *s = &cl->t->seeds[i];
        if (redis_target_connect_node(cl->t, s->host, s->port, &l, cl->errstr,
                                      sizeof(cl->errstr)) != ZTB_OK)
            continue;
        int ok = map_from(cl, l, s->host);
        redis_link_free(l);
        if (ok)
            return 1;
    }
    cl->fail_kind = REDIS_EK_CONNECTION;
    return 0;
}

/* The node serving slot (-1: any node, the last one used first). */
static int node_for(struct redis_cluster *cl, int slot)
{
    if (!cl->mapped && !refresh(cl))
        return -1;
    if (slot >= 0)
        return (int)cl->slot_node[slot] - 1;
    if (cl->last >= 0)
        return cl->last;
    for (size_t s = 0; s < REDIS_CLUSTER_SLOTS; s++)
        if (cl->slot_node[s] != 0)
            return (int)cl->slot_node[s] - 1;
    return -1;
}

/* "MOVED 3999 127.0.0.1:6381": the node it names (added if new), -1 if
 * the text is not one. from is the node that answered (for an empty host). */
static int redirect_target(struct redis_cluster *cl, const char *s, size_t n, int from)
{
    const char *sp = memchr(s, ' ', n);
    if (sp == NULL)
        return -1;
    const char *sp2 = memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s));
    if (sp2 == NULL)
        return -1;
    const char *addr = sp2 + 1;
    size_t al = n - (size_t)(addr - s);
    const char *colon = NULL;
    for (size_t i = 0; i < al; i++)
        if (addr[i] == ':')
            colon = addr + i;
    if (colon == NULL)
        return -1;
    long port = strtol(colon + 1, NULL, 10);
    if (port <= 0 || port > 65535)
        return -1;
    size_t hl = (size_t)(colon - addr);
    if (hl == 0 && from >= 0)
        return node_index(cl, cl->nodes[from].host, strlen(cl->nodes[from].host), (int)port);
    return node_index(cl, addr, hl, (int)port);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

redisReply *redis_cluster_command_raw(struct redis_cluster *cl, const char *raw, size_t len)
{
    int slot = redis_command_slot(raw, len);
    if (slot == -2) {
        snprintf(cl->errstr, sizeof(cl->errstr), "not one encoded command");
        cl->fail_kind = REDIS_EK_OTHER;
        return NULL;
    }
    int node = node_for(cl, slot);
    int asking = 0, redirects = 0, retries = 0, remapped = 0;
    for (;;) {
        if (node < 0) {
            if (remapped || !refresh(cl)) {
                if (cl->errstr[0] == '\0')
                    snprintf(cl->errstr, sizeof(cl->errstr), "no node serves slot %d", slot);
                cl->fail_kind = REDIS_EK_CONNECTION;
                return NULL;
            }
            remapped = 1;
            node = node_for(cl, slot);
            continue;
        }
        struct redis_link *l = redis_cluster_link_of(cl, node);
        if (l == NULL) {
            /* not sent: the map may be old (a failover); read it once more */
            if (remapped || !refresh(cl))
                return NULL;
            remapped = 1;
            node = node_for(cl, slot);
            continue;
        }
        redisReply *r = NULL;
        int ok = (!asking || redis_link_appendf(l, "ASKING") == REDIS_OK) &&
                 redis_link_append_raw(l, raw, len) == REDIS_OK;
        if (ok && asking) {
            ok = redis_link_get_reply(l, &r) == REDIS_OK && r != NULL;
            if (r != NULL)
                freeReplyObject(r);
            r = NULL;
        }
        if (ok)
            ok = redis_link_get_reply(l, &r) == REDIS_OK && r != NULL;
        if (!ok) {
            cl->fail_kind = redis_error_kind_of(l, NULL);
            node_error(cl, node, l->errstr[0] ? l->errstr : "no reply");
            redis_link_free(l);
            cl->nodes[node].link = NULL;
            return NULL;
        }
        enum redis_error_kind k = redis_error_kind_of(l, r);
        if (k == REDIS_EK_MOVED && redirects < REDIS_CLUSTER_MAX_REDIRECTS) {
            note(cl, k);
            int to = redirect_target(cl, r->str, r->len, node);
            if (to >= 0) {
                redirects++;
                asking = 0;
                /* the map changed: read it whole (many slots move at once) */
                if (!refresh(cl) && slot >= 0)
                    cl->slot_node[slot] = (uint8_t)(to + 1);
                node = slot >= 0 && cl->slot_node[slot] != 0 ? (int)cl->slot_node[slot] - 1 : to;
                freeReplyObject(r);
                continue;
            }
        } else if (k == REDIS_EK_ASK && !asking && redirects < REDIS_CLUSTER_MAX_REDIRECTS) {
            note(cl, k);
            int to = redirect_target(cl, r->str, r->len, node);
            if (to >= 0) {
                redirects++;
                asking = 1;
                node = to;
                freeReplyObject(r);
                continue;
            }
        } else if (k == REDIS_EK_TRYAGAIN && retries < 3) {
            note(cl, k);
            sleep_ms(2u << retries);
            retries++;
            freeReplyObject(r);
            continue;
        }
        cl->last = node;
        return r;
    }
}

redisReply *redis_cluster_command_argv(struct redis_cluster *cl, int argc, const char **argv,
                                       const size_t *lens)
{
    char *cmd = NULL;
    int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (n < 0) {
        snprintf(cl->errstr, sizeof(cl->errstr), "cannot format a command");
        cl->fail_kind = REDIS_EK_OTHER;
        return NULL;
    }
    redisReply *r = redis_cluster_command_raw(cl, cmd, (size_t)n);
    free(cmd);
    return r;
}

/* Free replies[0..n) and set them NULL. */
static void free_replies(redisReply **replies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (replies[i] != NULL)
            freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
}

int redis_cluster_pipeline_argv(struct redis_cluster *cl, size_t n, const int *argc,
                                const char *const *const *argv, const size_t *const *lens,
                                redisReply **replies)
{
    char *cmd[REDIS_CLUSTER_PIPELINE_MAX];
    int len[REDIS_CLUSTER_PIPELINE_MAX];
    int rv = -1, slot = -1, one_slot = n > 0 && n <= REDIS_CLUSTER_PIPELINE_MAX;
    size_t made = 0;
    for (size_t i = 0; i < n; i++)
        replies[i] = NULL;
    for (; made < n && made < REDIS_CLUSTER_PIPELINE_MAX; made++) {
        cmd[made] = NULL;
        len[made] =
            redisFormatCommandArgv(&cmd[made], argc[made], (const char **)argv[made], lens[made]);
        if (len[made] < 0) {
            snprintf(cl->errstr, sizeof(cl->errstr), "cannot format a command");
            cl->fail_kind = REDIS_EK_OTHER;
            goto out;
        }
        int s = redis_command_slot(cmd[made], (size_t)len[made]);
        if (s < 0 || (made > 0 && s != slot))
            one_slot = 0;
        slot = s;
    }
    int node = one_slot ? node_for(cl, slot) : -1;
    struct redis_link *l = node >= 0 ? redis_cluster_link_of(cl, node) : NULL;
    if (l == NULL) {
        /* several slots, or the map or the node is not at hand: one by one,
         * each routed (and the map read again) as a single command */
        for (size_t i = 0; i < n; i++) {
            if (i >= made)
                goto out;
            replies[i] = redis_cluster_command_raw(cl, cmd[i], (size_t)len[i]);
            if (replies[i] == NULL)
                goto out;
        }
        rv = 0;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (redis_link_append_raw(l, cmd[i], (size_t)len[i]) != REDIS_OK)
            break;
    }
    for (size_t i = 0; i < n; i++) {
        if (redis_link_get_reply(l, &replies[i]) != REDIS_OK || replies[i] == NULL) {
            replies[i] = NULL;
            cl->fail_kind = redis_error_kind_of(l, NULL);
            node_error(cl, node, l->errstr[0] ? l->errstr : "no reply");
            redis_link_free(l);
            cl->nodes[node].link = NULL;
            goto out;
        }
    }
    cl->last = node;
    /* a command the slot's owner did not run (it moved, is moving, or a
     * multi-key command met a resharding) goes again alone, routed */
    for (size_t i = 0; i < n; i++) {
        enum redis_error_kind k = redis_error_kind_of(l, replies[i]);
        if (k != REDIS_EK_MOVED && k != REDIS_EK_ASK && k != REDIS_EK_TRYAGAIN)
            continue;
        freeReplyObject(replies[i]);
        replies[i] = redis_cluster_command_raw(cl, cmd[i], (size_t)len[i]);
        if (replies[i] == NULL)
            goto out;
    }
    rv = 0;
out:
    for (size_t i = 0; i < made; i++)
        free(cmd[i]);
    if (rv != 0)
        free_replies(replies, n);
    return rv;
}

redisReply *redis_cluster_vcommandf(struct redis_cluster *cl, const char *fmt, va_list ap)
{
    char *cmd = NULL;
    int n = redisvFormatCommand(&cmd, fmt, ap);
    if (n < 0) {
        snprintf(cl->errstr, sizeof(cl->errstr), "cannot format a command");
        cl->fail_kind = REDIS_EK_OTHER;
        return NULL;
    }
    redisReply *r = redis_cluster_command_raw(cl, cmd, (size_t)n);
    free(cmd);
    return r;
}

redisReply *redis_cluster_commandf(struct redis_cluster *cl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redis_cluster_vcommandf(cl, fmt, ap);
    va_end(ap);
    return r;
}

struct redis_link *redis_cluster_last_link(struct redis_cluster *cl)
{
    return cl->last >= 0 ? cl->nodes[cl->last].link : NULL;
}

int redis_cluster_last_replicas(const struct redis_cluster *cl)
{
    return cl->last >= 0 ? cl->nodes[cl->last].replicas : 0;
}

size_t redis_cluster_masters(struct redis_cluster *cl, int *out, size_t cap)
{
    if (!cl->mapped && !refresh(cl))
        return 0;
    int seen[REDIS_CLUSTER_MAX_NODES] = {0};
    size_t n = 0;
    for (size_t s = 0; s < REDIS_CLUSTER_SLOTS && n < cap; s++) {
        int i = (int)cl->slot_node[s] - 1;
        if (i >= 0 && !seen[i]) {
            seen[i] = 1;
            out[n++] = i;
        }
    }
    return n;
}

ztb_err redis_cluster_connect_key(const struct redis_target *t, const char *key,
                                  struct redis_link **out, char *err, size_t errcap)
{
    *out = NULL;
    if (t->nseeds == 0)
        return redis_target_connect(t, out, err, errcap);
    struct redis_cluster *cl = redis_cluster_new(t, NULL, NULL);
    if (cl == NULL)
        return ZTB_ERR_NOMEM;
    int node = node_for(cl, (int)redis_key_slot(key, strlen(key)));
    struct redis_link *l = node >= 0 ? redis_cluster_link_of(cl, node) : NULL;
    if (l == NULL) {
        if (err != NULL && errcap > 0)
            snprintf(err, errcap, "Cluster: %s",
                     cl->errstr[0] ? cl->errstr : "no node serves the slot");
        redis_cluster_free(cl);
        return ZTB_ERR_UNAVAILABLE;
    }
    cl->nodes[node].link = NULL; /* the caller's now */
    redis_cluster_free(cl);
    *out = l;
    return ZTB_OK;
}

/*
 * revfeed.c - the revocation feed thread (see revfeed.h).
 *
 * The thread runs sessions: connect, read the sequence, SUBSCRIBE, load the
 * sorted set into a fresh revset, swap it in, then poll the subscriber
 * socket (and a wake-up pipe for stopping) and apply events until something
 * fails. It is the only
 * writer of the state, so it may read the state without the lock and prepare
 * any big change (a larger jti table, a rebuilt one without expired entries,
 * a whole new load) before taking the write lock just for the swap: gateway
 * threads never wait on more than a pointer exchange or one small insert.
 *
 * What it must never do: report the state as live before a complete load,
 * keep answering past the grace after a loss, or block a gateway thread on
 * Redis.
 */
#define _GNU_SOURCE /* pipe2, pthread_rwlockattr_setkind_np */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/guard.h"
#include "sdk/src/clock.h"
#include "common/redis_cluster.h"
#include "sdk/src/revfeed.h"
#include "sdk/src/revset.h"
#include "sdk/src/sigpipe.h"
#include "wire/wire.h"

#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 5000
#define SWEEP_NAMES_MS   10000
#define REBUILD_JTIS_MS  60000
#define ZSCAN_COUNT      "1000"

struct revfeed {
    struct revfeed_opts o;
    pthread_rwlock_t lock; /* guards rs for readers; only the thread writes */
    struct revset *rs;
    pthread_t thread;
    int thread_started;
    int wake[2]; /* pipe: a byte means stop */
    _Atomic int stop;
    _Atomic int live;
    _Atomic int synced_once;
    _Atomic int64_t lost_at_ms;
    _Atomic int sub_fd; /* the subscriber socket, for revfeed_break_for_test */
    _Atomic uint64_t events, bad_events, syncs, gaps;
    int64_t last_seq;   /* the thread's: the last event sequence applied or loaded */
    int64_t loaded_seq; /* the thread's: the sequence the last load read */
    int64_t skip_floor; /* the thread's: only events above it may be skipped as loaded */
    _Atomic uint64_t evicted_before, refused_before; /* of states no longer in use */
    pthread_mutex_t start_mu;
    pthread_cond_t start_cv;
    char last_error[320];
};

static void note_error(struct revfeed *f, const char *what, const struct redis_link *c)
{
    pthread_mutex_lock(&f->start_mu);
    if (c != NULL && c->err != 0)
        snprintf(f->last_error, sizeof(f->last_error), "%s: %.190s", what, c->errstr);
    else
        snprintf(f->last_error, sizeof(f->last_error), "%s", what);
    pthread_mutex_unlock(&f->start_mu);
}

/* Why a connect failed (TLS, AUTH, refused...; never a password). */
static void note_connect_error(struct revfeed *f, const char *why)
{
    pthread_mutex_lock(&f->start_mu);
    snprintf(f->last_error, sizeof(f->last_error), "revocations: cannot connect to Redis: %.250s",
             why);
    pthread_mutex_unlock(&f->start_mu);
}

static void mark_lost(struct revfeed *f)
{
    if (atomic_exchange(&f->live, 0))
        atomic_store(&f->lost_at_ms, clock_mono_ms());
}

/* Apply one event to the shared state (the thread is the only writer). */
static ztb_err apply_shared(struct revfeed *f, const struct rev_event *ev)
{
    int64_t now = clock_now_s();
    struct revset *rs = f->rs;
    if (ev->kind == REV_JTI && idset_needs_grow(&rs->jtis)) {
        struct idset bigger;
        ZTB_GUARD(idset_rebuild(&rs->jtis, now, rs->jtis.count / 2 + 1, &bigger));
        pthread_rwlock_wrlock(&f->lock);
        idset_swap(&rs->jtis, &bigger);
        pthread_rwlock_unlock(&f->lock);
        idset_free(&bigger);
    }
    pthread_rwlock_wrlock(&f->lock);
    ztb_err rv = revset_apply(rs, ev, now);
    pthread_rwlock_unlock(&f->lock);
    return rv;
}

/* Parse and apply one message payload. Errors other than parse errors are fatal. */
static ztb_err on_message(struct revfeed *f, const char *p, size_t n, struct revset *target)
{
    struct rev_event ev;
    ztb_err rv = rev_event_parse(p, n, &ev);
    if (rv == ZTB_ERR_UNSUPPORTED)
        return ZTB_OK; /* a kind of event a later broker added */
    if (rv != ZTB_OK) {
        atomic_fetch_add(&f->bad_events, 1);
        return ZTB_OK; /* not ours to act on; counted for the operator */
    }
    if (target == NULL && ev.seq > 0) {
        /* a published event: already in the loaded state (published between
         * our SUBSCRIBE and the load), in step, or a gap; a sequence that
         * goes back after live events means Redis lost or reset it */
        if (ev.seq <= f->last_seq && f->last_seq == f->loaded_seq && ev.seq > f->skip_floor) {
            /* published after the SUBSCRIBE, before the load read the
             * sequence: in what was loaded. Those come in order, each above
             * the sequence read before the SUBSCRIBE; any other number at
             * or below the load's went back (Redis lost or reset it) */
            f->skip_floor = ev.seq;
            return ZTB_OK;
        }
        if (ev.seq != f->last_seq + 1) {
            char why[128];
            snprintf(why, sizeof(why),
                     "revocations: event %lld after %lld: events were missed; reloading",
                     (long long)ev.seq, (long long)f->last_seq);
            note_error(f, why, NULL);
            atomic_fetch_add(&f->gaps, 1);
            return ZTB_ERR_REVOCATION_STALE; /* ends the session: the next one reloads */
        }
        f->last_seq = ev.seq;
    }
    rv = target != NULL ? revset_apply(target, &ev, clock_now_s()) : apply_shared(f, &ev);
    if (rv == ZTB_OK)
        atomic_fetch_add(&f->events, 1);
    return rv;
}

/* The revocation sequence now (ZTB_WIRE_REV_SEQ_KEY; 0 if never set) into *seq. */
static ztb_err load_seq(struct revfeed *f, struct redis_link *c, int64_t *seq)
{
    redisReply *r = redis_link_commandf(c, "GET %s", ZTB_WIRE_REV_SEQ_KEY);
    ztb_err rv = ZTB_ERR_UNAVAILABLE;
    *seq = 0;
    if (r == NULL) {
        note_error(f, "revocations: GET of the sequence failed", c);
        return rv;
    }
    if (r->type == REDIS_REPLY_NIL) {
        rv = ZTB_OK;
    } else if (r->type == REDIS_REPLY_STRING && r->len > 0 && r->len < 20) {
        char *end = NULL;
        long long v = strtoll(r->str, &end, 10);
        if (end == r->str + r->len && v >= 0) {
            *seq = v;
            rv = ZTB_OK;
        }
    }
    if (rv != ZTB_OK)
        note_error(f, "revocations: unexpected reply for the sequence", NULL);
    freeReplyObject(r);
    return rv;
}

/* Load the whole sorted set into rs with ZSCAN. */
static ztb_err load(struct revfeed *f, struct revset *rs)
{
    struct redis_link *c = NULL;
    char why[256];
    /* on a Cluster, the master of the {rev} slot, which holds the set */
    ztb_err rv = redis_cluster_connect_key(&f->o.target, ZTB_WIRE_REV_ZSET, &c, why, sizeof(why));
    if (rv != ZTB_OK) {
        note_connect_error(f, why);
        return rv;
    }
    char cursor[32] = "0";
    redisReply *r = NULL;
    /* the sequence before the scan: every event up to it is in the set the
     * scan reads; later ones arrive on the subscription (made before) */
    int64_t seq = 0;
    ZTB_TRY(rv, load_seq(f, c, &seq));
    f->last_seq = f->loaded_seq = seq;
    do {
        r = redis_link_commandf(c, "ZSCAN %s %s COUNT %s", ZTB_WIRE_REV_ZSET, cursor, ZSCAN_COUNT);
        if (r == NULL) {
            note_error(f, "revocations: ZSCAN failed", c);
            rv = ZTB_ERR_UNAVAILABLE;
            goto out;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof(cursor) ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            note_error(f, "revocations: unexpected ZSCAN reply", NULL);
            rv = ZTB_ERR_UNAVAILABLE;
            goto out;
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = '\0';
        const redisReply *items = r->element[1];
        for (size_t i = 0; i + 1 < items->elements; i += 2) {
            const redisReply *m = items->element[i];
            if (m->type != REDIS_REPLY_STRING)
                continue;
            ZTB_TRY(rv, on_message(f, m->str, m->len, rs));
        }
        freeReplyObject(r);
        r = NULL;
    } while (strcmp(cursor, "0") != 0 && !atomic_load(&f->stop));
out:
    if (r != NULL)
        freeReplyObject(r);
    redis_link_free(c);
    return rv;
}

/* One reply on the subscriber connection: a message, a pong, or a confirmation. */
static ztb_err on_reply(struct revfeed *f, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return ZTB_ERR_MALFORMED;
    const redisReply *kind = r->element[0];
    /* "message" (SUBSCRIBE) or "smessage" (SSUBSCRIBE, a Cluster) */
    int sharded = kind->len == 8 && memcmp(kind->str, "smessage", 8) == 0;
    if (((kind->len == 7 && memcmp(kind->str, "message", 7) == 0) || sharded) && r->elements == 3 &&
        r->element[2]->type == REDIS_REPLY_STRING)
        return on_message(f, r->element[2]->str, r->element[2]->len, NULL);
    /* A Cluster node that no longer serves the {rev} slot (it moved, or
     * the node was demoted) drops its sharded subscribers with
     * "sunsubscribe": announcements would go elsewhere from now on, so the
     * session ends and the next one reloads from the slot's new master. */
    if (kind->len == 12 && memcmp(kind->str, "sunsubscribe", 12) == 0)
        return ZTB_ERR_REVOCATION_STALE;
    return ZTB_OK; /* "pong", "subscribe", "ssubscribe": only proof of life */
}

/* Handle every reply already read from the socket. ZTB_OK unless one is bad. */
static ztb_err drain(struct revfeed *f, struct redis_link *sub)
{
    redisReply *vr = NULL;
    ztb_err rv = ZTB_OK;
    while (rv == ZTB_OK && redis_link_next_reply(sub, &vr) == REDIS_OK && vr != NULL) {
        rv = on_reply(f, vr);
        freeReplyObject(vr);
        vr = NULL;
    }
    return rv == ZTB_OK && sub->err == 0 ? ZTB_OK : ZTB_ERR_MALFORMED;
}

/* Drop expired entries: names in place, the jti table by a rebuild swapped in. */
static ztb_err sweep(struct revfeed *f, int rebuild_jtis)
{
    int64_t now = clock_now_s();
    pthread_rwlock_wrlock(&f->lock);
    revset_sweep_names(f->rs, now);
    pthread_rwlock_unlock(&f->lock);
    if (!rebuild_jtis || f->rs->jtis.count == 0)
        return ZTB_OK;
    struct idset fresh;
    ZTB_GUARD(idset_rebuild(&f->rs->jtis, now, 0, &fresh));
    pthread_rwlock_wrlock(&f->lock);
    idset_swap(&f->rs->jtis, &fresh);
    pthread_rwlock_unlock(&f->lock);
    idset_free(&fresh);
    return ZTB_OK;
}

static int wait_readable(struct revfeed *f, int fd, int timeout_ms, int *fd_ready)
{
    struct pollfd p[2] = {{.fd = f->wake[0], .events = POLLIN}, {.fd = fd, .events = POLLIN}};
    int n = poll(p, fd >= 0 ? 2 : 1, timeout_ms);
    if (fd_ready != NULL)
        *fd_ready = n > 0 && fd >= 0 && p[1].revents != 0;
    return n > 0 && p[0].revents != 0; /* asked to stop */
}

/* Send PING on the subscriber connection. */
static ztb_err ping(struct redis_link *c)
{
    if (redis_link_appendf(c, "PING") != REDIS_OK || redis_link_flush(c) != REDIS_OK)
        return ZTB_ERR_UNAVAILABLE;
    return ZTB_OK;
}

/* Subscribe, load, serve events until an error or stop. */
static void session(struct revfeed *f)
{
    struct redis_link *sub = NULL;
    redisReply *r = NULL;
    struct revset *fresh = NULL;
    char why[256];
    if (redis_cluster_connect_key(&f->o.target, ZTB_WIRE_REV_ZSET, &sub, why, sizeof(why)) !=
        ZTB_OK) {
        note_connect_error(f, why);
        return;
    }
    /* the sequence before the SUBSCRIBE: every message the subscription
     * brings is numbered above it, unless the sequence went back */
    if (load_seq(f, sub, &f->skip_floor) != ZTB_OK)
        goto out;
    /* a Cluster announces on the sharded channel of the {rev} slot, served
     * by the node this connection reached (redis_cluster_connect_key) */
    if (f->o.target.nseeds > 0)
        r = redis_link_commandf(sub, "SSUBSCRIBE %s", ZTB_WIRE_REV_SCHANNEL);
    else
        r = redis_link_commandf(sub, "SUBSCRIBE %s", ZTB_WIRE_REV_CHANNEL);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        note_error(f, "revocations: SUBSCRIBE failed", sub);
        goto out;
    }
    freeReplyObject(r);
    r = NULL;
    /* subscribed: events published from now on wait in the socket until loaded */
    fresh = malloc(sizeof(*fresh));
    if (fresh == NULL)
        goto out;
    revset_init(fresh, f->o.skew_s, f->o.max_entries);
    if (load(f, fresh) != ZTB_OK) {
        if (fresh->full)
            note_error(f, "revocations: more live revocations than the verifier's cap", NULL);
        goto out;
    }
    pthread_rwlock_wrlock(&f->lock);
    struct revset *old = f->rs;
    f->rs = fresh;
    pthread_rwlock_unlock(&f->lock);
    fresh = old; /* freed below; its counters are kept */
    atomic_fetch_add(&f->syncs, 1);
    atomic_store(&f->sub_fd, sub->fd);
    atomic_store(&f->live, 1);
    pthread_mutex_lock(&f->start_mu);
    atomic_store(&f->synced_once, 1);
    pthread_cond_broadcast(&f->start_cv);
    pthread_mutex_unlock(&f->start_mu);

    if (drain(f, sub) != ZTB_OK) { /* events that came with the SUBSCRIBE reply */
        note_error(f, "revocations: cannot apply an event", sub);
        goto out;
    }
    int64_t now = clock_mono_ms();
    int64_t heard = now, next_ping = now + REVFEED_PING_MS;
    int64_t next_sweep = now + SWEEP_NAMES_MS, next_rebuild = now + REBUILD_JTIS_MS;
    for (;;) {
        now = clock_mono_ms();
        int64_t wait = next_ping - now;
        if (wait < 0)
            wait = 0;
        int ready = 0;
        if (wait_readable(f, sub->fd, (int)wait, &ready) || atomic_load(&f->stop))
            break;
        now = clock_mono_ms();
        if (ready) {
            if (redis_link_read(sub) != REDIS_OK) {
                note_error(f, "revocations: subscriber connection lost", sub);
                break;
            }
            heard = now;
            if (drain(f, sub) != ZTB_OK) {
                note_error(f, "revocations: cannot apply an event", sub);
                break;
            }
        }
        if (now - heard > REVFEED_DEAD_MS) {
            note_error(f, "revocations: Redis stopped answering", NULL);
            break;
        }
        if (now >= next_ping) {
            if (ping(sub) != ZTB_OK) {
                note_error(f, "revocations: subscriber connection lost", sub);
                break;
            }
            next_ping = now + REVFEED_PING_MS;
        }
        if (now >= next_sweep) {
            if (sweep(f, now >= next_rebuild) != ZTB_OK)
                break;
            next_sweep = now + SWEEP_NAMES_MS;
            if (now >= next_rebuild)
                next_rebuild = now + REBUILD_JTIS_MS;
        }
    }
out:
    mark_lost(f);
    atomic_store(&f->sub_fd, -1);
    if (r != NULL)
        freeReplyObject(r);
    if (fresh != NULL) {
        atomic_fetch_add(&f->evicted_before, fresh->evicted);
        atomic_fetch_add(&f->refused_before, fresh->refused);
        revset_free(fresh);
        free(fresh);
    }
    if (sub != NULL)
        redis_link_free(sub);
}

static void *feed_main(void *arg)
{
    struct revfeed *f = arg;
    unsigned backoff = RECONNECT_MIN_MS;
    while (!atomic_load(&f->stop)) {
        int64_t began = clock_mono_ms();
        session(f);
        if (clock_mono_ms() - began > RECONNECT_MAX_MS)
            backoff = RECONNECT_MIN_MS; /* it ran a while: start the backoff again */
        if (wait_readable(f, -1, (int)backoff, NULL))
            break;
        backoff = backoff * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : backoff * 2;
    }
    return NULL;
}

static void feed_free(struct revfeed *f)
{
    if (f->rs != NULL) {
        revset_free(f->rs);
        free(f->rs);
    }
    if (f->wake[0] >= 0)
        close(f->wake[0]);
    if (f->wake[1] >= 0)
        close(f->wake[1]);
    redis_target_wipe(&f->o.target);
    pthread_rwlock_destroy(&f->lock);
    pthread_mutex_destroy(&f->start_mu);
    pthread_cond_destroy(&f->start_cv);
    free(f);
}

void revfeed_stop(struct revfeed *f)
{
    if (f == NULL)
        return;
    atomic_store(&f->stop, 1);
    if (f->thread_started) {
        ssize_t w;
        do {
            w = write(f->wake[1], "x", 1);
        } while (w < 0 && errno == EINTR);
        pthread_join(f->thread, NULL);
    }
    feed_free(f);
}

ztb_err revfeed_start(const struct revfeed_opts *o, struct revfeed **out, char *err, size_t errcap)
{
    ZTB_ENSURE(o != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    *out = NULL;
    struct revfeed *f = calloc(1, sizeof(*f));
    ZTB_ENSURE(f != NULL, ZTB_ERR_NOMEM);
    f->o = *o;
    f->wake[0] = f->wake[1] = -1;
    atomic_store(&f->sub_fd, -1);
    atomic_store(&f->lost_at_ms, clock_mono_ms());
    f->rs = malloc(sizeof(*f->rs));
    pthread_condattr_t ca;
    int ok = f->rs != NULL && pthread_condattr_init(&ca) == 0;
    if (ok) {
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        ok = pthread_cond_init(&f->start_cv, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    pthread_rwlockattr_t ra;
    if (ok && pthread_rwlockattr_init(&ra) == 0) {
        /* the feed must get its write lock under a constant stream of readers */
        pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        ok = pthread_rwlock_init(&f->lock, &ra) == 0;
        pthread_rwlockattr_destroy(&ra);
    }
    ok = ok && pthread_mutex_init(&f->start_mu, NULL) == 0;
    ok = ok && pipe2(f->wake, O_CLOEXEC | O_NONBLOCK) == 0;
    if (!ok) {
        free(f->rs);
        f->rs = NULL;
        free(f);
        return ZTB_ERR_NOMEM;
    }
    revset_init(f->rs, o->skew_s, o->max_entries);

    sigset_t old;
    sigpipe_block_all_for_new_thread(&old);
    int prc = pthread_create(&f->thread, NULL, feed_main, f);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (prc != 0) {
        feed_free(f);
        return ZTB_ERR_NOMEM;
    }
    f->thread_started = 1;

    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    unsigned ms = o->startup_timeout_ms;
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&f->start_mu);
    while (!atomic_load(&f->synced_once))
        if (pthread_cond_timedwait(&f->start_cv, &f->start_mu, &deadline) == ETIMEDOUT)
            break;
    int synced = atomic_load(&f->synced_once);
    if (!synced && err != NULL && errcap > 0)
        snprintf(err, errcap, "%s",
                 f->last_error[0] ? f->last_error : "revocations: Redis did not answer in time");
    pthread_mutex_unlock(&f->start_mu);
    if (!synced) {
        revfeed_stop(f);
        return ZTB_ERR_UNAVAILABLE;
    }
    *out = f;
    return ZTB_OK;
}

ztb_err revfeed_check(struct revfeed *f, const char *kid, const char *aud, const char *agent,
                      int64_t gen, const uint8_t jti_id[IDSET_ID_LEN], int64_t now)
{
    if (!atomic_load_explicit(&f->live, memory_order_acquire)) {
        int64_t lost = atomic_load(&f->lost_at_ms);
        if (!atomic_load(&f->synced_once) || clock_mono_ms() - lost >= (int64_t)f->o.grace_ms)
            return ZTB_ERR_REVOCATION_STALE;
    }
    pthread_rwlock_rdlock(&f->lock);
    ztb_err rv = revset_check(f->rs, kid, aud, agent, gen, jti_id, now);
    pthread_rwlock_unlock(&f->lock);
    return rv;
}

void revfeed_stats(struct revfeed *f, struct revfeed_stats *s)
{
    pthread_rwlock_rdlock(&f->lock);
    s->entries = revset_count(f->rs);
    s->bytes = revset_bytes(f->rs);
    s->evicted = f->rs->evicted + atomic_load(&f->evicted_before);
    s->refused = f->rs->refused + atomic_load(&f->refused_before);
    s->full = f->rs->full;
    pthread_rwlock_unlock(&f->lock);
    s->live = atomic_load(&f->live);
    s->events = atomic_load(&f->events);
    s->bad_events = atomic_load(&f->bad_events);
    s->syncs = atomic_load(&f->syncs);
}

void revfeed_break_for_test(struct revfeed *f)
{
    int fd = atomic_load(&f->sub_fd);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

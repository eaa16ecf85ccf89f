/*
 * bench_revoke.c - how fast a revocation reaches every gateway, and what a
 * verifier's revocation set costs in memory.
 *
 *   build/bin/ztb-bench-revoke [--revocations N] [--verifiers V] [--threads T]
 *                              [--entries M]
 *
 * Everything is real: a private redis-server and the ztb-broker (with keys,
 * CA and a policy whose `token_replay` response is `revoke_token`) started
 * by the integration-test harness, an agent enrolled with libztb's agent
 * client, N tokens minted through /v1/token, and V verifier processes, each
 * a libztb verifier (keys from the broker's JWKS URL, revocation from the
 * Redis feed) with T threads (default 1) calling ztb_verify in a loop: that
 * is the validation load, and it is also how the revocation is noticed.
 *
 * Latency (timed, one revocation at a time): every verifier thread verifies
 * token i over and over. Once every verifier has accepted it, the parent
 * POSTs a `token_replay` signal naming token i's jti and exp to /v1/signals
 * (a registered source, one keep-alive connection) and expects 202 (a 503,
 * "send the signal again", is retried and counted in signal_retries). The
 * first verifier thread that gets ZTB_ERR_REVOKED for token i writes
 * CLOCK_MONOTONIC into shared memory (one host, one clock). The latency of
 * revocation i is the latest of the V first-reject times minus the time the
 * POST was sent: the signal's HTTP request, its evaluation, the broker's
 * audit fsync and Redis script, pub/sub and the feed are all inside it.
 * (The broker publishes before it answers, so measured from the 202 the
 * figure can be negative; that variant is printed too.)
 *
 * Memory: a fresh process (forked before any thread existed) first starts a
 * verifier on an empty Redis database, then one on a database holding M jti
 * revocations in `ztb:revocations`, written the way the broker writes them
 * (a ZADD of event JSON per member), so the set is built through the real
 * loading path (SUBSCRIBE, ZSCAN). bytes_per_entry is the revocation
 * tables' own size (ztb_verifier_stats revocation_bytes / entries);
 * rss_bytes_per_entry is the growth of the process's resident set between
 * the two verifiers divided by M (allocator overhead and whatever the load
 * left behind included).
 *
 * Prints `metric: value` lines; progress on stderr. Figures, never pass/fail.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>

#include <ztb/ztb.h>

#include "bench_util.h"
#include "harness.h"
#include "sdk_it.h"

#define MAX_VERIFIERS 16
#define MAX_THREADS   16
#define MAX_TOKENS    20000
#define TOKEN_CAP     4096
#define WAIT_NS       5000000000ull /* a revocation not seen within 5 s is missed */
#define AGENT         "bench-bot"
#define ACTION        "payments:read"
#define RESOURCE      "orders/1"

static const char *const policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 3600, \"default_ttl\": 1800,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000000, \"burst\": 100000, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000000, \"burst\": 100000, \"period\": "
    "60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"reads\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"payments:read\"], \"audiences\": [\"payments\"], \"resources\": "
    "[\"**\"]}\n"
    " ],\n"
    " \"anomaly_responses\": [\n"
    "  {\"id\": \"replay-revoke-token\", \"signals\": [\"token_replay\"],\n"
    "   \"min_severity\": \"high\", \"response\": \"revoke_token\"}\n"
    " ]}\n";

/* Shared between the parent and the forked verifier and memory processes. */
struct shared {
    atomic_int go;     /* tokens are in place: verifiers start */
    atomic_int ready;  /* verifiers up and verifying */
    atomic_int failed; /* a child could not start */
    atomic_int stop;
    atomic_uint cur; /* the token every verifier thread checks */
    atomic_uint accepted[MAX_VERIFIERS];
    atomic_ullong validations[MAX_VERIFIERS];
    atomic_ullong unexpected[MAX_VERIFIERS]; /* neither OK nor REVOKED */
    atomic_int last_unexpected;
    unsigned ntokens;
    /* memory measurement */
    atomic_int mem_go, mem_done;
    double mem_load_s;
    long long rss_before, rss_after, rev_bytes, rev_entries;
    /* first-reject times: seen[v * MAX_TOKENS + i] */
    atomic_ullong seen[MAX_VERIFIERS * MAX_TOKENS];
    char tokens[MAX_TOKENS][TOKEN_CAP];
};

static struct shared *sh;
static struct zh_redis rd;
static struct zh_broker br;
static unsigned nthreads = 1;

static void die(const char *what)
{
    fprintf(stderr, "bench: %s\n", what);
    exit(1);
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static long long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long size = 0, res = 0;
    if (f == NULL)
        return -1;
    if (fscanf(f, "%lld %lld", &size, &res) != 2)
        res = -1;
    fclose(f);
    return res < 0 ? -1 : res * sysconf(_SC_PAGESIZE);
}

static ztb_verifier *make_verifier(const char *redis_url)
{
    char jwks[128];
    snprintf(jwks, sizeof(jwks), "%s/.well-known/jwks.json", br.url);
    ztb_verifier_config *c = ztb_verifier_config_new();
    ztb_verifier *v = NULL;
    if (c == NULL || ztb_verifier_config_set_issuer(c, br.url) != ZTB_OK ||
        ztb_verifier_config_set_audience(c, "payments") != ZTB_OK ||
        ztb_verifier_config_set_jwks_url(c, jwks) != ZTB_OK ||
        ztb_verifier_config_set_startup_timeout(c, 120000) != ZTB_OK ||
        /* room for the memory run's M entries and the latency run's */
        ztb_verifier_config_set_revocation_max(c, 100000000) != ZTB_OK ||
        (redis_url ? ztb_verifier_config_set_redis(c, redis_url)
                   : ztb_verifier_config_set_no_revocation(c)) != ZTB_OK ||
        ztb_verifier_new(c, &v) != ZTB_OK) {
        fprintf(stderr, "bench: verifier: %s\n", ztb_verifier_errdetail(NULL));
        v = NULL;
    }
    ztb_verifier_config_free(c);
    return v;
}

/* ---- a verifier process ------------------------------------------------------ */

struct vthread {
    ztb_verifier *v;
    unsigned idx; /* which verifier process */
};

static void *verify_loop(void *arg)
{
    const struct vthread *t = arg;
    ztb_expect want = {.action = ACTION, .resource = RESOURCE};
    uint64_t n = 0;
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        unsigned i = atomic_load(&sh->cur);
        ztb_err rv = ztb_verify(t->v, sh->tokens[i], &want, NULL);
        n++;
        if (rv == ZTB_OK) {
            unsigned have = atomic_load(&sh->accepted[t->idx]);
            while (have < i + 1 &&
                   !atomic_compare_exchange_weak(&sh->accepted[t->idx], &have, i + 1))
                ;
        } else if (rv == ZTB_ERR_REVOKED) {
            unsigned long long zero = 0;
            atomic_compare_exchange_strong(&sh->seen[(size_t)t->idx * MAX_TOKENS + i], &zero,
                                           (unsigned long long)bench_now_ns());
        } else {
            atomic_fetch_add(&sh->unexpected[t->idx], 1);
            atomic_store(&sh->last_unexpected, (int)rv);
        }
        if ((n & 63) == 0)
            atomic_fetch_add(&sh->validations[t->idx], 64);
    }
    atomic_fetch_add(&sh->validations[t->idx], n & 63);
    return NULL;
}

static void verifier_main(unsigned idx)
{
    while (!atomic_load(&sh->go)) {
        if (atomic_load(&sh->stop))
            _exit(0);
        sleep_us(1000);
    }
    ztb_verifier *v = make_verifier(rd.url);
    if (v == NULL) {
        atomic_store(&sh->failed, 1);
        _exit(1);
    }
    pthread_t th[MAX_THREADS];
    struct vthread arg = {.v = v, .idx = idx};
    for (unsigned t = 0; t < nthreads; t++)
        if (pthread_create(&th[t], NULL, verify_loop, &arg) != 0) {
            atomic_store(&sh->failed, 1);
            _exit(1);
        }
    atomic_fetch_add(&sh->ready, 1);
    for (unsigned t = 0; t < nthreads; t++)
        pthread_join(th[t], NULL);
    ztb_verifier_free(v);
    _exit(0);
}

/* ---- the memory process -------------------------------------------------------- */

static void memory_main(void)
{
    while (!atomic_load(&sh->mem_go)) /* it dies with the parent (PDEATHSIG) */
        sleep_us(1000);
    char empty_url[400], full_url[400];
    snprintf(empty_url, sizeof(empty_url), "%s?db=2", rd.url);
    snprintf(full_url, sizeof(full_url), "%s?db=1", rd.url);
    /* a verifier's fixed costs (curl, JWKS, threads, Redis connections) first */
    ztb_verifier *empty = make_verifier(empty_url);
    if (empty == NULL) {
        atomic_store(&sh->failed, 1);
        _exit(1);
    }
    sh->rss_before = rss_bytes();
    double t0 = bench_now_s();
    ztb_verifier *full = make_verifier(full_url);
    if (full == NULL) {
        atomic_store(&sh->failed, 1);
        _exit(1);
    }
    sh->mem_load_s = bench_now_s() - t0;
    sh->rss_after = rss_bytes();
    ztb_verifier_stats st = ZTB_VERIFIER_STATS_INIT;
    if (ztb_verifier_stats_get(full, &st) == ZTB_OK) {
        sh->rev_bytes = (long long)st.revocation_bytes;
        sh->rev_entries = (long long)st.revocation_entries;
    }
    ztb_verifier_free(full);
    ztb_verifier_free(empty);
    atomic_store(&sh->mem_done, 1);
    _exit(0);
}

static pid_t spawn(int memory, unsigned idx)
{
    pid_t pid = fork();
    if (pid < 0)
        die("fork failed");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (memory)
            memory_main();
        verifier_main(idx);
    }
    return pid;
}

/* ---- the parent ------------------------------------------------------------------- */

static char *signal_source_secret(void)
{
    char *out = NULL, *err = NULL;
    const char *add[] = {zh_bin("ztbctl"), "--socket", br.admin_sock, "signals",
                         "source",         "add",      "bench",       NULL};
    if (zh_run(add, &out, &err) != 0 || out == NULL || strstr(out, "ztbsrc_") == NULL)
        die("ztbctl signals source add failed");
    char secret[128];
    if (sscanf(strstr(out, "ztbsrc_"), "%127s", secret) != 1)
        die("no source secret");
    free(out);
    free(err);
    return strdup(secret);
}

static size_t discard(char *data, size_t size, size_t nmemb, void *ud)
{
    (void)data;
    (void)ud;
    return size * nmemb;
}

/* Mint n tokens into shared memory; jtis and exps for the signals. */
static void mint(unsigned n, char (*jti)[64], long long *exp)
{
    ztb_agent *a = sdk_it_enrolled(&br, AGENT, 0);
    ztb_verifier *v = make_verifier(NULL);
    ztb_claims *c = ztb_claims_new();
    if (v == NULL || c == NULL)
        die("cannot make the parent's verifier");
    ztb_expect want = {.action = ACTION, .resource = RESOURCE};
    for (unsigned i = 0; i < n; i++) {
        char *tok = NULL;
        ztb_err rv = ztb_agent_token(a, "payments", ACTION, RESOURCE, NULL, &tok);
        if (rv != ZTB_OK) {
            fprintf(stderr, "bench: token %u: %s: %s\n", i, ztb_err_name(rv),
                    ztb_agent_errdetail(a));
            exit(1);
        }
        if (strlen(tok) >= TOKEN_CAP)
            die("token too long");
        memcpy(sh->tokens[i], tok, strlen(tok) + 1);
        ztb_token_free(tok);
        if (ztb_verify(v, sh->tokens[i], &want, c) != ZTB_OK)
            die("a fresh token does not verify");
        snprintf(jti[i], 64, "%s", ztb_claims_jti(c));
        exp[i] = (long long)ztb_claims_expires_at(c);
    }
    ztb_claims_free(c);
    ztb_verifier_free(v);
    ztb_agent_free(a);
}

/* splitmix64's finalizer: a bijection of 64-bit values */
static unsigned long long mix64(unsigned long long x)
{
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* M jti revocations in Redis db 1, as the broker writes them. */
static void seed_db1(unsigned long m)
{
    redisContext *c = zh_redis_connect(&rd);
    if (c == NULL || c->err)
        die("cannot connect to redis");
    redisReply *r = redisCommand(c, "SELECT 1");
    if (r == NULL)
        die("SELECT failed");
    freeReplyObject(r);
    long long exp = (long long)time(NULL) + 3600;
    enum { BATCH = 1000 };
    static char members[BATCH][80], score[32];
    const char *argv[2 + 2 * BATCH];
    size_t lens[2 + 2 * BATCH];
    snprintf(score, sizeof(score), "%lld", exp);
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned long sent = 0;
    while (sent < m) {
        int k = 0;
        argv[0] = "ZADD";
        argv[1] = "ztb:{rev}:events";
        for (; k < BATCH && sent < m; k++, sent++) {
            /* a 22-character base64url id, like the broker's jtis (unique:
             * the first half encodes a bijection of the counter) */
            char id[23];
            unsigned long long x = mix64(sent + 1), y = mix64(x);
            for (int j = 0; j < 11; j++) {
                id[j] = b64[(x >> (6 * j)) & 63];
                id[11 + j] = b64[(y >> (6 * j)) & 63];
            }
            id[22] = '\0';
            int len = snprintf(members[k], sizeof(members[k]),
                               "{\"type\":\"jti\",\"id\":\"%s\",\"exp\":%lld}", id, exp);
            argv[2 + 2 * k] = score;
            lens[2 + 2 * k] = strlen(score);
            argv[3 + 2 * k] = members[k];
            lens[3 + 2 * k] = (size_t)len;
        }
        lens[0] = 4;
        lens[1] = strlen(argv[1]);
        /* one command at a time: members[] is reused */
        r = redisCommandArgv(c, 2 + 2 * k, argv, lens);
        if (r == NULL || r->type == REDIS_REPLY_ERROR)
            die("ZADD failed");
        freeReplyObject(r);
    }
    r = redisCommand(c, "ZCARD ztb:{rev}:events");
    if (r == NULL || r->type != REDIS_REPLY_INTEGER || (unsigned long)r->integer != m)
        die("the revocation set does not hold every entry (duplicate ids?)");
    freeReplyObject(r);
    redisFree(c);
}

static void usage(void)
{
    fprintf(stderr, "usage: ztb-bench-revoke [--revocations N (1000)] [--verifiers V (3)] "
                    "[--threads T (1)] [--entries M (1000000)]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    unsigned n = 1000, nv = 3;
    unsigned long entries = 1000000;
    for (int i = 1; i < argc; i += 2) { /* every option takes one value */
        if (i + 1 >= argc)
            usage();
        unsigned long x = strtoul(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--revocations") == 0 && x >= 1 && x <= MAX_TOKENS)
            n = (unsigned)x;
        else if (strcmp(argv[i], "--verifiers") == 0 && x >= 1 && x <= MAX_VERIFIERS)
            nv = (unsigned)x;
        else if (strcmp(argv[i], "--threads") == 0 && x >= 1 && x <= MAX_THREADS)
            nthreads = (unsigned)x;
        else if (strcmp(argv[i], "--entries") == 0 && x >= 1 && x <= 100000000)
            entries = x;
        else
            usage();
    }
    signal(SIGPIPE, SIG_IGN);
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        die("mmap failed");

    bench_note("starting redis-server and ztb-broker");
    zh_redis_start(&rd);
    zh_broker_start_issuing(&br, rd.url, policy_doc);
    char *secret = signal_source_secret();

    /* children first, while this process has no threads */
    pid_t kids[MAX_VERIFIERS + 1];
    for (unsigned v = 0; v < nv; v++)
        kids[v] = spawn(0, v);
    kids[nv] = spawn(1, 0);

    bench_note("minting %u tokens", n);
    static char jti[MAX_TOKENS][64];
    static long long exp[MAX_TOKENS];
    double t_mint = bench_now_s();
    mint(n, jti, exp);
    bench_note("minted in %.1f s", bench_now_s() - t_mint);
    sh->ntokens = n;
    atomic_store(&sh->go, 1);
    while (atomic_load(&sh->ready) < (int)nv) {
        if (atomic_load(&sh->failed))
            die("a verifier did not start");
        sleep_us(1000);
    }
    bench_note("%u verifiers x %u threads verifying; revoking %u tokens one by one", nv, nthreads,
               n);

    CURL *h = curl_easy_init();
    char url[160], auth[200];
    snprintf(url, sizeof(url), "%s/v1/signals", br.url);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", secret);
    struct curl_slist *hdrs = curl_slist_append(NULL, auth);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (h == NULL || hdrs == NULL)
        die("curl");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);

    static double lat[MAX_TOKENS], lat202[MAX_TOKENS], rtt[MAX_TOKENS];
    size_t done = 0, missed = 0, retries = 0;
    uint64_t v0 = 0;
    for (unsigned v = 0; v < nv; v++)
        v0 += atomic_load(&sh->validations[v]);
    double t_start = bench_now_s();
    for (unsigned i = 0; i < n; i++) {
        atomic_store(&sh->cur, i);
        /* every verifier accepts token i before it is revoked */
        uint64_t wait0 = bench_now_ns();
        for (unsigned v = 0; v < nv; v++)
            while (atomic_load(&sh->accepted[v]) < i + 1) {
                if (bench_now_ns() - wait0 > WAIT_NS)
                    die("a verifier does not accept a fresh token");
                sleep_us(100);
            }
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"jti\":\"bench-%u-%u\",\"events\":{\"token_replay\":{\"subject\":"
                 "{\"agent\":\"%s\",\"jti\":\"%s\",\"exp\":%lld},\"severity\":\"high\","
                 "\"confidence\":1}}}",
                 (unsigned)getpid(), i, AGENT, jti[i], exp[i]);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        /* a 503 asks the source to send the signal again (docs/signals.md);
         * the latency still counts from the first attempt */
        uint64_t t0 = bench_now_ns(), t1 = 0;
        CURLcode cc = CURLE_OK;
        long status = 0;
        for (int attempt = 0; attempt < 20; attempt++) {
            if (attempt > 0) { /* 1, 2, 4 ... 128 ms: about 2 s in all */
                retries++;
                sleep_us(1000L << (attempt < 8 ? attempt - 1 : 7));
            }
            cc = curl_easy_perform(h);
            t1 = bench_now_ns();
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
            if (cc != CURLE_OK || status != 503)
                break;
        }
        if (cc != CURLE_OK || status != 202) {
            fprintf(stderr, "bench: signal %u: %s, HTTP %ld\n", i, curl_easy_strerror(cc), status);
            zh_broker_dump_log(&br);
            exit(1);
        }
        uint64_t last = 0;
        int all = 0;
        while (!all && bench_now_ns() - t0 < WAIT_NS) {
            all = 1;
            last = 0;
            for (unsigned v = 0; v < nv; v++) {
                uint64_t s = atomic_load(&sh->seen[(size_t)v * MAX_TOKENS + i]);
                if (s == 0)
                    all = 0;
                else if (s > last)
                    last = s;
            }
            if (!all)
                sleep_us(50);
        }
        if (!all) {
            missed++;
            continue;
        }
        lat[done] = (double)(last - t0) / 1e6;
        lat202[done] = ((double)last - (double)t1) / 1e6;
        rtt[done] = (double)(t1 - t0) / 1e6;
        done++;
        if ((i + 1) % 250 == 0)
            bench_note("%u/%u revoked; p50 so far %.2f ms", i + 1, n, bench_median(lat, done));
    }
    double elapsed = bench_now_s() - t_start;
    uint64_t v1 = 0, unexpected = 0;
    for (unsigned v = 0; v < nv; v++) {
        v1 += atomic_load(&sh->validations[v]);
        unexpected += atomic_load(&sh->unexpected[v]);
    }
    atomic_store(&sh->stop, 1);
    for (unsigned v = 0; v < nv; v++)
        waitpid(kids[v], NULL, 0);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    free(secret);

    bench_metric("revocations", (double)done);
    bench_metric("missed", (double)missed);
    bench_metric("verifiers", nv);
    bench_metric("threads_per_verifier", nthreads);
    bench_metric("p50_ms", bench_percentile(lat, done, 50));
    bench_metric("p99_ms", bench_percentile(lat, done, 99));
    bench_metric("max_ms", bench_percentile(lat, done, 100));
    bench_metric("p50_ms_from_202", bench_percentile(lat202, done, 50));
    bench_metric("p99_ms_from_202", bench_percentile(lat202, done, 99));
    bench_metric("signal_rtt_p50_ms", bench_percentile(rtt, done, 50));
    bench_metric("signal_retries", (double)retries);
    bench_metric("validations_per_s", (double)(v1 - v0) / elapsed);
    bench_metric("unexpected_results", (double)unexpected);
    if (unexpected)
        bench_note("a verifier gave %s (neither OK nor REVOKED)",
                   ztb_err_name((ztb_err)atomic_load(&sh->last_unexpected)));

    bench_note("writing %lu revocations to redis db 1", entries);
    seed_db1(entries);
    bench_note("loading them into a verifier");
    atomic_store(&sh->mem_go, 1);
    int st = 0;
    waitpid(kids[nv], &st, 0);
    if (!atomic_load(&sh->mem_done))
        die("the memory measurement failed");
    bench_metric("entries", (double)sh->rev_entries);
    bench_metric("load_s", sh->mem_load_s);
    bench_metric("bytes_per_entry",
                 sh->rev_entries ? (double)sh->rev_bytes / (double)sh->rev_entries : -1);
    bench_metric("rss_bytes_per_entry", (double)(sh->rss_after - sh->rss_before) / (double)entries);

    zh_broker_stop(&br);
    zh_redis_stop(&rd, 1);
    zh_rmtree(br.dir);
    return 0;
}

/*
 * bench_verify.c - what a gateway pays per token with libztb's verifier:
 * ztb_verify of a typical access token on one and on two threads, beside
 * `openssl speed ecdsap256` verify measured in the same run, and the rate at
 * which malformed and unknown-kid tokens are refused.
 *
 *   build/bin/ztb-bench-verify [--rounds N] [--seconds S] [--no-redis]
 *
 * The verifier is the real one, configured as a gateway would be: the
 * broker's key from a JWKS file, and (unless --no-redis) the revocation feed
 * from a private redis-server this program starts on a unix socket, loaded
 * with 1000 revocations, so each verification includes the local revocation
 * lookup. Besides `openssl speed` (a separate process, measured after the
 * SDK in each round), the SDK's verify is also measured against the same
 * ECDSA verify done in-process with OpenSSL EVP the way `openssl speed` does
 * it (a prepared context, a 32-byte digest), in alternating 50 ms slices, so
 * both see the same interference from other work on the machine:
 * verify_ratio_interleaved is the SDK's overhead with that noise cancelled.
 * The token carries every claim a typical broker token has
 * (an authorization detail with a resource and amounts, the ztb claim), no
 * DPoP binding and no single-use flag (those add a second ECDSA verify or a
 * Redis round trip by design). Each round measures every figure in turn so
 * that noise hits them alike; figures are medians over the rounds, ratios
 * medians of per-round ratios. It prints figures, never pass/fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include <ztb/ztb.h>

#include "bench_util.h"
#include "common/buf.h"
#include "pki/jwk.h"
#include "pki/jws.h"
#include "pki/key.h"

#ifndef ZTB_REDIS_SERVER
#define ZTB_REDIS_SERVER "redis-server"
#endif

#define MAX_ROUNDS 50
#define ISS        "https://broker.example.org"
#define AUD        "payments"

struct bench {
    ztb_verifier *v;
    EVP_PKEY_CTX *ref; /* the in-process reference: verify of a 32-byte digest */
    uint8_t ref_dgst[32], ref_sig[80];
    size_t ref_siglen;
    char tok[4096], bad_kid[4096];
    const char *malformed;
    char dir[256];
    pid_t redis;
    char redis_url[320];
};

static void die(const char *what)
{
    fprintf(stderr, "bench: %s\n", what);
    exit(1);
}

/* A private redis-server on a unix socket in dir; its pid. */
static pid_t start_redis(struct bench *b)
{
    char conf[400], sock[300];
    snprintf(sock, sizeof(sock), "%s/redis.sock", b->dir);
    snprintf(conf, sizeof(conf), "%s/redis.conf", b->dir);
    FILE *f = fopen(conf, "w");
    if (f == NULL)
        die("cannot write the redis config");
    fprintf(f, "port 0\nunixsocket %s\ndir %s\nsave \"\"\nappendonly no\nlogfile %s/redis.log\n",
            sock, b->dir, b->dir);
    fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_RDWR);
        dup2(fd, 1);
        execl(ZTB_REDIS_SERVER, ZTB_REDIS_SERVER, conf, (char *)NULL);
        _exit(127);
    }
    snprintf(b->redis_url, sizeof(b->redis_url), "unix://%s", sock);
    for (int i = 0; i < 500; i++) {
        redisContext *c = redisConnectUnix(sock);
        int ok = c != NULL && c->err == 0;
        if (c != NULL)
            redisFree(c);
        if (ok)
            return pid;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    die("redis-server did not start (run with --no-redis to measure without it)");
    return -1;
}

/* 1000 revoked tokens in the revocation set, as the broker would have them. */
static void seed_revocations(struct bench *b)
{
    redisContext *c = redisConnectUnix(b->redis_url + 7);
    if (c == NULL || c->err)
        die("cannot connect to redis");
    long long exp = (long long)time(NULL) + 3600;
    for (int i = 0; i < 1000; i++)
        redisAppendCommand(
            c, "ZADD ztb:{rev}:events %lld {\"type\":\"jti\",\"id\":\"rv%d\",\"exp\":%lld}", exp, i,
            exp);
    for (int i = 0; i < 1000; i++) {
        void *r = NULL;
        if (redisGetReply(c, &r) != REDIS_OK)
            die("redis ZADD failed");
        freeReplyObject(r);
    }
    redisFree(c);
}

static void sign(const ztb_key *k, const char *claims, char *out, size_t cap)
{
    ztb_buf b;
    ztb_buf_init_fixed(&b, out, cap);
    ztb_jws_sign_opts o = {.typ = "at+jwt"};
    if (ztb_jws_sign(k, &o, claims, strlen(claims), &b) != ZTB_OK)
        die("cannot sign");
}

static void setup(struct bench *b, int use_redis)
{
    memset(b, 0, sizeof(*b));
    const char *tmp = getenv("TMPDIR");
    snprintf(b->dir, sizeof(b->dir), "%s/ztb-bench-verify.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(b->dir) == NULL)
        die("mkdtemp");
    ztb_key *key, *other;
    if (ztb_key_generate(&key) != ZTB_OK || ztb_key_generate(&other) != ZTB_OK)
        die("key generation failed");
    char jwks[4096], path[400];
    ztb_buf jb;
    ztb_buf_init_fixed(&jb, jwks, sizeof(jwks));
    if (ztb_jwks_render((const ztb_key *const *)&key, 1, &jb) != ZTB_OK)
        die("jwks");
    snprintf(path, sizeof(path), "%s/jwks.json", b->dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        die("cannot write the jwks");
    fputs(jwks, f);
    fclose(f);
    chmod(path, 0600);

    long long now = (long long)time(NULL);
    char claims[2048];
    snprintf(
        claims, sizeof(claims),
        "{\"iss\":\"" ISS "\",\"sub\":\"spiffe://example.org/agent/invoice-bot\",\"aud\":\"" AUD
        "\",\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld,\"jti\":\"3q2-7wAAAAAzZKqXb0AAAA\","
        "\"client_id\":\"spiffe://example.org/agent/invoice-bot\",\"scope\":"
        "\"payments:refund\",\"authorization_details\":[{\"type\":\"payment\",\"actions\":"
        "[\"payments:refund\"],\"locations\":[\"" AUD "\"],\"identifier\":\"orders/2024-0042\","
        "\"amount\":40,\"currency\":\"EUR\"}],\"act\":{\"sub\":"
        "\"spiffe://example.org/agent/orchestrator\"},\"ztb\":{\"agent\":\"invoice-bot\","
        "\"gen\":7,\"rule\":\"refunds-small\"}}",
        now, now, now + 3600);
    sign(key, claims, b->tok, sizeof(b->tok));
    sign(other, claims, b->bad_kid, sizeof(b->bad_kid));
    b->malformed = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
    bench_note("claims %zu bytes, token %zu bytes", strlen(claims), strlen(b->tok));

    ztb_verifier_config *c = ztb_verifier_config_new();
    ztb_verifier_config_set_issuer(c, ISS);
    ztb_verifier_config_set_audience(c, AUD);
    ztb_verifier_config_set_jwks_file(c, path);
    if (use_redis) {
        b->redis = start_redis(b);
        seed_revocations(b);
        ztb_verifier_config_set_redis(c, b->redis_url);
    } else {
        ztb_verifier_config_set_no_revocation(c);
    }
    if (ztb_verifier_new(c, &b->v) != ZTB_OK) {
        fprintf(stderr, "bench: %s\n", ztb_verifier_errdetail(NULL));
        exit(1);
    }
    ztb_verifier_config_free(c);

    /* the reference: what `openssl speed ecdsap256` verify does, in this process */
    memset(b->ref_dgst, 0x5a, sizeof(b->ref_dgst));
    EVP_PKEY_CTX *sc = EVP_PKEY_CTX_new(ztb_key_evp(key), NULL);
    b->ref_siglen = sizeof(b->ref_sig);
    b->ref = EVP_PKEY_CTX_new(ztb_key_evp(key), NULL);
    if (sc == NULL || b->ref == NULL || EVP_PKEY_sign_init(sc) != 1 ||
        EVP_PKEY_sign(sc, b->ref_sig, &b->ref_siglen, b->ref_dgst, sizeof(b->ref_dgst)) != 1 ||
        EVP_PKEY_verify_init(b->ref) != 1)
        die("cannot prepare the OpenSSL reference");
    EVP_PKEY_CTX_free(sc);
    ztb_key_free(key);
    ztb_key_free(other);
}

static void teardown(struct bench *b)
{
    EVP_PKEY_CTX_free(b->ref);
    ztb_verifier_free(b->v);
    if (b->redis > 0) {
        kill(b->redis, SIGTERM);
        waitpid(b->redis, NULL, 0);
    }
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench: could not remove %s\n", b->dir);
}

enum op { OP_VERIFY, OP_REJECT_MALFORMED, OP_REJECT_KID };

struct run {
    struct bench *b;
    enum op op;
    double secs;
    pthread_barrier_t *start;
    uint64_t n;
    double elapsed;
};

static void *runner(void *arg)
{
    struct run *r = arg;
    ztb_claims *cl = ztb_claims_new();
    ztb_expect e = {.action = "payments:refund", .resource = "orders/2024-0042"};
    const char *tok = r->op == OP_VERIFY             ? r->b->tok
                      : r->op == OP_REJECT_MALFORMED ? r->b->malformed
                                                     : r->b->bad_kid;
    ztb_err want = r->op == OP_VERIFY             ? ZTB_OK
                   : r->op == OP_REJECT_MALFORMED ? ZTB_ERR_ALG
                                                  : ZTB_ERR_UNKNOWN_KID;
    int batch = r->op == OP_VERIFY ? 16 : 4096;
    if (r->start != NULL)
        pthread_barrier_wait(r->start);
    double t0 = bench_now_s(), t;
    do {
        for (int i = 0; i < batch; i++)
            if (ztb_verify(r->b->v, tok, &e, cl) != want)
                die(ztb_verifier_errdetail(r->b->v));
        r->n += (uint64_t)batch;
        t = bench_now_s();
    } while (t - t0 < r->secs);
    r->elapsed = t - t0;
    ztb_claims_free(cl);
    return NULL;
}

/* Operations per second of op on nthreads threads together. */
static double rate(struct bench *b, enum op op, double secs, int nthreads)
{
    struct run r[2];
    pthread_t t[2];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)nthreads);
    for (int i = 0; i < nthreads; i++) {
        r[i] = (struct run){.b = b, .op = op, .secs = secs, .start = &start};
        pthread_create(&t[i], NULL, runner, &r[i]);
    }
    double total = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(t[i], NULL);
        total += (double)r[i].n / r[i].elapsed;
    }
    pthread_barrier_destroy(&start);
    return total;
}

/*
 * The SDK's verify and the in-process OpenSSL verify in alternating 50 ms
 * slices for secs seconds in all; their rates (per second) in *sdk and *ref.
 */
static void interleaved(struct bench *b, double secs, double *sdk, double *ref)
{
    ztb_claims *cl = ztb_claims_new();
    ztb_expect e = {.action = "payments:refund", .resource = "orders/2024-0042"};
    uint64_t ns = 0, nr = 0;
    double ts = 0, tr = 0;
    for (double spent = 0; spent < secs; spent += 0.1) {
        double t0 = bench_now_s(), t;
        do {
            for (int i = 0; i < 8; i++)
                if (ztb_verify(b->v, b->tok, &e, cl) != ZTB_OK)
                    die(ztb_verifier_errdetail(b->v));
            ns += 8;
        } while ((t = bench_now_s()) - t0 < 0.05);
        ts += t - t0;
        t0 = t;
        do {
            for (int i = 0; i < 8; i++)
                if (EVP_PKEY_verify(b->ref, b->ref_sig, b->ref_siglen, b->ref_dgst,
                                    sizeof(b->ref_dgst)) != 1)
                    die("reference verify failed");
            nr += 8;
        } while ((t = bench_now_s()) - t0 < 0.05);
        tr += t - t0;
    }
    ztb_claims_free(cl);
    *sdk = (double)ns / ts;
    *ref = (double)nr / tr;
}

int main(int argc, char **argv)
{
    int rounds = 5, use_redis = 1;
    double secs = 1.0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            secs = atof(argv[++i]);
        else if (strcmp(argv[i], "--no-redis") == 0)
            use_redis = 0;
        else {
            fprintf(stderr, "usage: %s [--rounds N] [--seconds S] [--no-redis]\n", argv[0]);
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || secs <= 0 || secs > 60) {
        fprintf(stderr, "bench: rounds 1..%d, seconds (0, 60]\n", MAX_ROUNDS);
        return 2;
    }
    int ossl_secs = secs < 1 ? 1 : (int)(secs + 0.5);
    struct bench b;
    setup(&b, use_redis);
    bench_note("%d rounds of %.1f s per figure; revocation %s", rounds, secs,
               use_redis ? "feed from a private redis-server (1000 entries)" : "off");

    double v1[MAX_ROUNDS], v2[MAX_ROUNDS], ov[MAX_ROUNDS], os[MAX_ROUNDS];
    double rm[MAX_ROUNDS], rk[MAX_ROUNDS], ratio[MAX_ROUNDS], ratio2[MAX_ROUNDS];
    double is[MAX_ROUNDS], ir[MAX_ROUNDS], iratio[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        v1[r] = rate(&b, OP_VERIFY, secs, 1);
        v2[r] = rate(&b, OP_VERIFY, secs, 2);
        rm[r] = rate(&b, OP_REJECT_MALFORMED, secs / 2, 1);
        rk[r] = rate(&b, OP_REJECT_KID, secs / 2, 1);
        interleaved(&b, secs, &is[r], &ir[r]);
        iratio[r] = is[r] / ir[r];
        if (bench_openssl_ecdsap256(ossl_secs, &os[r], &ov[r]) != 0)
            die("cannot run `openssl speed ecdsap256`");
        ratio[r] = v1[r] / ov[r];
        ratio2[r] = v2[r] / (2 * ov[r]);
        bench_note("round %d: verify %.0f/s (1 thread), %.0f/s (2 threads), openssl %.0f/s; "
                   "interleaved %.0f/s vs EVP %.0f/s; reject %.0f/s (malformed), %.0f/s (unknown "
                   "kid)",
                   r + 1, v1[r], v2[r], ov[r], is[r], ir[r], rm[r], rk[r]);
    }
    size_t n = (size_t)rounds;
    double rej_m = bench_median(rm, n), rej_k = bench_median(rk, n);
    bench_metric("token_bytes", (double)strlen(b.tok));
    bench_metric("verify_per_s_1t", bench_median(v1, n));
    bench_metric("verify_per_s_2t", bench_median(v2, n));
    bench_metric("openssl_verify_per_s", bench_median(ov, n));
    bench_metric("verify_ratio", bench_median(ratio, n));
    bench_metric("verify_ratio_2t_per_thread", bench_median(ratio2, n));
    bench_metric("evp_verify_per_s_interleaved", bench_median(ir, n));
    bench_metric("verify_per_s_interleaved", bench_median(is, n));
    bench_metric("verify_ratio_interleaved", bench_median(iratio, n));
    bench_metric("reject_malformed_per_s", rej_m);
    bench_metric("reject_unknown_kid_per_s", rej_k);
    bench_metric("reject_per_s", rej_m < rej_k ? rej_m : rej_k);
    teardown(&b);
    return 0;
}

/*
 * test_approval_notifications.c - approval notifications with the real broker, a
 * real Redis and a real HTTP receiver in this process that checks each
 * notification's ZTB-Signature against the broker's JWKS (as a chat
 * bridge would).
 *
 * Shown: a pending approval arrives signed, with the approval's id, agent,
 * action and rule, and its approval arrives too (resolutions on); a
 * receiver that drops the first attempts gets the notification on a retry
 * (and /metrics counts the retries); while the receiver hangs, token
 * requests that file approvals answer at once; an http:// webhook to a
 * host that is not loopback is refused at start.
 *
 * The attacks: a body edited in transit or a signature by another key
 * fails the receiver's check (test_approval_webhook in tests/unit covers
 * them one by one; here the receiver refuses anything that does not verify
 * and the test fails if one arrives).
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "common/base64url.h"
#include "common/buf.h"
#include "harness.h"
#include "pki/jwk.h"
#include "pki/jws.h"

#define GRANT "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"

static const char *policy_doc =
    "{\"version\": 1, \"trust_domain\": \"ztb.local\",\n"
    " \"settings\": {\"max_ttl\": 300, \"default_ttl\": 60,\n"
    "   \"rate_limits\": {\"per_agent\": {\"rate\": 1000, \"burst\": 100, \"period\": 60},\n"
    "                   \"per_action\": {\"rate\": 1000, \"burst\": 100, \"period\": 60}}},\n"
    " \"rules\": [\n"
    "  {\"id\": \"isolate\", \"effect\": \"allow\", \"agents\": [\"*\"],\n"
    "   \"actions\": [\"hosts:isolate\"], \"audiences\": [\"ops\"], \"resources\": [\"hosts/*\"],\n"
    "   \"obligations\": {\"approval_required\": {\"group\": \"sre\", \"approvers\": 1, "
    "\"expires_in\": 120}}}\n"
    " ]}\n";

static struct zh_redis rd;
static struct zh_broker b;
static struct za_agent bot;

/* ---- the receiver ------------------------------------------------------------ */

enum mode { ANSWER, DROP, HANG };

struct note {
    char event[32];
    char approval[64];
    char agent[64];
    char action[64];
    char rule[64];
    char iss[128];
};

static struct {
    int fd;
    uint16_t port;
    pthread_t t;
    _Atomic int mode;
    _Atomic int drops_left; /* DROP: close this many connections unanswered */
    _Atomic int attempts;   /* connections accepted */
    _Atomic int stop;
    _Atomic int bad; /* notifications whose signature did not verify */
    pthread_mutex_t mu;
    struct note notes[64];
    size_t nnotes;
} rx;

/* The broker's JWKS (fetched once the broker runs). */
static ztb_keyset *jwks;

/* Verify a notification as a receiver does; 1 if body is authentic. */
static int authentic(const char *body, size_t n, const char *sig)
{
    const char *dots = strstr(sig, "..");
    if (dots == NULL || jwks == NULL)
        return 0;
    ztb_buf tok;
    ztb_buf_init(&tok, 1 << 17);
    ztb_buf_append(&tok, sig, (size_t)(dots - sig) + 1);
    (void)ztb_b64url_encode_buf(&tok, body, n);
    ztb_buf_append_str(&tok, dots + 1);
    ztb_jws_header hdr;
    int ok = ztb_jws_verify(jwks, ztb_buf_cstr(&tok), tok.len, NULL, &hdr, NULL) == ZTB_OK &&
             strcmp(hdr.typ, "ztb-webhook+jwt") == 0;
    ztb_buf_free(&tok);
    return ok;
}

static void record(const char *body, size_t n)
{
    json_error_t e;
    json_t *j = json_loadb(body, n, 0, &e);
    if (j == NULL) {
        atomic_fetch_add(&rx.bad, 1);
        return;
    }
    struct note nt;
    memset(&nt, 0, sizeof(nt));
    json_t *a = json_object_get(j, "approval");
    snprintf(nt.event, sizeof(nt.event), "%s", json_string_value(json_object_get(j, "event")));
    snprintf(nt.iss, sizeof(nt.iss), "%s", json_string_value(json_object_get(j, "iss")));
    snprintf(nt.approval, sizeof(nt.approval), "%s", json_string_value(json_object_get(a, "id")));
    snprintf(nt.agent, sizeof(nt.agent), "%s", json_string_value(json_object_get(a, "agent")));
    snprintf(nt.action, sizeof(nt.action), "%s", json_string_value(json_object_get(a, "action")));
    snprintf(nt.rule, sizeof(nt.rule), "%s", json_string_value(json_object_get(a, "rule")));
    json_decref(j);
    pthread_mutex_lock(&rx.mu);
    if (rx.nnotes < 64)
        rx.notes[rx.nnotes++] = nt;
    pthread_mutex_unlock(&rx.mu);
}

static void handle(int c)
{
    static char buf[1 << 17];
    size_t n = 0;
    char *end = NULL;
    size_t want = 0;
    for (;;) {
        ssize_t k = recv(c, buf + n, sizeof(buf) - 1 - n, 0);
        if (k <= 0)
            return;
        n += (size_t)k;
        buf[n] = '\0';
        if ((end = strstr(buf, "\r\n\r\n")) == NULL)
            continue;
        const char *cl = strcasestr(buf, "\r\nContent-Length:");
        want = cl ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
        if (n >= (size_t)(end + 4 - buf) + want)
            break;
    }
    int mode = atomic_load(&rx.mode);
    if (mode == DROP && atomic_fetch_sub(&rx.drops_left, 1) > 0)
        return; /* closed unanswered: the receiver is down */
    while (mode == HANG && !atomic_load(&rx.stop))
        mode = atomic_load(&rx.mode), usleep(5000);
    *end = '\0';
    char sig[1024] = "";
    const char *h = strcasestr(buf, "\r\nZTB-Signature: ");
    if (h != NULL)
        snprintf(sig, sizeof(sig), "%.*s", (int)strcspn(h + 17, "\r\n"), h + 17);
    const char *body = end + 4;
    int ok = authentic(body, want, sig);
    if (ok)
        record(body, want);
    else
        atomic_fetch_add(&rx.bad, 1);
    const char *ans = ok ? "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
                         : "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
    (void)!send(c, ans, strlen(ans), MSG_NOSIGNAL);
}

static void *serve(void *arg)
{
    (void)arg;
    while (!atomic_load(&rx.stop)) {
        int c = accept(rx.fd, NULL, NULL);
        if (c < 0)
            continue;
        atomic_fetch_add(&rx.attempts, 1);
        if (!atomic_load(&rx.stop))
            handle(c);
        close(c);
    }
    return NULL;
}

static void receiver_start(void)
{
    pthread_mutex_init(&rx.mu, NULL);
    rx.fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(rx.fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(rx.fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(rx.fd, (struct sockaddr *)&a, &al), 0);
    rx.port = ntohs(a.sin_port);
    assert_int_equal(listen(rx.fd, 64), 0);
    assert_int_equal(pthread_create(&rx.t, NULL, serve, NULL), 0);
}

static void receiver_stop(void)
{
    atomic_store(&rx.stop, 1);
    shutdown(rx.fd, SHUT_RDWR);
    close(rx.fd);
    pthread_join(rx.t, NULL);
}

/* Wait (up to ms) for a notification of event about approval id; 1 if it came. */
static int wait_note(const char *event, const char *id, int ms, struct note *out)
{
    for (int waited = 0; waited <= ms; waited += 20) {
        pthread_mutex_lock(&rx.mu);
        for (size_t i = 0; i < rx.nnotes; i++)
            if (strcmp(rx.notes[i].event, event) == 0 && strcmp(rx.notes[i].approval, id) == 0) {
                if (out != NULL)
                    *out = rx.notes[i];
                pthread_mutex_unlock(&rx.mu);
                return 1;
            }
        pthread_mutex_unlock(&rx.mu);
        usleep(20000);
    }
    return 0;
}

/* ---- the agent and the operator ------------------------------------------------ */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Ask to isolate host; the pending approval's id into id. */
static void isolate(const char *host, char *id, size_t cap)
{
    char form[2048];
    snprintf(form, sizeof(form),
             "grant_type=%s&client_assertion_type=%s&client_assertion=%s&audience=ops"
             "&scope=hosts%%3Aisolate&resource=hosts%%2F%s",
             GRANT, ZA_SESSION_TYPE, bot.session, host);
    struct zh_resp r;
    za_post_form(&b, "/v1/token", form, &r);
    za_expect_error(&r, 400, "authorization_pending");
    json_t *j = za_json(&r);
    snprintf(id, cap, "%s", json_string_value(json_object_get(j, "approval_id")));
    json_decref(j);
    zh_resp_free(&r);
}

static long metric(const char *name)
{
    struct zh_resp r;
    assert_int_equal(zh_get(&b, "/metrics", &r), 0);
    const char *p = r.body;
    long v = -1;
    size_t n = strlen(name);
    while ((p = strstr(p, name)) != NULL) {
        if ((p == r.body || p[-1] == '\n') && p[n] == ' ') {
            v = strtol(p + n + 1, NULL, 10);
            break;
        }
        p += n;
    }
    zh_resp_free(&r);
    return v;
}

/* ---- the tests ---------------------------------------------------------------- */

static void test_pending_arrives_signed(void **state)
{
    (void)state;
    atomic_store(&rx.mode, ANSWER);
    char id[64];
    isolate("web-1", id, sizeof(id));
    struct note nt;
    if (!wait_note("approval.requested", id, 5000, &nt))
        fail_msg("no signed approval.requested for %s (bad: %d)", id, atomic_load(&rx.bad));
    assert_string_equal(nt.agent, "bot");
    assert_string_equal(nt.action, "hosts:isolate");
    assert_string_equal(nt.rule, "isolate");
    assert_string_equal(nt.iss, b.url);
    /* the same request again shares the approval: no second notification */
    char again[64];
    isolate("web-1", again, sizeof(again));
    assert_string_equal(id, again);
    /* approved: the resolution arrives too */
    char path[128];
    snprintf(path, sizeof(path), "/v1/approvals/%s/approve", id);
    struct zh_resp r;
    assert_int_equal(zh_admin(&b, "POST", path, "{}", &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
    assert_true(wait_note("approval.approved", id, 5000, NULL));
    pthread_mutex_lock(&rx.mu);
    size_t requested = 0;
    for (size_t i = 0; i < rx.nnotes; i++)
        requested += strcmp(rx.notes[i].approval, id) == 0 &&
                     strcmp(rx.notes[i].event, "approval.requested") == 0;
    pthread_mutex_unlock(&rx.mu);
    assert_int_equal(requested, 1);
    assert_int_equal(atomic_load(&rx.bad), 0);
}

static void test_delivered_after_retry(void **state)
{
    (void)state;
    long retries = metric("ztb_approval_webhook_retries_total");
    assert_true(retries >= 0);
    atomic_store(&rx.drops_left, 2);
    atomic_store(&rx.mode, DROP);
    int before = atomic_load(&rx.attempts);
    char id[64];
    isolate("db-1", id, sizeof(id));
    if (!wait_note("approval.requested", id, 5000, NULL))
        fail_msg("not delivered after the receiver came back (attempts %d)",
                 atomic_load(&rx.attempts) - before);
    assert_true(atomic_load(&rx.attempts) - before >= 3);
    assert_true(metric("ztb_approval_webhook_retries_total") >= retries + 2);
    assert_true(metric("ztb_approval_webhook_delivered_total") >= 2);
    atomic_store(&rx.mode, ANSWER);
}

static void test_hanging_receiver_does_not_slow_tokens(void **state)
{
    (void)state;
    atomic_store(&rx.mode, HANG);
    char id[64];
    uint64_t worst = 0, t0 = now_ms();
    for (int i = 0; i < 5; i++) {
        char host[32];
        snprintf(host, sizeof(host), "cache-%d", i);
        uint64_t s = now_ms();
        isolate(host, id, sizeof(id));
        uint64_t d = now_ms() - s;
        worst = d > worst ? d : worst;
    }
    uint64_t total = now_ms() - t0;
    /* each attempt waits 1500 ms for the hanging receiver; a request that
     * waited for it would take that long */
    if (worst >= 1000 || total >= 1500)
        fail_msg("token path waited for the webhook: worst %llu ms, total %llu ms",
                 (unsigned long long)worst, (unsigned long long)total);
    atomic_store(&rx.mode, ANSWER); /* the queue drains once it answers */
    assert_true(wait_note("approval.requested", id, 8000, NULL));
}

static void test_clear_text_webhook_refused(void **state)
{
    (void)state;
    char cmd[1024], dir[256];
    zh_tmpdir(dir, sizeof(dir));
    snprintf(cmd, sizeof(cmd),
             "%s --state-dir %s --listen 127.0.0.1:0 --approval-webhook http://192.0.2.7/hook "
             "> %s/out 2>&1",
             zh_bin("ztb-broker"), dir, dir);
    int st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    snprintf(cmd, sizeof(cmd), "grep -q 'approval_webhook: http:// to 192.0.2.7' %s/out", dir);
    assert_int_equal(system(cmd), 0);
    zh_rmtree(dir);
}

static int setup(void **state)
{
    (void)state;
    receiver_start();
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/hook", rx.port);
    const char *args[] = {"--approval-webhook",
                          url,
                          "--approval-webhook-resolutions",
                          "1",
                          "--approval-webhook-backoff-ms",
                          "100",
                          "--approval-webhook-timeout-ms",
                          "1500",
                          NULL};
    zh_redis_start(&rd);
    const struct zh_broker_opts o = {
        .redis_url = rd.url, .with_keys = 1, .policy = policy_doc, .extra_args = args};
    zh_broker_start(&b, &o);
    struct zh_resp r;
    assert_int_equal(zh_get(&b, "/.well-known/jwks.json", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(ztb_jwks_parse(r.body, strlen(r.body), 0, &jwks), ZTB_OK);
    zh_resp_free(&r);
    za_enroll(&b, &bot, "bot");
    assert_int_equal(zh_admin(&b, "POST", "/v1/approvers/sre/add", "{\"user\":\"root\"}", &r), 0);
    assert_int_equal(r.status, 200);
    zh_resp_free(&r);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    za_free(&bot);
    assert_int_equal(zh_broker_stop(&b), 0);
    zh_redis_stop(&rd, 1);
    receiver_stop();
    ztb_keyset_free(jwks);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_arrives_signed),
        cmocka_unit_test(test_delivered_after_retry),
        cmocka_unit_test(test_hanging_receiver_does_not_slow_tokens),
        cmocka_unit_test(test_clear_text_webhook_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

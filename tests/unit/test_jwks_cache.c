/*
 * test_jwks_cache.c - keys from a URL (Cache-Control, refetch on an unknown
 * kid at most once per interval) and from a file (re-read on change,
 * permission checks); keys not confirmed within max-age plus a margin are
 * stale.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "pki/jwk.h"
#include "sdk/src/clock.h"
#include "sdk/src/jwks_cache.h"
#include "sdk_test.h"

struct host {
    char jwks[8192];
    char cache_control[64];
    unsigned status;
};

static void handler(void *ud, const struct st_req *rq, struct st_resp *rs)
{
    struct host *h = ud;
    if (strcmp(rq->url, "/jwks") != 0)
        return;
    st_resp_json(rs, h->status, h->jwks);
    if (h->cache_control[0])
        st_resp_header(rs, "Cache-Control", h->cache_control);
}

static void render(ztb_key *const *keys, size_t n, char *out, size_t cap)
{
    ztb_buf b;
    ztb_buf_init_fixed(&b, out, cap);
    assert_int_equal(ztb_jwks_render((const ztb_key *const *)keys, n, &b), ZTB_OK);
}

static int has_kid(const ztb_keyset *ks, const ztb_key *k)
{
    return ztb_keyset_find(ks, ztb_key_kid(k), ZTB_KID_LEN) != NULL;
}

static void test_url_source(void **state)
{
    (void)state;
    ztb_key *k1, *k2;
    assert_int_equal(ztb_key_generate(&k1), ZTB_OK);
    assert_int_equal(ztb_key_generate(&k2), ZTB_OK);
    struct host h = {.status = 200};
    render(&k1, 1, h.jwks, sizeof(h.jwks));
    snprintf(h.cache_control, sizeof(h.cache_control), "public, max-age=3600");
    struct st_server s;
    st_server_start(&s, handler, &h);
    struct http_client *http;
    assert_int_equal(http_client_new(NULL, &http), ZTB_OK);
    char url[128];
    snprintf(url, sizeof(url), "%s/jwks", s.base);
    struct jwks_cache_opts o = {.url = url, .http = http, .refetch_s = 2};
    struct jwks_cache *c;
    char err[256];
    assert_int_equal(jwks_cache_new(&o, &c, err, sizeof(err)), ZTB_OK);
    uint64_t e1;
    const ztb_keyset *ks = jwks_cache_keyset(c, &e1);
    assert_true(has_kid(ks, k1));
    assert_int_equal(jwks_cache_key_count(c), 1);
    assert_int_equal(jwks_cache_fetches(c), 1);

    /* a rotation: the broker publishes k2; the first token with its kid fetches it */
    ztb_key *both[2] = {k1, k2};
    pthread_mutex_lock(&s.mu);
    render(both, 2, h.jwks, sizeof(h.jwks));
    pthread_mutex_unlock(&s.mu);
    assert_int_equal(jwks_cache_unknown_kid(c, e1), 1);
    uint64_t e2;
    ks = jwks_cache_keyset(c, &e2);
    assert_true(e2 != e1);
    assert_true(has_kid(ks, k1) && has_kid(ks, k2));
    assert_int_equal(jwks_cache_fetches(c), 2);
    /* made-up kids right after: no fetch, refused */
    for (int i = 0; i < 100; i++)
        assert_int_equal(jwks_cache_unknown_kid(c, e2), 0);
    assert_int_equal(jwks_cache_fetches(c), 2);
    /* a stale epoch means a newer set exists already */
    assert_int_equal(jwks_cache_unknown_kid(c, e1), 1);
    /* after the interval one more fetch is allowed; the same keys do not move the epoch */
    clock_sleep_ms(2100);
    assert_int_equal(jwks_cache_unknown_kid(c, e2), 0);
    assert_int_equal(jwks_cache_fetches(c), 3);
    uint64_t e3;
    (void)jwks_cache_keyset(c, &e3);
    assert_true(e3 == e2);

    /* the broker is down: the keys stay */
    pthread_mutex_lock(&s.mu);
    h.status = 503;
    pthread_mutex_unlock(&s.mu);
    char why[600];
    assert_int_equal(jwks_cache_last_fetch_failed(c, why, sizeof(why)), 0);
    assert_int_equal(jwks_cache_refresh(c), ZTB_ERR_UNAVAILABLE);
    ks = jwks_cache_keyset(c, &e3);
    assert_true(has_kid(ks, k2));
    /* and says so, with the reason, until a fetch succeeds */
    assert_int_equal(jwks_cache_last_fetch_failed(c, why, sizeof(why)), 1);
    assert_non_null(strstr(why, "unexpected HTTP status"));
    pthread_mutex_lock(&s.mu);
    h.status = 200;
    pthread_mutex_unlock(&s.mu);
    assert_int_equal(jwks_cache_refresh(c), ZTB_OK);
    assert_int_equal(jwks_cache_last_fetch_failed(c, why, sizeof(why)), 0);
    jwks_cache_free(c);

    /* max-age drives the refresher, never held back by the 2 s refetch
     * interval (that paces unknown kids): with max-age=1 it refetches every
     * second */
    pthread_mutex_lock(&s.mu);
    h.status = 200;
    snprintf(h.cache_control, sizeof(h.cache_control), "max-age=1");
    pthread_mutex_unlock(&s.mu);
    assert_int_equal(jwks_cache_new(&o, &c, err, sizeof(err)), ZTB_OK);
    clock_sleep_ms(4500);
    assert_true(jwks_cache_fetches(c) >= 4);
    assert_true(jwks_cache_fetches(c) <= 6);
    jwks_cache_free(c);

    /* start-up failures */
    pthread_mutex_lock(&s.mu);
    snprintf(h.jwks, sizeof(h.jwks), "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}");
    pthread_mutex_unlock(&s.mu);
    assert_int_equal(jwks_cache_new(&o, &c, err, sizeof(err)), ZTB_ERR_JWKS);
    assert_non_null(strstr(err, "invalid document"));
    pthread_mutex_lock(&s.mu);
    h.status = 404;
    pthread_mutex_unlock(&s.mu);
    assert_int_equal(jwks_cache_new(&o, &c, err, sizeof(err)), ZTB_ERR_UNAVAILABLE);
    http_client_free(http);
    st_server_stop(&s);
    ztb_key_free(k1);
    ztb_key_free(k2);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    char tmp[700];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(tmp, mode);
    assert_int_equal(rename(tmp, path), 0);
}

static void test_file_source(void **state)
{
    (void)state;
    ztb_key *k1, *k2;
    assert_int_equal(ztb_key_generate(&k1), ZTB_OK);
    assert_int_equal(ztb_key_generate(&k2), ZTB_OK);
    char *dir = st_tmpdir();
    char path[600], text[8192];
    snprintf(path, sizeof(path), "%s/jwks.json", dir);
    render(&k1, 1, text, sizeof(text));
    write_file(path, text, 0644);
    struct jwks_cache_opts o = {.file = path, .refetch_s = 1};
    struct jwks_cache *c;
    char err[256];
    assert_int_equal(jwks_cache_new(&o, &c, err, sizeof(err)), ZTB_OK);
    uint64_t e1;
    assert_true(has_kid(jwks_cache_keyset(c, &e1), k1));
    /* replaced (as config tools do: a new inode): the next unknown kid reads it */
    render(&k2, 1, text, sizeof(text));
    write_file(path, text, 0600);
    assert_int_equal(jwks_cache_unknown_kid(c, e1), 1);
    uint64_t e2;
    assert_true(has_kid(jwks_cache_keyset(c, &e2), k2));
    /* unchanged: a refresh does not read it again */
    uint64_t n = jwks_cache_fetches(c);
    assert_int_equal(jwks_cache_refresh(c), ZTB_OK);
    assert_int_equal(jwks_cache_fetches(c), n);
    jwks_cache_free(c);

    /* writable by others: refused */
    chmod(path, 0666);
    assert_int_equal(jwks_cache_new(&o, &c, err, sizeof(err)), ZTB_ERR_PERMISSION);
    assert_non_null(strstr(err, "writable"));
    unlink(path);
    assert_int_equal(jwks_cache_new(&o, &c, err, sizeof(err)), ZTB_ERR_NOT_FOUND);
    st_rmdir(dir);
    ztb_key_free(k1);
    ztb_key_free(k2);
}

/*
 * Keys are trusted only while confirmed: a file that can no longer be read
 * leaves the last keys stale after the default max-age plus the margin; a
 * file found unchanged confirms them again.
 */
static void test_stale_keys(void **state)
{
    (void)state;
    ztb_key *k1;
    assert_int_equal(ztb_key_generate(&k1), ZTB_OK);
    char *dir = st_tmpdir();
    char path[600], text[8192], why[256];
    snprintf(path, sizeof(path), "%s/jwks.json", dir);
    render(&k1, 1, text, sizeof(text));
    write_file(path, text, 0644);
    struct jwks_cache_opts o = {.file = path};
    struct jwks_cache *c;
    assert_int_equal(jwks_cache_new(&o, &c, why, sizeof(why)), ZTB_OK);
    const int64_t limit_ms = (JWKS_DEFAULT_MAX_AGE_S + JWKS_STALE_MARGIN_S) * 1000;
    assert_int_equal(jwks_cache_fresh(c, why, sizeof(why)), ZTB_OK);
    clock_set_mono_offset_for_test(limit_ms - 2000);
    assert_int_equal(jwks_cache_fresh(c, why, sizeof(why)), ZTB_OK);
    /* unchanged and readable: confirmed again, good for as long again */
    assert_int_equal(jwks_cache_refresh(c), ZTB_OK);
    clock_set_mono_offset_for_test(2 * limit_ms - 4000);
    assert_int_equal(jwks_cache_fresh(c, why, sizeof(why)), ZTB_OK);
    /* gone: the last keys go stale, with the reason */
    unlink(path);
    assert_int_not_equal(jwks_cache_refresh(c), ZTB_OK);
    clock_set_mono_offset_for_test(2 * limit_ms);
    assert_int_equal(jwks_cache_fresh(c, why, sizeof(why)), ZTB_ERR_UNAVAILABLE);
    assert_non_null(strstr(why, "JWKS stale"));
    assert_non_null(strstr(why, "jwks.json"));
    clock_set_mono_offset_for_test(0);
    jwks_cache_free(c);
    st_rmdir(dir);
    ztb_key_free(k1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_source),
        cmocka_unit_test(test_file_source),
        cmocka_unit_test(test_stale_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

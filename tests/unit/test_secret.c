/*
 * test_secret.c - wipe, constant-time compare, randomness, no core dumps,
 * jansson wiping what it frees (free is wrapped at link time, see
 * common/CMakeLists.txt, to look at each block as it is released).
 */
#define _GNU_SOURCE /* memmem */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/secret.h"

#define SECRET_MARK "ztbj_notwipedyet"

void __real_free(void *p);
void __wrap_free(void *p);

static int watching; /* 1: count blocks released with SECRET_MARK inside */
static int unwiped, released;

void __wrap_free(void *p)
{
    if (p != NULL && watching) {
        released++;
        if (memmem(p, malloc_usable_size(p), SECRET_MARK, strlen(SECRET_MARK)) != NULL)
            unwiped++;
    }
    __real_free(p);
}

static void test_wipe(void **state)
{
    (void)state;
    uint8_t key[32];
    memset(key, 0xa5, sizeof(key));
    ztb_wipe(key, sizeof(key));
    for (size_t i = 0; i < sizeof(key); i++)
        assert_int_equal(key[i], 0);
    ztb_wipe(NULL, 10); /* no crash */
    ztb_wipe(key, 0);
}

static void test_ct_eq(void **state)
{
    (void)state;
    uint8_t a[64], b[64];
    memset(a, 7, sizeof(a));
    memset(b, 7, sizeof(b));
    assert_true(ztb_ct_eq(a, b, sizeof(a)));
    /* a difference in any position, including first and last, is seen */
    for (size_t i = 0; i < sizeof(b); i++) {
        b[i] ^= 0x80;
        assert_false(ztb_ct_eq(a, b, sizeof(a)));
        b[i] ^= 0x80;
    }
    assert_true(ztb_ct_eq(a, b, 0));
    assert_true(ztb_ct_eq_len("abc", 3, "abc", 3));
    assert_false(ztb_ct_eq_len("abc", 3, "abcd", 4));
    assert_false(ztb_ct_eq_len("abc", 3, "abd", 3));
    assert_true(ztb_ct_eq_len("", 0, "", 0));
}

static void test_random(void **state)
{
    (void)state;
    uint8_t a[32] = {0}, b[32] = {0};
    assert_int_equal(ztb_random(a, sizeof(a)), ZTB_OK);
    assert_int_equal(ztb_random(b, sizeof(b)), ZTB_OK);
    assert_false(ztb_ct_eq(a, b, sizeof(a)));
    assert_int_equal(ztb_random(NULL, 0), ZTB_OK);
    assert_int_equal(ztb_random(NULL, 4), ZTB_ERR_INVALID_ARG);
    assert_int_equal(ztb_random(a, (size_t)1 << 40), ZTB_ERR_INVALID_ARG);
}

static void test_free_secret(void **state)
{
    (void)state;
    char *s = strdup("ztbj_join-token-value");
    ztb_free_secret_str(s);
    ztb_free_secret_str(NULL);
    void *p = malloc(16);
    memset(p, 1, 16);
    ztb_free_secret(p, 16);
    ztb_free_secret(NULL, 5);
}

/* In a child (the change is for good): no core limit left, not dumpable. */
static void test_no_core_dumps(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit lim;
        if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0 || prctl(PR_GET_DUMPABLE) != 1)
            _exit(1);
        if (ztb_no_core_dumps() != ZTB_OK)
            _exit(2);
        if (prctl(PR_GET_DUMPABLE) != 0)
            _exit(3);
        if (getrlimit(RLIMIT_CORE, &lim) != 0 || lim.rlim_cur != 0 || lim.rlim_max != 0)
            _exit(4);
        /* the hard limit is gone too: it cannot be raised again */
        lim.rlim_cur = lim.rlim_max = 4096;
        if (geteuid() != 0 && setrlimit(RLIMIT_CORE, &lim) == 0)
            _exit(5);
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/*
 * After ztb_json_wipe_on_free, jansson releases its blocks through a free
 * that wipes them first: a JSON string holding a join token, the object
 * holding it and the text json_dumps made of it are zeros when released.
 */
static void test_json_wipe_on_free(void **state)
{
    (void)state;
    ztb_json_wipe_on_free();
    json_malloc_t m;
    json_free_t f;
    json_get_alloc_funcs(&m, &f);
    assert_true(f != free); /* installed: jansson's frees now come through here */
    json_t *j = json_pack("{s:s}", "join_token", SECRET_MARK "0123456789abcdef");
    assert_non_null(j);
    char *text = json_dumps(j, JSON_COMPACT);
    assert_non_null(text);
    assert_non_null(strstr(text, SECRET_MARK));
    unwiped = released = 0;
    watching = 1;
    json_decref(j);
    f(text); /* as a caller of json_dumps releases it */
    watching = 0;
    assert_true(released >= 2);
    assert_int_equal(unwiped, 0);
    json_set_alloc_funcs(malloc, free);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wipe),          cmocka_unit_test(test_ct_eq),
        cmocka_unit_test(test_random),        cmocka_unit_test(test_free_secret),
        cmocka_unit_test(test_no_core_dumps), cmocka_unit_test(test_json_wipe_on_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

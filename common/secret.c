/*
 * secret.c - wipe, constant-time compare, random bytes, no core dumps (see
 * secret.h).
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "guard.h"
#include "secret.h"

void ztb_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

int ztb_ct_eq(const void *a, const void *b, size_t n)
{
    if (n == 0)
        return 1;
    return CRYPTO_memcmp(a, b, n) == 0;
}

int ztb_ct_eq_len(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen)
        return 0;
    return ztb_ct_eq(a, b, alen);
}

ztb_err ztb_random(void *out, size_t n)
{
    ZTB_ENSURE(out != NULL || n == 0, ZTB_ERR_INVALID_ARG);
    ZTB_ENSURE(n <= (size_t)0x7fffffff, ZTB_ERR_INVALID_ARG);
    if (n == 0)
        return ZTB_OK;
    ZTB_ENSURE(RAND_bytes(out, (int)n) == 1, ZTB_ERR_CRYPTO);
    return ZTB_OK;
}

void ztb_free_secret(void *p, size_t n)
{
    if (p == NULL)
        return;
    ztb_wipe(p, n);
    free(p);
}

/* jansson's allocator for ztb_json_wipe_on_free: malloc_usable_size gives
 * the block's real size, so nothing is missed. */
static void *json_alloc(size_t n)
{
    return malloc(n);
}

static void json_free_wiped(void *p)
{
    if (p != NULL) {
        ztb_wipe(p, malloc_usable_size(p));
        free(p);
    }
}

void ztb_json_wipe_on_free(void)
{
    json_set_alloc_funcs(json_alloc, json_free_wiped);
}

void ztb_free_secret_str(char *s)
{
    if (s == NULL)
        return;
    ztb_free_secret(s, strlen(s) + 1);
}

ztb_err ztb_no_core_dumps(void)
{
    const struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0)
        return ZTB_ERR_IO;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return ZTB_ERR_IO;
    return ZTB_OK;
}

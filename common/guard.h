/*
 * guard.h - one-line error paths.
 *
 * Every function in ztb that can fail returns a ztb_err. These macros keep the
 * error path of each call to one line, in the spirit of s2n's GUARD/ENSURE:
 *
 *   ZTB_GUARD(expr)             return expr's error if it is not ZTB_OK
 *   ZTB_ENSURE(cond, err)       return err unless cond holds
 *   ZTB_TRY(rv, expr)           rv = expr; on error goto out (the cleanup label)
 *   ZTB_CHECK(rv, cond, err)    unless cond: rv = err; goto out
 *   ZTB_OSSL(rv, expr)          OpenSSL's 1-on-success: else rv = CRYPTO; goto out
 *
 * Functions that own resources have exactly one cleanup label named `out`.
 */
#ifndef ZTB_GUARD_H
#define ZTB_GUARD_H

#include <ztb/error.h>

#define ZTB_GUARD(expr)                                                                            \
    do {                                                                                           \
        ztb_err ztb_guard_e_ = (expr);                                                             \
        if (ztb_guard_e_ != ZTB_OK)                                                                \
            return ztb_guard_e_;                                                                   \
    } while (0)

#define ZTB_ENSURE(cond, err)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return (err);                                                                          \
    } while (0)

#define ZTB_TRY(rv, expr)                                                                          \
    do {                                                                                           \
        (rv) = (expr);                                                                             \
        if ((rv) != ZTB_OK)                                                                        \
            goto out;                                                                              \
    } while (0)

#define ZTB_CHECK(rv, cond, err)                                                                   \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            (rv) = (err);                                                                          \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

#define ZTB_OSSL(rv, expr) ZTB_CHECK(rv, (expr) == 1, ZTB_ERR_CRYPTO)

#define ZTB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif /* ZTB_GUARD_H */

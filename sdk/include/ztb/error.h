/*
 * ztb/error.h - the stable error codes of ztb.
 *
 * Every function of libztb that can fail returns a ztb_err. ZTB_OK is 0; every
 * other value names one reason. The numbers are part of the ABI: they never
 * move and are never reused. New codes are appended inside their range:
 *
 *     0- 99  general (memory, arguments, I/O, encoding)
 *   100-199  JWS / JWK / keys
 *   200-299  token claims and bindings (what a gateway verifier checks)
 *   300-399  agent / broker protocol
 *   400-499  certificates and enrollment
 *   500-599  policy
 *
 * ztb_strerror() returns a short static English description; it never returns
 * NULL, also for numbers it does not know.
 */
#ifndef ZTB_ERROR_H
#define ZTB_ERROR_H

#include <ztb/export.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ztb_err {
    ZTB_OK = 0,

    /* general */
    ZTB_ERR_NOMEM = 1,        /* an allocation failed */
    ZTB_ERR_INVALID_ARG = 2,  /* a caller passed a NULL or out-of-range argument */
    ZTB_ERR_TRUNCATED = 3,    /* input ended before a complete item */
    ZTB_ERR_TOO_LARGE = 4,    /* input or output over its size limit */
    ZTB_ERR_MALFORMED = 5,    /* input does not have the required syntax */
    ZTB_ERR_BASE64 = 6,       /* not strict unpadded base64url */
    ZTB_ERR_JSON = 7,         /* invalid JSON, wrong type or duplicate key */
    ZTB_ERR_IO = 8,           /* a file or socket operation failed */
    ZTB_ERR_CRYPTO = 9,       /* the crypto library failed (not a bad signature) */
    ZTB_ERR_INTERNAL = 10,    /* a bug: an invariant did not hold */
    ZTB_ERR_UNAVAILABLE = 11, /* a service (Redis, broker) cannot answer now */
    ZTB_ERR_TIMEOUT = 12,     /* an operation did not finish in time */
    ZTB_ERR_PERMISSION = 13,  /* file mode, ownership or access refused */
    ZTB_ERR_NOT_FOUND = 14,   /* no such key, agent, file or entry */
    ZTB_ERR_EXISTS = 15,      /* the item already exists */
    ZTB_ERR_STATE = 16,       /* the operation is not valid in the current state */
    ZTB_ERR_UNSUPPORTED = 17, /* a valid request this build does not support */

    /* the audit log cannot record a decision now: it was not made (retry) */
    ZTB_ERR_AUDIT_UNAVAILABLE = 18,

    /* JWS / JWK / keys */
    ZTB_ERR_JWS_FORMAT = 100,       /* not three dot-separated segments */
    ZTB_ERR_JWS_HEADER = 101,       /* header is not a valid JOSE header */
    ZTB_ERR_ALG = 102,              /* alg differs from the key's pinned alg */
    ZTB_ERR_UNKNOWN_KID = 103,      /* no key with this kid */
    ZTB_ERR_FORBIDDEN_HEADER = 104, /* jwk, jku, x5u, x5c or crit present */
    ZTB_ERR_SIG_FORMAT = 105,       /* signature not raw r||s of the right length */
    ZTB_ERR_SIGNATURE = 106,        /* the signature does not verify */
    ZTB_ERR_KEY = 107,              /* a key is unusable (type, curve, parse) */
    ZTB_ERR_JWKS = 108,             /* a JWKS document is invalid */
    ZTB_ERR_NO_ACTIVE_KEY = 109,    /* the key store has no active signing key */
    ZTB_ERR_PASSPHRASE = 110,       /* key file cannot be decrypted */

    /* token claims and bindings */
    ZTB_ERR_TYP = 200,              /* typ is not at+jwt */
    ZTB_ERR_ISSUER = 201,           /* iss is not the expected issuer */
    ZTB_ERR_AUDIENCE = 202,         /* aud is not the expected audience */
    ZTB_ERR_EXPIRED = 203,          /* exp is in the past (beyond the skew) */
    ZTB_ERR_NOT_YET_VALID = 204,    /* nbf is in the future (beyond the skew) */
    ZTB_ERR_IAT = 205,              /* iat missing, in the future, or too old */
    ZTB_ERR_CLAIMS = 206,           /* a required claim is missing or mistyped */
    ZTB_ERR_ACTION = 207,           /* the token is for another action */
    ZTB_ERR_RESOURCE = 208,         /* the token is for another resource */
    ZTB_ERR_BINDING = 209,          /* cnf binding required, absent or mismatched */
    ZTB_ERR_DPOP = 210,             /* the DPoP proof is invalid */
    ZTB_ERR_DPOP_REPLAY = 211,      /* the DPoP proof jti was seen before */
    ZTB_ERR_REVOKED = 212,          /* this token (jti) is revoked */
    ZTB_ERR_AGENT_REVOKED = 213,    /* the agent's generation moved on */
    ZTB_ERR_AUDIENCE_KILLED = 214,  /* the audience is disabled */
    ZTB_ERR_KEY_TAINTED = 215,      /* the signing key is tainted */
    ZTB_ERR_REPLAY = 216,           /* a single-use token was already used */
    ZTB_ERR_REVOCATION_STALE = 217, /* revocation state is not current */
    ZTB_ERR_SINGLE_USE = 218,       /* single-use token, and no shared store to consume it */

    /* agent / broker protocol */
    ZTB_ERR_HTTP = 300,              /* unexpected HTTP status or transport error */
    ZTB_ERR_INVALID_CLIENT = 301,    /* the broker refused the agent's credentials */
    ZTB_ERR_ACCESS_DENIED = 302,     /* policy denied the action */
    ZTB_ERR_RATE_LIMITED = 303,      /* rate limit hit; retry later */
    ZTB_ERR_APPROVAL_REQUIRED = 304, /* a human must approve first */
    ZTB_ERR_QUARANTINED = 305,       /* the agent is quarantined */
    ZTB_ERR_INVALID_REQUEST = 306,   /* the broker found the request malformed */
    ZTB_ERR_INVALID_SCOPE = 307,     /* unknown or malformed action */
    ZTB_ERR_APPROVAL_PENDING = 308,  /* waiting for a human's approval: poll it */
    ZTB_ERR_APPROVAL_DENIED = 309,   /* an approver denied the request */
    ZTB_ERR_APPROVAL_EXPIRED = 310,  /* the approval expired (or was used) */

    /* certificates and enrollment */
    ZTB_ERR_CSR = 400,        /* the CSR is invalid or unacceptable */
    ZTB_ERR_CERT = 401,       /* a certificate is invalid */
    ZTB_ERR_CERT_CHAIN = 402, /* the chain does not lead to the agent CA */
    ZTB_ERR_SPIFFE_ID = 403,  /* not a valid SPIFFE ID for this trust domain */
    ZTB_ERR_JOIN_TOKEN = 404, /* join token unknown, used or expired */

    /* policy */
    ZTB_ERR_POLICY = 500, /* the policy document is invalid */
} ztb_err;

/*
 * ztb_strerror - a short static description of err, e.g. "signature does not
 * verify". Never NULL; unknown numbers give "unknown error". Thread-safe.
 */
ZTB_API const char *ztb_strerror(ztb_err err);

/*
 * ztb_err_name - the enum name of err without prefix, e.g. "SIGNATURE", for
 * logs and JSON. Never NULL; unknown numbers give "UNKNOWN". Thread-safe.
 */
ZTB_API const char *ztb_err_name(ztb_err err);

#ifdef __cplusplus
}
#endif

#endif /* ZTB_ERROR_H */

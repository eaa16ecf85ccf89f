/*
 * signer_msg.h - the messages between the broker's HTTP process and its
 * signer process (broker/signer/signer.h), and their exact checks.
 *
 * Every message is one fixed-size C struct sent as one SOCK_SEQPACKET
 * record over a socketpair; both ends are the same executable, so the
 * layout is the wire format (no padding: checked at compile time). A record
 * of any other length, another version, an unknown operation, flags or
 * fields an operation does not use, or a malformed kid is refused whole:
 * nothing in it is looked at further. The model is relayd's ca.c, which
 * checks every imsg's size exactly.
 *
 *   op        request fields used          answer
 *   SIGN      kid, count 1..8 digests      signer_resp: count 64-byte r||s by kid
 *   MAC       count 1, digest              signer_resp: 32-byte HMAC-SHA256
 *   CA_SIGN   count 1, digest              signer_resp: DER ECDSA signature
 *   STATE     now                          signer_state: JWKS, active kid, limits
 *   LIST      -                            signer_state: key list JSON
 *   ROTATE    now, flags (FORCE)           signer_resp: action, kid, promotable_at
 *   RETIRE    kid, now, flags (FORCE)      signer_resp
 *
 * A digest is a SHA-256 made by the HTTP process: the signer never parses
 * what it signs, and returns nothing but signatures and public data.
 */
#ifndef ZTB_BROKER_SIGNER_MSG_H
#define ZTB_BROKER_SIGNER_MSG_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#define SIGNER_PROTO_VERSION 1u
#define SIGNER_KID_FIELD     48 /* a 43-character kid, NUL, zero padding */
#define SIGNER_BATCH_MAX     8  /* digests in one SIGN: concurrent tokens share a trip */
#define SIGNER_DATA_MAX      (SIGNER_BATCH_MAX * 64)
#define SIGNER_TEXT_MAX      (60 * 1024)
#define SIGNER_ERRMSG_MAX    256

enum signer_op {
    SIGNER_OP_SIGN = 1,
    SIGNER_OP_MAC = 2,
    SIGNER_OP_CA_SIGN = 3,
    SIGNER_OP_STATE = 4,
    SIGNER_OP_LIST = 5,
    SIGNER_OP_ROTATE = 6,
    SIGNER_OP_RETIRE = 7,
};

#define SIGNER_F_FORCE 0x1u

struct signer_req {
    uint32_t version;  /* SIGNER_PROTO_VERSION */
    uint32_t op;       /* enum signer_op */
    uint32_t seq;      /* echoed: a late answer to an abandoned call is dropped */
    uint32_t flags;    /* SIGNER_F_FORCE for ROTATE and RETIRE, else 0 */
    int64_t now;       /* STATE, ROTATE, RETIRE: > 0; else 0 */
    uint32_t count;    /* digests used: SIGN 1..SIGNER_BATCH_MAX, MAC and CA_SIGN 1, else 0 */
    uint32_t reserved; /* 0 */
    char kid[SIGNER_KID_FIELD];
    uint8_t digest[SIGNER_BATCH_MAX][32]; /* unused ones all zero */
};

/* The answer to SIGN, MAC, CA_SIGN, ROTATE and RETIRE. */
struct signer_resp {
    uint32_t version;
    uint32_t op;
    uint32_t seq;
    int32_t err;     /* ztb_err; nothing else is meaningful unless ZTB_OK (kid may be) */
    uint32_t len;    /* bytes of data */
    uint32_t action; /* ROTATE: ztb_rotate_action */
    int64_t promotable_at;
    char kid[SIGNER_KID_FIELD]; /* SIGN: the signing kid or, refused, the active one */
    uint8_t data[SIGNER_DATA_MAX];
};

/* The answer to STATE and LIST: public data only. */
struct signer_state {
    uint32_t version;
    uint32_t op;
    uint32_t seq;
    int32_t err;
    uint32_t len; /* bytes of text; text[len] and the rest are NUL */
    uint32_t jwks_max_age;
    uint32_t max_token_ttl;
    uint32_t skew;
    char active_kid[SIGNER_KID_FIELD]; /* STATE: "" when there is no active key */
    char text[SIGNER_TEXT_MAX];        /* STATE: the JWKS; LIST: the key list */
};

/* Sent once by a starting signer on its first channel: could it load? */
struct signer_hello {
    uint32_t version;
    int32_t err;
    char msg[SIGNER_ERRMSG_MAX]; /* NUL-terminated; names the fix on error */
};

/*
 * Check a request record buf[0..n) and copy it into *out. ZTB_OK, or
 * TOO_LARGE/TRUNCATED for a wrong length, UNSUPPORTED for another version
 * or an unknown op, MALFORMED for anything else (flags, fields the op does
 * not take, a bad kid). *why (may be NULL) gets a short constant reason.
 */
ztb_err signer_req_decode(const void *buf, size_t n, struct signer_req *out, const char **why);

/*
 * Check an answer record buf[0..n) to req and copy it into out (size
 * outsize: sizeof(struct signer_resp) for SIGN, MAC, CA_SIGN, ROTATE,
 * RETIRE; sizeof(struct signer_state) for STATE and LIST). STALE-answer
 * (seq differs): ZTB_ERR_STATE, the caller reads again. Otherwise as
 * signer_req_decode, plus the op's own checks of len and kid.
 */
ztb_err signer_resp_decode(const struct signer_req *req, const void *buf, size_t n, void *out,
                           size_t outsize);

/* The answer size for op (0 for an unknown op). */
size_t signer_resp_size(uint32_t op);

/* 1 if f is a well-formed kid field: "" or 43 base64url characters, then
 * NUL padding to the end. */
int signer_kid_field_ok(const char f[SIGNER_KID_FIELD]);

#endif /* ZTB_BROKER_SIGNER_MSG_H */

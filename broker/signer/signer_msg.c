/*
 * signer_msg.c - exact checks of the signer's messages (see signer_msg.h).
 */
#include <string.h>

#include "broker/signer/signer_msg.h"
#include "common/guard.h"
#include "pki/key.h"

/* The layout is the wire format: no padding anywhere. */
_Static_assert(sizeof(struct signer_req) == 6 * 4 + 8 + SIGNER_KID_FIELD + SIGNER_BATCH_MAX * 32,
               "padding");
_Static_assert(sizeof(struct signer_resp) == 6 * 4 + 8 + SIGNER_KID_FIELD + SIGNER_DATA_MAX,
               "padding");
_Static_assert(SIGNER_DATA_MAX >= 72, "room for a DER signature");
_Static_assert(sizeof(struct signer_state) == 8 * 4 + SIGNER_KID_FIELD + SIGNER_TEXT_MAX,
               "padding");
_Static_assert(SIGNER_KID_FIELD > ZTB_KID_LEN, "kid field");

static int b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

int signer_kid_field_ok(const char f[SIGNER_KID_FIELD])
{
    size_t n = 0;
    while (n < SIGNER_KID_FIELD && f[n] != '\0')
        n++;
    if (n != 0 && n != ZTB_KID_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!b64url_char(f[i]))
            return 0;
    for (size_t i = n; i < SIGNER_KID_FIELD; i++)
        if (f[i] != '\0')
            return 0;
    return 1;
}

static int all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= b[i];
    return acc == 0;
}

/* What each op takes. */
struct op_rule {
    unsigned kid;    /* 0 must be empty, 1 required */
    unsigned digest; /* digests taken at most (count); 0: count 0 */
    unsigned now;    /* 0 must be 0, 1 must be > 0 */
    uint32_t flags;  /* allowed flags */
};

static const struct op_rule *rule_for(uint32_t op)
{
    static const struct op_rule rules[] = {
        [SIGNER_OP_SIGN] = {1, SIGNER_BATCH_MAX, 0, 0},
        [SIGNER_OP_MAC] = {0, 1, 0, 0},
        [SIGNER_OP_CA_SIGN] = {0, 1, 0, 0},
        [SIGNER_OP_STATE] = {0, 0, 1, 0},
        [SIGNER_OP_LIST] = {0, 0, 0, 0},
        [SIGNER_OP_ROTATE] = {0, 0, 1, SIGNER_F_FORCE},
        [SIGNER_OP_RETIRE] = {1, 0, 1, SIGNER_F_FORCE},
    };
    if (op < SIGNER_OP_SIGN || op > SIGNER_OP_RETIRE)
        return NULL;
    return &rules[op];
}

size_t signer_resp_size(uint32_t op)
{
    switch (op) {
    case SIGNER_OP_SIGN:
    case SIGNER_OP_MAC:
    case SIGNER_OP_CA_SIGN:
    case SIGNER_OP_ROTATE:
    case SIGNER_OP_RETIRE: return sizeof(struct signer_resp);
    case SIGNER_OP_STATE:
    case SIGNER_OP_LIST: return sizeof(struct signer_state);
    default: return 0;
    }
}

#define REFUSE(err, reason)                                                                        \
    do {                                                                                           \
        if (why != NULL)                                                                           \
            *why = (reason);                                                                       \
        return (err);                                                                              \
    } while (0)

ztb_err signer_req_decode(const void *buf, size_t n, struct signer_req *out, const char **why)
{
    if (why != NULL)
        *why = "";
    if (buf == NULL || out == NULL)
        REFUSE(ZTB_ERR_INVALID_ARG, "no buffer");
    if (n < sizeof(*out))
        REFUSE(ZTB_ERR_TRUNCATED, "short record");
    if (n > sizeof(*out))
        REFUSE(ZTB_ERR_TOO_LARGE, "long record");
    struct signer_req r;
    memcpy(&r, buf, sizeof(r));
    if (r.version != SIGNER_PROTO_VERSION)
        REFUSE(ZTB_ERR_UNSUPPORTED, "version");
    const struct op_rule *rule = rule_for(r.op);
    if (rule == NULL)
        REFUSE(ZTB_ERR_UNSUPPORTED, "unknown op");
    if ((r.flags & ~rule->flags) != 0)
        REFUSE(ZTB_ERR_MALFORMED, "flags");
    if (!signer_kid_field_ok(r.kid))
        REFUSE(ZTB_ERR_MALFORMED, "kid");
    if ((r.kid[0] != '\0') != (rule->kid != 0))
        REFUSE(ZTB_ERR_MALFORMED, rule->kid ? "kid missing" : "kid not taken");
    if (r.reserved != 0)
        REFUSE(ZTB_ERR_MALFORMED, "reserved");
    if (rule->digest ? r.count < 1 || r.count > rule->digest : r.count != 0)
        REFUSE(ZTB_ERR_MALFORMED, "count");
    if (!all_zero((const uint8_t *)r.digest + (size_t)r.count * 32,
                  sizeof(r.digest) - (size_t)r.count * 32))
        REFUSE(ZTB_ERR_MALFORMED, "digest not taken");
    if (rule->now ? r.now <= 0 : r.now != 0)
        REFUSE(ZTB_ERR_MALFORMED, "now");
    *out = r;
    return ZTB_OK;
}

/* The op-specific checks of a small answer. */
static ztb_err check_resp(const struct signer_req *req, const struct signer_resp *r)
{
    ZTB_ENSURE(signer_kid_field_ok(r->kid), ZTB_ERR_MALFORMED);
    ZTB_ENSURE(r->len <= SIGNER_DATA_MAX, ZTB_ERR_MALFORMED);
    ZTB_ENSURE(all_zero(r->data + r->len, SIGNER_DATA_MAX - r->len), ZTB_ERR_MALFORMED);
    if (r->err != ZTB_OK)
        return ZTB_OK; /* an error answer carries at most a kid */
    switch (req->op) {
    case SIGNER_OP_SIGN:
        ZTB_ENSURE(r->len == 64 * req->count && strcmp(r->kid, req->kid) == 0, ZTB_ERR_MALFORMED);
        break;
    case SIGNER_OP_MAC: ZTB_ENSURE(r->len == 32, ZTB_ERR_MALFORMED); break;
    case SIGNER_OP_CA_SIGN: ZTB_ENSURE(r->len >= 8 && r->len <= 72, ZTB_ERR_MALFORMED); break;
    case SIGNER_OP_ROTATE:
        ZTB_ENSURE(r->len == 0 && r->kid[0] != '\0' && (r->action == 1 || r->action == 2),
                   ZTB_ERR_MALFORMED);
        break;
    default: ZTB_ENSURE(r->len == 0, ZTB_ERR_MALFORMED); break;
    }
    return ZTB_OK;
}

ztb_err signer_resp_decode(const struct signer_req *req, const void *buf, size_t n, void *out,
                           size_t outsize)
{
    ZTB_ENSURE(req != NULL && buf != NULL && out != NULL, ZTB_ERR_INVALID_ARG);
    size_t want = signer_resp_size(req->op);
    ZTB_ENSURE(want != 0 && outsize == want, ZTB_ERR_INVALID_ARG);
    /* the common head of every answer: version, op, seq. An answer to an
     * abandoned call (another seq) is recognised before anything else, so
     * its op and size do not matter (its caller cancelled it) */
    uint32_t head[4];
    ZTB_ENSURE(n >= sizeof(head) && want >= sizeof(head), ZTB_ERR_TRUNCATED);
    memcpy(head, buf, sizeof(head));
    ZTB_ENSURE(head[0] == SIGNER_PROTO_VERSION, ZTB_ERR_UNSUPPORTED);
    ZTB_ENSURE(head[2] == req->seq, ZTB_ERR_STATE);
    ZTB_ENSURE(head[1] == req->op, ZTB_ERR_MALFORMED);
    ZTB_ENSURE(n >= want, ZTB_ERR_TRUNCATED);
    ZTB_ENSURE(n == want, ZTB_ERR_TOO_LARGE);
    if (want == sizeof(struct signer_resp)) {
        struct signer_resp *r = out;
        memcpy(r, buf, sizeof(*r));
        return check_resp(req, r);
    }
    struct signer_state *s = out;
    memcpy(s, buf, sizeof(*s));
    ZTB_ENSURE(signer_kid_field_ok(s->active_kid), ZTB_ERR_MALFORMED);
    ZTB_ENSURE(s->len < SIGNER_TEXT_MAX, ZTB_ERR_MALFORMED);
    ZTB_ENSURE(all_zero(s->text + s->len, SIGNER_TEXT_MAX - s->len), ZTB_ERR_MALFORMED);
    ZTB_ENSURE(memchr(s->text, '\0', s->len) == NULL, ZTB_ERR_MALFORMED);
    return ZTB_OK;
}

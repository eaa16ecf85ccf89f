/*
 * revevent.h - the revocation events the broker announces and verifiers
 * apply (docs/protocol.md, "Revocation state in Redis"): the one encoder
 * (the broker's revocation scripts store and publish its bytes) and the one
 * strict decoder (the SDK's revocation feed).
 *
 * An event is one compact JSON object, members in this order:
 *
 *   {"type":"jti","id":<jti>,"exp":<exp>}
 *   {"type":"agent","id":<agent>,"gen":<gen>,"exp":<exp>}
 *   {"type":"audience","id":<audience>,"exp":0}
 *   {"type":"audience","id":<audience>,"lifted":true}
 *   {"type":"key","id":<kid>,"exp":<exp>}
 *
 * The member stored in the ZTB_WIRE_REV_ZSET sorted set is exactly that
 * text, so a lifted kill can remove the kill's member by its text. The
 * message published on ZTB_WIRE_REV_CHANNEL is the same text with one more
 * member before the closing brace, ,"seq":<n>: the value the writing script
 * INCR'd ZTB_WIRE_REV_SEQ_KEY to, so sequence order is commit order and a
 * verifier that sees n jump by more than one knows it missed an event
 * (docs/protocol.md). Decoders that predate "seq" skip it (unknown members
 * are skipped), so the extension is compatible both ways.
 *
 * Must never: accept an event whose id is empty, too long or holds control
 * characters, or one whose numbers are not integers in range.
 */
#ifndef ZTB_WIRE_REVEVENT_H
#define ZTB_WIRE_REVEVENT_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "common/buf.h"

/* Longest id in an event (an agent name, audience, kid or jti), in bytes. */
#define REV_ID_MAX 256

/* Largest event message accepted, in bytes. */
#define REV_EVENT_MAX 4096

enum rev_kind { REV_JTI = 1, REV_AGENT, REV_AUDIENCE, REV_KEY };

struct rev_event {
    enum rev_kind kind;
    char id[REV_ID_MAX + 1];
    size_t id_len;
    int64_t gen; /* REV_AGENT: tokens with a lower ztb.gen are dead */
    int64_t exp; /* when it stops mattering; 0: never (until lifted) */
    int lifted;  /* REV_AUDIENCE: the kill switch was lifted */
    int64_t
        seq; /* the published sequence number; 0 in a stored member or an older broker's event */
};

/*
 * Parse one event message json[0..n) (strict JSON, see json_reader.h).
 * UNSUPPORTED for a well-formed event of a type this version does not know
 * (the caller ignores it); JSON or MALFORMED for anything else wrong (missing
 * or mistyped members, an id that is empty, too long or not printable, an
 * agent event without gen, a jti or key event with exp 0); TOO_LARGE over
 * REV_EVENT_MAX bytes.
 */
ztb_err rev_event_parse(const void *json, size_t n, struct rev_event *ev);

/*
 * Append the event's JSON text (the shape above) to out. The id is taken as
 * a NUL-terminated string (ev->id_len is ignored) and JSON-escaped.
 * INVALID_ARG for an unknown kind or an empty id; else the buffer's error.
 */
ztb_err rev_event_write(const struct rev_event *ev, ztb_buf *out);

/*
 * Append the start of an agent event, {"type":"agent","id":<agent>,"gen":
 * to out, for a Redis script that knows the generation and expiry only
 * when it runs: it appends <gen>,"exp":<exp>} (REV_AGENT_EVENT_TAIL_LUA).
 */
ztb_err rev_event_agent_prefix(const char *agent, ztb_buf *out);

/* Lua statements that INCR the sequence key KEYS[3] and publish the event
 * text in the local or expression `member` with its "seq" member added.
 * The script's last two ARGV are the command and the channel: PUBLISH
 * ZTB_WIRE_REV_CHANNEL (a single Redis, Sentinel), or SPUBLISH
 * ZTB_WIRE_REV_SCHANNEL on a Redis Cluster, in the {rev} slot of the keys. */
#define REV_SEQ_PUBLISH_LUA(member)                                                                \
    "redis.call(ARGV[#ARGV - 1], ARGV[#ARGV], string.sub(" member ", 1, -2) .. ',\"seq\":' .. "    \
    "string.format('%d', redis.call('INCR', KEYS[3])) .. '}')\n"

/* The Lua expression that ends an agent event begun by rev_event_agent_prefix,
 * given the script's integer locals gen and exp. */
#define REV_AGENT_EVENT_TAIL_LUA                                                                   \
    "string.format('%d', gen) .. ',\"exp\":' .. string.format('%d', exp) .. '}'"

#endif /* ZTB_WIRE_REVEVENT_H */

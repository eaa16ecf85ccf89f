/*
 * chain.c - the audit log's hash chain (see chain.h).
 *
 * Hashing goes through pki's per-thread SHA-256 context over a digest
 * fetched once (SHA256() fetches the digest, and takes the provider store's
 * lock, for every line: the writer hashes one line per token). The readers
 * work on NUL-terminated lines and stop at the first byte that does not fit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "audit/chain.h"
#include "pki/es256.h"

const char audit_genesis[AUDIT_HASH_HEX + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

void audit_chain_hash(const void *line, size_t n, char out[AUDIT_HASH_HEX + 1])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    if (ztb_es256_sha256(line, n, d) != ZTB_OK)
        SHA256(line, n, d);
    static const char x[] = "0123456789abcdef";
    for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        out[2 * i] = x[d[i] >> 4];
        out[2 * i + 1] = x[d[i] & 15];
    }
    out[AUDIT_HASH_HEX] = '\0';
}

ztb_err audit_chain_seq(const char *line, uint64_t *seq)
{
    static const char head[] = "{\"seq\":";
    if (strncmp(line, head, sizeof(head) - 1) != 0)
        return ZTB_ERR_MALFORMED;
    const char *p = line + sizeof(head) - 1;
    if (*p < '0' || *p > '9')
        return ZTB_ERR_MALFORMED;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno != 0 || *end != ',')
        return ZTB_ERR_MALFORMED;
    *seq = v;
    return ZTB_OK;
}

ztb_err audit_chain_prev(const char *line, char prev[AUDIT_HASH_HEX + 1])
{
    static const char key[] = ",\"prev\":\"";
    const char *p = strstr(line, key);
    if (p == NULL)
        return ZTB_ERR_MALFORMED;
    p += sizeof(key) - 1;
    for (int i = 0; i < AUDIT_HASH_HEX; i++) {
        char c = p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return ZTB_ERR_MALFORMED; /* also stops at the NUL */
        prev[i] = c;
    }
    if (p[AUDIT_HASH_HEX] != '"')
        return ZTB_ERR_MALFORMED;
    prev[AUDIT_HASH_HEX] = '\0';
    return ZTB_OK;
}

void audit_checkpoint_payload(const char *replica, uint64_t from, uint64_t to,
                              const char hash[AUDIT_HASH_HEX + 1], ztb_buf *out)
{
    ztb_buf_append_str(out, "{\"typ\":\"ztb-audit-checkpoint\",\"replica\":\"");
    if (replica != NULL)
        ztb_buf_append_json_escaped(out, replica, strlen(replica));
    ztb_buf_printf(out, "\",\"from\":%llu,\"to\":%llu,\"hash\":\"", (unsigned long long)from,
                   (unsigned long long)to);
    ztb_buf_append(out, hash, AUDIT_HASH_HEX);
    ztb_buf_append_str(out, "\"}");
}

ztb_err audit_chain_replica(const char *line, char out[AUDIT_REPLICA_ID_MAX + 1])
{
    static const char prev[] = ",\"prev\":\"";
    static const char key[] = "\",\"replica\":\"";
    out[0] = '\0';
    const char *p = strstr(line, prev);
    if (p == NULL)
        return ZTB_ERR_MALFORMED;
    p += sizeof(prev) - 1 + AUDIT_HASH_HEX; /* audit_chain_prev checked the 64 digits */
    if (strncmp(p, key, sizeof(key) - 1) != 0)
        return ZTB_OK; /* none */
    p += sizeof(key) - 1;
    size_t i = 0;
    for (; p[i] != '"'; i++) {
        char c = p[i];
        if (i == AUDIT_REPLICA_ID_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return ZTB_ERR_MALFORMED; /* also stops at the NUL */
        out[i] = c;
    }
    out[i] = '\0';
    return ZTB_OK;
}

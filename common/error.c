/*
 * error.c - descriptions of the stable ztb_err codes.
 *
 * One table, indexed by searching (the codes are sparse by range). Adding a
 * code to ztb/error.h without a row here is caught by tests/unit/test_error.c.
 */
#include <stddef.h>

#include <ztb/error.h>

#include "guard.h"

struct err_row {
    ztb_err code;
    const char *name;
    const char *text;
};

static const struct err_row rows[] = {
    {ZTB_OK, "OK", "success"},
    {ZTB_ERR_NOMEM, "NOMEM", "out of memory"},
    {ZTB_ERR_INVALID_ARG, "INVALID_ARG", "invalid argument"},
    {ZTB_ERR_TRUNCATED, "TRUNCATED", "input truncated"},
    {ZTB_ERR_TOO_LARGE, "TOO_LARGE", "input or output too large"},
    {ZTB_ERR_MALFORMED, "MALFORMED", "malformed input"},
    {ZTB_ERR_BASE64, "BASE64", "invalid base64url"},
    {ZTB_ERR_JSON, "JSON", "invalid JSON"},
    {ZTB_ERR_IO, "IO", "I/O error"},
    {ZTB_ERR_CRYPTO, "CRYPTO", "cryptographic library error"},
    {ZTB_ERR_INTERNAL, "INTERNAL", "internal error"},
    {ZTB_ERR_UNAVAILABLE, "UNAVAILABLE", "service unavailable"},
    {ZTB_ERR_TIMEOUT, "TIMEOUT", "timed out"},
    {ZTB_ERR_PERMISSION, "PERMISSION", "permission denied"},
    {ZTB_ERR_NOT_FOUND, "NOT_FOUND", "not found"},
    {ZTB_ERR_EXISTS, "EXISTS", "already exists"},
    {ZTB_ERR_STATE, "STATE", "operation not valid in the current state"},
    {ZTB_ERR_UNSUPPORTED, "UNSUPPORTED", "not supported"},
    {ZTB_ERR_AUDIT_UNAVAILABLE, "AUDIT_UNAVAILABLE", "the audit log cannot record the decision"},

    {ZTB_ERR_JWS_FORMAT, "JWS_FORMAT", "token is not a compact JWS"},
    {ZTB_ERR_JWS_HEADER, "JWS_HEADER", "invalid JOSE header"},
    {ZTB_ERR_ALG, "ALG", "algorithm does not match the key"},
    {ZTB_ERR_UNKNOWN_KID, "UNKNOWN_KID", "unknown key id"},
    {ZTB_ERR_FORBIDDEN_HEADER, "FORBIDDEN_HEADER", "forbidden JOSE header parameter"},
    {ZTB_ERR_SIG_FORMAT, "SIG_FORMAT", "signature has the wrong encoding or length"},
    {ZTB_ERR_SIGNATURE, "SIGNATURE", "signature does not verify"},
    {ZTB_ERR_KEY, "KEY", "unusable key"},
    {ZTB_ERR_JWKS, "JWKS", "invalid JWKS"},
    {ZTB_ERR_NO_ACTIVE_KEY, "NO_ACTIVE_KEY", "no active signing key"},
    {ZTB_ERR_PASSPHRASE, "PASSPHRASE", "key cannot be decrypted"},

    {ZTB_ERR_TYP, "TYP", "token type is not at+jwt"},
    {ZTB_ERR_ISSUER, "ISSUER", "unexpected issuer"},
    {ZTB_ERR_AUDIENCE, "AUDIENCE", "unexpected audience"},
    {ZTB_ERR_EXPIRED, "EXPIRED", "token expired"},
    {ZTB_ERR_NOT_YET_VALID, "NOT_YET_VALID", "token not yet valid"},
    {ZTB_ERR_IAT, "IAT", "issued-at time invalid"},
    {ZTB_ERR_CLAIMS, "CLAIMS", "required claim missing or invalid"},
    {ZTB_ERR_ACTION, "ACTION", "token is for another action"},
    {ZTB_ERR_RESOURCE, "RESOURCE", "token is for another resource"},
    {ZTB_ERR_BINDING, "BINDING", "token binding missing or mismatched"},
    {ZTB_ERR_DPOP, "DPOP", "invalid DPoP proof"},
    {ZTB_ERR_DPOP_REPLAY, "DPOP_REPLAY", "DPoP proof replayed"},
    {ZTB_ERR_REVOKED, "REVOKED", "token revoked"},
    {ZTB_ERR_AGENT_REVOKED, "AGENT_REVOKED", "agent's tokens revoked"},
    {ZTB_ERR_AUDIENCE_KILLED, "AUDIENCE_KILLED", "audience disabled"},
    {ZTB_ERR_KEY_TAINTED, "KEY_TAINTED", "signing key tainted"},
    {ZTB_ERR_REPLAY, "REPLAY", "single-use token already used"},
    {ZTB_ERR_REVOCATION_STALE, "REVOCATION_STALE", "revocation state not current"},
    {ZTB_ERR_SINGLE_USE, "SINGLE_USE", "single-use token cannot be consumed here"},

    {ZTB_ERR_HTTP, "HTTP", "HTTP error"},
    {ZTB_ERR_INVALID_CLIENT, "INVALID_CLIENT", "client authentication failed"},
    {ZTB_ERR_ACCESS_DENIED, "ACCESS_DENIED", "access denied by policy"},
    {ZTB_ERR_RATE_LIMITED, "RATE_LIMITED", "rate limited"},
    {ZTB_ERR_APPROVAL_REQUIRED, "APPROVAL_REQUIRED", "approval required"},
    {ZTB_ERR_QUARANTINED, "QUARANTINED", "agent quarantined"},
    {ZTB_ERR_INVALID_REQUEST, "INVALID_REQUEST", "invalid request"},
    {ZTB_ERR_INVALID_SCOPE, "INVALID_SCOPE", "invalid scope"},
    {ZTB_ERR_APPROVAL_PENDING, "APPROVAL_PENDING", "waiting for approval"},
    {ZTB_ERR_APPROVAL_DENIED, "APPROVAL_DENIED", "approval denied"},
    {ZTB_ERR_APPROVAL_EXPIRED, "APPROVAL_EXPIRED", "approval expired"},

    {ZTB_ERR_CSR, "CSR", "invalid certificate signing request"},
    {ZTB_ERR_CERT, "CERT", "invalid certificate"},
    {ZTB_ERR_CERT_CHAIN, "CERT_CHAIN", "certificate chain not trusted"},
    {ZTB_ERR_SPIFFE_ID, "SPIFFE_ID", "invalid SPIFFE ID"},
    {ZTB_ERR_JOIN_TOKEN, "JOIN_TOKEN", "join token invalid, used or expired"},

    {ZTB_ERR_POLICY, "POLICY", "invalid policy"},
};

static const struct err_row *find(ztb_err err)
{
    for (size_t i = 0; i < ZTB_ARRAY_LEN(rows); i++)
        if (rows[i].code == err)
            return &rows[i];
    return NULL;
}

const char *ztb_strerror(ztb_err err)
{
    const struct err_row *r = find(err);
    return r ? r->text : "unknown error";
}

const char *ztb_err_name(ztb_err err)
{
    const struct err_row *r = find(err);
    return r ? r->name : "UNKNOWN";
}

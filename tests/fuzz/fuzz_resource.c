/*
 * fuzz_resource.c - sdk/src/resource.c on arbitrary bytes: as an
 * Authorization header (ztb_authorization_parse), as a resource identifier
 * (metadata document, path and URL) and as the options of a challenge.
 * Checks, beyond memory safety: a token read is all token68 characters and
 * ends the header; nothing accepted puts a quote, backslash, space or
 * control character into a WWW-Authenticate value; the metadata path always
 * starts with the well-known prefix.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ztb/resource.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1 if the challenge value has only what a header may carry. */
static int header_safe(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p >= 0x7f)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1);
    if (in == NULL)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    const char *tok = NULL;
    ztb_auth_scheme s = ztb_authorization_parse(in, &tok);
    if (s != ZTB_SCHEME_NONE) {
        size_t n = strlen(tok);
        if (n == 0 || strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                                  "-._~+/=") != n)
            abort();
    }
    char out[2048];
    ztb_resource r = {.resource = in, .authorization_server = "https://b.example"};
    if (ztb_resource_metadata_json(&r, out, sizeof(out), NULL) == ZTB_OK &&
        (strchr(in, '"') != NULL || strchr(in, '#') != NULL || strchr(in, ' ') != NULL))
        abort();
    if (ztb_resource_metadata_path(in, out, sizeof(out)) == ZTB_OK &&
        strncmp(out, "/.well-known/oauth-protected-resource", 37) != 0)
        abort();
    if (ztb_resource_metadata_url(in, out, sizeof(out)) == ZTB_OK &&
        (strstr(out, "/.well-known/oauth-protected-resource") == NULL || !header_safe(out)))
        abort();
    ztb_challenge_opts o = {
        .scheme = (ztb_auth_scheme)(size % 3), .resource_metadata = in, .scope = in};
    ztb_err rv = size > 0 ? (ztb_err)(200 + data[0] % 20) : ZTB_ERR_NOT_FOUND;
    unsigned st = ztb_challenge(rv, &o, out, sizeof(out));
    if (st != 0 && (!header_safe(out) || strchr(in, '"') != NULL || strchr(in, '\\') != NULL))
        abort();
    free(in);
    return 0;
}

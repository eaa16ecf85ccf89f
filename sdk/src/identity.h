/*
 * identity.h - an agent's key and identity document, in memory and on disk.
 *
 * The identity document is the X.509 certificate the broker's agent CA
 * issued for the agent's own key (docs/protocol.md, "Enrollment"). Before the
 * agent uses or stores one it checks that it is really its own: the
 * certificate's public key is the agent's key and its only name is the
 * agent's SPIFFE ID. A broker that answered with anything else (a bug, a
 * proxy, an attacker on a plain-http hop) is refused with CERT. The
 * document is read with pki/cert.h, the reader the agent CA uses: strict
 * PEM, at most ZTB_CERT_CHAIN_MAX certificates.
 *
 * The credential file holds the private key (PKCS#8 PEM) followed by the
 * identity document and its chain (PEM), written with pki/keyfile.h: mode
 * 0600, replaced atomically, in a directory that belongs to the user; read
 * only if it is a regular file of this user that nobody else can access.
 */
#ifndef ZTB_SDK_IDENTITY_H
#define ZTB_SDK_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include <ztb/error.h>

#include "pki/key.h"

/* Largest credential file or identity chain accepted, in bytes. */
#define IDENTITY_MAX 32768

struct identity {
    ztb_key *key; /* private; NULL: none */
    char *pem;    /* identity document + chain, PEM, NUL-terminated */
    size_t pem_len;
    int64_t not_before, not_after;
};

/*
 * Check that the first certificate of pem[0..len) is an identity document
 * for key and spiffe_id, and read its validity. CERT otherwise.
 */
ztb_err identity_check(const ztb_key *key, const char *spiffe_id, const char *pem, size_t len,
                       int64_t *not_before, int64_t *not_after);

/*
 * Load the credential file at path for spiffe_id into out (key referenced,
 * PEM copied). NOT_FOUND if there is no file; PERMISSION for a file others
 * can access or that is not ours; KEY or CERT if it is damaged or not this
 * agent's.
 */
ztb_err identity_load(const char *path, const char *spiffe_id, struct identity *out);

/* Write id (key and documents) to path: 0600, atomic. */
ztb_err identity_save(const char *path, const struct identity *id);

/* Release what id holds (the key reference, the PEM). */
void identity_clear(struct identity *id);

#endif /* ZTB_SDK_IDENTITY_H */

/*
 * sdk_test.h - helpers for the libztb unit tests: a small in-process HTTP
 * server (libmicrohttpd) that a test scripts with a handler, standing in for
 * the broker or a JWKS host, and token signing with arbitrary headers and
 * claims so each verifier rejection gets exactly the token that triggers it.
 */
#ifndef ZTB_TEST_SDK_TEST_H
#define ZTB_TEST_SDK_TEST_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "pki/key.h"

struct st_req {
    const char *method;
    const char *url;          /* path only */
    const char *dpop;         /* DPoP header or NULL */
    const char *content_type; /* or NULL */
    const char *body;         /* NUL-terminated */
    size_t body_len;
};

struct st_resp {
    unsigned status;
    char body[65536];
    char header_name[4][64];
    char header_value[4][256];
    int nheaders;
};

typedef void (*st_handler)(void *ud, const struct st_req *rq, struct st_resp *rs);

struct st_server {
    void *daemon;
    uint16_t port;
    char base[64]; /* http://127.0.0.1:PORT */
    st_handler handler;
    void *ud;
    pthread_mutex_t mu; /* held while the handler runs: handlers need no locking */
    unsigned requests;
};

/* Start a server on 127.0.0.1 (any port) calling h for every request. */
void st_server_start(struct st_server *s, st_handler h, void *ud);

/* Stop it. */
void st_server_stop(struct st_server *s);

/* Add a response header. */
void st_resp_header(struct st_resp *rs, const char *name, const char *value);

/* Set a JSON body and status. */
void st_resp_json(struct st_resp *rs, unsigned status, const char *json);

/*
 * Sign payload with k under header (JSON text; NULL: {"alg":"ES256",
 * "typ":"at+jwt","kid":<k's kid>}) into a static per-thread buffer.
 */
const char *st_sign(const ztb_key *k, const char *header, const char *payload);

/* The value of form field name in body (URL-decoded) into out; 0 if absent. */
int st_form_get(const char *body, const char *name, char *out, size_t cap);

/* A fresh private (0700) scratch directory; the caller frees the path. */
char *st_tmpdir(void);

/* Remove a scratch directory tree and free the path. */
void st_rmdir(char *dir);

#endif /* ZTB_TEST_SDK_TEST_H */

/* sdk_test.c - helpers for the libztb unit tests (see sdk_test.h). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "common/buf.h"
#include "pki/jws.h"
#include "sdk_test.h"

struct conn {
    char *body;
    size_t len;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct st_server *s = cls;
    struct conn *k = *con_cls;
    if (k == NULL) {
        k = calloc(1, sizeof(*k));
        *con_cls = k;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        char *nb = realloc(k->body, k->len + *upload_size + 1);
        if (nb == NULL)
            return MHD_NO;
        memcpy(nb + k->len, upload, *upload_size);
        k->body = nb;
        k->len += *upload_size;
        k->body[k->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    struct st_req rq = {
        .method = method,
        .url = url,
        .dpop = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "DPoP"),
        .content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"),
        .body = k->body ? k->body : "",
        .body_len = k->len,
    };
    struct st_resp *rs = calloc(1, sizeof(*rs));
    rs->status = 404;
    pthread_mutex_lock(&s->mu);
    s->requests++;
    s->handler(s->ud, &rq, rs);
    pthread_mutex_unlock(&s->mu);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(rs->body), rs->body, MHD_RESPMEM_MUST_COPY);
    for (int i = 0; i < rs->nheaders; i++)
        MHD_add_response_header(r, rs->header_name[i], rs->header_value[i]);
    enum MHD_Result ret = MHD_queue_response(c, rs->status, r);
    MHD_destroy_response(r);
    free(rs);
    return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct conn *k = *con_cls;
    if (k != NULL) {
        free(k->body);
        free(k);
    }
    *con_cls = NULL;
}

void st_server_start(struct st_server *s, st_handler h, void *ud)
{
    memset(s, 0, sizeof(*s));
    s->handler = h;
    s->ud = ud;
    pthread_mutex_init(&s->mu, NULL);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "sdk_test: cannot start the test HTTP server\n");
        exit(1);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    s->daemon = d;
    s->port = info ? info->port : 0;
    snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%u", s->port);
}

void st_server_stop(struct st_server *s)
{
    if (s->daemon != NULL)
        MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    pthread_mutex_destroy(&s->mu);
}

void st_resp_header(struct st_resp *rs, const char *name, const char *value)
{
    if (rs->nheaders < 4) {
        snprintf(rs->header_name[rs->nheaders], sizeof(rs->header_name[0]), "%s", name);
        snprintf(rs->header_value[rs->nheaders], sizeof(rs->header_value[0]), "%s", value);
        rs->nheaders++;
    }
}

void st_resp_json(struct st_resp *rs, unsigned status, const char *json)
{
    rs->status = status;
    snprintf(rs->body, sizeof(rs->body), "%s", json);
    st_resp_header(rs, "Content-Type", "application/json");
}

const char *st_sign(const ztb_key *k, const char *header, const char *payload)
{
    static __thread char store[16384];
    char hstore[512];
    if (header == NULL) {
        snprintf(hstore, sizeof(hstore), "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}",
                 ztb_key_kid(k));
        header = hstore;
    }
    ztb_buf b;
    ztb_buf_init_fixed(&b, store, sizeof(store));
    ztb_jws_sign_opts o = {.header = header, .header_len = strlen(header)};
    if (ztb_jws_sign(k, &o, payload, strlen(payload), &b) != ZTB_OK)
        return NULL;
    return store;
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int st_form_get(const char *body, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = body;
    while (p != NULL && *p != '\0') {
        const char *amp = strchr(p, '&');
        size_t fl = amp ? (size_t)(amp - p) : strlen(p);
        if (fl > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t o = 0;
            for (size_t i = nl + 1; i < fl && o + 1 < cap; i++) {
                if (p[i] == '%' && i + 2 < fl + 1 && hexv(p[i + 1]) >= 0 && hexv(p[i + 2]) >= 0) {
                    out[o++] = (char)(hexv(p[i + 1]) * 16 + hexv(p[i + 2]));
                    i += 2;
                } else {
                    out[o++] = p[i] == '+' ? ' ' : p[i];
                }
            }
            out[o] = '\0';
            return 1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

char *st_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof(tmpl), "%s/ztb-sdk-test.XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void st_rmdir(char *dir)
{
    if (dir != NULL)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/*
 * admin_script.h - a scripted admin API server for unit tests (header-only):
 * one thread accepts one connection on a unix socket, keeps the request it
 * reads (headers and Content-Length body) and sends a canned answer, a
 * large body, or nothing at all until the client gives up.
 *
 * Include it after <cmocka.h> (it asserts), in a file that defines
 * _GNU_SOURCE first (strcasestr).
 */
#ifndef ZTB_TEST_ADMIN_SCRIPT_H
#define ZTB_TEST_ADMIN_SCRIPT_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* One scripted exchange: the server reads a request, keeps it, answers. */
struct server {
    int lfd;
    char path[108];
    const char *answer; /* NULL: never answer (hold the connection) */
    size_t answer_len;
    size_t big; /* >0: answer with a body of this many bytes */
    char request[300000];
    size_t request_len;
    pthread_t th;
};

static inline size_t content_length(const char *req)
{
    const char *p = strcasestr(req, "\r\nContent-Length:");
    return p ? (size_t)strtoul(p + 17, NULL, 10) : 0;
}

static inline void *serve(void *arg)
{
    struct server *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    s->request_len = 0;
    for (;;) {
        ssize_t n = read(fd, s->request + s->request_len, sizeof(s->request) - 1 - s->request_len);
        if (n <= 0)
            break;
        s->request_len += (size_t)n;
        s->request[s->request_len] = '\0';
        const char *end = strstr(s->request, "\r\n\r\n");
        if (end != NULL &&
            s->request_len >= (size_t)(end + 4 - s->request) + content_length(s->request))
            break;
    }
    if (s->big > 0) {
        char head[128];
        int hn =
            snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", s->big);
        (void)!write(fd, head, (size_t)hn);
        char *body = malloc(s->big);
        memset(body, 'x', s->big);
        for (size_t off = 0; off < s->big;) {
            ssize_t w = write(fd, body + off, s->big - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        free(body);
    } else if (s->answer != NULL) {
        (void)!write(fd, s->answer, s->answer_len);
    } else {
        char b[16];
        while (read(fd, b, sizeof(b)) > 0) /* hold until the client gives up */
            ;
    }
    close(fd);
    return NULL;
}

static inline struct server *server_start(const char *answer, size_t big)
{
    struct server *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    snprintf(s->path, sizeof(s->path), "/tmp/ztb-test-admin-%d.sock", (int)getpid());
    unlink(s->path);
    s->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", s->path);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    s->answer = answer;
    s->answer_len = answer ? strlen(answer) : 0;
    s->big = big;
    assert_int_equal(pthread_create(&s->th, NULL, serve, s), 0);
    return s;
}

/* Wait for the exchange to end (then s->request holds what was sent). */
static inline void server_wait(struct server *s)
{
    pthread_join(s->th, NULL);
}

static inline void server_free(struct server *s)
{
    close(s->lfd);
    unlink(s->path);
    free(s);
}

static inline void server_stop(struct server *s)
{
    server_wait(s);
    server_free(s);
}

#endif /* ZTB_TEST_ADMIN_SCRIPT_H */

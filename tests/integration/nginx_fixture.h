/*
 * nginx_fixture.h - Debian's nginx in front of a real backend, for tests of
 * gateway configurations from docs/gateways.md: the fenced block after a
 * "<!-- ztb-test: NAME -->" marker, its loopback ports replaced, run by a
 * private nginx (its own prefix, pid and logs in the test's directory), and
 * a backend that answers 200 and echoes the X-Ztb-* headers it received.
 * Without the nginx package the test fails (scripts/install-deps.sh).
 */
#ifndef ZTB_TEST_NGINX_FIXTURE_H
#define ZTB_TEST_NGINX_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The fenced block after "<!-- ztb-test: name -->" in docs/gateways.md
 * (caller frees). Fails the test if there is none. */
char *nf_doc_block(const char *name);

/* Replace the only occurrence of from in *s with to (fails if not exactly once). */
void nf_replace_once(char **s, const char *from, const char *to);

/* Write text to path (mode 0644); fails the test on error. */
void nf_write_file(const char *path, const char *text);

/* A free loopback TCP port. */
uint16_t nf_free_port(void);

/* Start the echoing backend on a loopback port; returns the port. */
uint16_t nf_backend_start(void);
void nf_backend_stop(void);
/* Requests the backend has answered so far. */
int nf_backend_hits(void);

/* Run nginx with server (an http{} server block) in dir, listening on port;
 * returns its pid once it accepts connections. */
pid_t nf_nginx_start(const char *dir, const char *server, uint16_t port);
void nf_nginx_stop(pid_t pid);

#endif /* ZTB_TEST_NGINX_FIXTURE_H */

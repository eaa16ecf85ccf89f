/*
 * signer.h - the broker's signer process: the only holder of private keys.
 *
 * ztb-broker runs as two processes (privilege separation, as OpenBSD relayd's
 * ca.c and acme-client's keyproc.c). The HTTP process parses the network and
 * never maps a private key. The signer process reads the key store (token
 * signing keys), the agent CA key, the session MAC key and the passphrase
 * file, and answers the fixed-size requests of broker/signer/signer_msg.h over
 * SOCK_SEQPACKET socketpairs, a thread per CPU serving them: sign this digest with
 * kid K, MAC this digest, CA-sign this certificate digest, tell me the public
 * key set, rotate, retire. It is not dumpable, writes no core file, closes
 * every descriptor it was not given, and (where the kernel has seccomp)
 * runs under a system-call filter (signer_seccomp.h: a deny-list that kills).
 *
 * The HTTP process starts it (signer_client.h) by executing its own binary
 * with SIGNER_ARGV1 as the first argument; main() hands such a call to
 * signer_process_main() before it parses any option.
 */
#ifndef ZTB_BROKER_SIGNER_H
#define ZTB_BROKER_SIGNER_H

#include <stddef.h>

#include <ztb/error.h>

#include "broker/config.h"
#include "broker/signer/signer_msg.h"

#define SIGNER_ARGV1        "--signer-process" /* not an option: an internal mode */
#define SIGNER_MAX_CHANNELS 128
#define SIGNER_FIRST_FD     3 /* channels are descriptors 3, 4, ... in the signer */

struct signer_opts {
    char keys_dir[BROKER_PATH_MAX];
    char passphrase_file[BROKER_PATH_MAX];  /* "" for none */
    char session_key_file[BROKER_PATH_MAX]; /* "": KEYS/session.key */
};

/*
 * Load the key store, the CA (if any) and the session key (created if
 * missing) into this process. NOT_FOUND (with err naming the command that
 * makes one) if keys_dir holds no key store. Not thread-safe: call once
 * before signer_serve.
 */
ztb_err signer_load(const struct signer_opts *o, char *err, size_t errcap);

/* Wipe and free everything signer_load loaded. */
void signer_unload(void);

/*
 * Serve the channels fds[0..nfds) until the peer has closed every one: read
 * a record, check it (signer_req_decode), answer it. A refused record is
 * logged and answered with its error (the seq echoed when the record had the
 * right size). The calling thread answers signatures and MACs for all of
 * them, draining every ready channel per wake-up; key store operations go to
 * a second thread so signatures never wait behind them (signer.c,
 * "serving"). The signer process runs one such thread per CPU.
 * The descriptors stay the caller's (it closes them after the return).
 */
void signer_serve_channels(const int *fds, unsigned nfds);

/* signer_serve_channels with one channel. */
void signer_serve(int fd);

/*
 * Answer one request record buf[0..n) into out (outcap bytes, at least
 * sizeof(struct signer_state)); returns the answer's length. What
 * signer_serve does per record, without the socket (unit tests and the
 * fuzz target use it).
 */
size_t signer_handle(const void *buf, size_t n, void *out, size_t outcap);

/*
 * The signer process: argv is {exe, SIGNER_ARGV1, channels, keys_dir,
 * passphrase_file, session_key_file, log_level, log_format}. Locks itself
 * down, loads, sends a struct signer_hello on its first channel, serves
 * until every channel is closed (the HTTP process is gone). Returns the
 * process's exit status.
 */
int signer_process_main(int argc, char **argv);

/* Not dumpable, no core files (ztb_no_core_dumps); the signer process calls
 * it first thing and does not start if it fails. */
ztb_err signer_harden_process(void);

#endif /* ZTB_BROKER_SIGNER_H */

/*
 * signer_seccomp.h - the signer process's system-call filter.
 */
#ifndef ZTB_BROKER_SIGNER_SECCOMP_H
#define ZTB_BROKER_SIGNER_SECCOMP_H

#include <ztb/error.h>

/*
 * Install a seccomp filter on the calling process (and the threads it
 * makes afterwards) that kills it on: executing a program, creating a
 * process (clone without CLONE_THREAD; clone3 answers ENOSYS so libc falls
 * back to clone), any socket creation or connection (io_uring included),
 * ptrace and cross-process memory or descriptor access (process_vm_*,
 * process_madvise, pidfd_getfd), and any change of identity (uids, gids,
 * groups, capabilities). Everything the signer does
 * (files of the key store, its channels, threads, memory) stays allowed:
 * the key store is re-read and rewritten on rotation. On an architecture
 * without a known audit arch this is a no-op returning ZTB_OK. INTERNAL if
 * the kernel refuses the filter.
 */
ztb_err signer_seccomp_install(void);

#endif /* ZTB_BROKER_SIGNER_SECCOMP_H */

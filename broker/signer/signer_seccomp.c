/*
 * signer_seccomp.c - a raw BPF seccomp filter for the signer (see
 * signer_seccomp.h). A deny-list, not an allow-list: the signer rewrites
 * the key store on rotation, so its file system calls must stay; what a
 * taken-over signer would need to get a key out - run a program, open a
 * socket, reach into another process - kills it.
 */
#define _GNU_SOURCE /* CLONE_THREAD */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "broker/signer/signer_seccomp.h"
#include "common/log.h"

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#endif

#ifdef ARCH

#define LOAD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define KILL_IF(n)                                                                                 \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (n), 0, 1),                                                \
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)

ztb_err signer_seccomp_install(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        LOAD_NR,
#if defined(__x86_64__)
        /* the x32 ABI's numbers (bit 30 set) would bypass the list below */
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
#endif
        /* clone3: ENOSYS, so glibc's pthread_create falls back to clone */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        /* clone: threads only (flags are the first argument on both arches) */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        KILL_IF(__NR_execve),
        KILL_IF(__NR_execveat),
        KILL_IF(__NR_socket),
        KILL_IF(__NR_socketpair),
        KILL_IF(__NR_connect),
        KILL_IF(__NR_bind),
        KILL_IF(__NR_listen),
        KILL_IF(__NR_accept),
        KILL_IF(__NR_accept4),
        /* a ring makes and connects sockets without the calls above
         * (IORING_OP_SOCKET, IORING_OP_CONNECT): the signer has no ring */
        KILL_IF(__NR_io_uring_setup),
        KILL_IF(__NR_io_uring_enter),
        KILL_IF(__NR_io_uring_register),
        KILL_IF(__NR_ptrace),
        KILL_IF(__NR_process_vm_readv),
        KILL_IF(__NR_process_vm_writev),
        KILL_IF(__NR_setuid),
        KILL_IF(__NR_setgid),
        KILL_IF(__NR_setresuid),
        KILL_IF(__NR_setresgid),
        /* the other ways to change who the process is */
        KILL_IF(__NR_setreuid),
        KILL_IF(__NR_setregid),
        KILL_IF(__NR_setfsuid),
        KILL_IF(__NR_setfsgid),
        KILL_IF(__NR_setgroups),
        KILL_IF(__NR_capset),
        /* another process's descriptors and memory, like process_vm_* */
        KILL_IF(__NR_pidfd_getfd),
        KILL_IF(__NR_process_madvise),
#ifdef __NR_fork
        KILL_IF(__NR_fork),
        KILL_IF(__NR_vfork),
#endif
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = (unsigned short)(sizeof(f) / sizeof(f[0])), .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) {
        ztb_log(ZTB_LOG_ERROR, "signer.seccomp_failed", ZTB_F_INT("errno", errno));
        return ZTB_ERR_INTERNAL;
    }
    return ZTB_OK;
}

#else

ztb_err signer_seccomp_install(void)
{
    ztb_log(ZTB_LOG_WARN, "signer.seccomp_unavailable",
            ZTB_F_STR("hint", "no filter for this architecture: the signer runs without one"));
    return ZTB_OK;
}

#endif

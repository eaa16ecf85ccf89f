/*
 * test_signer_seccomp.c - the signer's system-call filter
 * (broker/signer/signer_seccomp.c), installed as the signer process installs
 * it (signer_harden_process, then signer_seccomp_install) in a forked child
 * of the test. What is checked: the kernel takes the filter (a kernel without
 * seccomp fails the test, it is not skipped); what the signer does - files of
 * the key store written and renamed, its channels, threads, memory, random
 * bytes - still works; clone3 answers ENOSYS; and every call the filter
 * promises to kill (running a program, making a process, sockets, ptrace,
 * cross-process memory, setting ids, io_uring, the 32-bit and x32 entries)
 * kills the child with SIGSYS. The parent reads the child's end from waitpid.
 */
#define _GNU_SOURCE /* process_vm_readv, O_* */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/signer/signer.h"
#include "broker/signer/signer_seccomp.h"

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "signer_seccomp.c has a filter for x86_64 and aarch64 only: add this architecture there"
#endif

#define EXIT_NO_FILTER 100 /* the child could not install the filter */

/* A socket pair made before the filter, as the signer's channels are. */
static int g_pair[2];

/*
 * Fork; in the child install the filter as the signer does and run fn,
 * exiting with what it returns (0: all went well; n: step n failed).
 * Returns the child's wait status.
 */
static int in_filtered_child(int (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (signer_harden_process() != ZTB_OK || signer_seccomp_install() != ZTB_OK)
            _exit(EXIT_NO_FILTER);
        _exit(fn());
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

/* "exit N" or "signal N" for a failure message. */
static const char *how(int st, char *b, size_t cap)
{
    if (WIFEXITED(st))
        snprintf(b, cap, "exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(b, cap, "signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(b, cap, "status %#x", (unsigned)st);
    return b;
}

/* ---- the filter is there ---- */

/* 0 if /proc/self/status says mode 2 (filter); 1 otherwise. */
static int status_says_filtered(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int ok = 0;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strcmp(line, "Seccomp:\t2\n") == 0)
            ok = 1;
    if (f != NULL)
        fclose(f);
    return ok && prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 2 &&
                   prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1
               ? 0
               : 1;
}

/* The kernel has seccomp filters and takes the signer's: a kernel without
 * them fails here (the signer would refuse to start on it too). */
static void test_kernel_takes_the_filter(void **state)
{
    (void)state;
    errno = 0;
    int mode = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
    if (mode < 0)
        fail_msg("this kernel has no seccomp (prctl PR_GET_SECCOMP: %s): the signer cannot run "
                 "under its filter here; build the kernel with CONFIG_SECCOMP_FILTER",
                 strerror(errno));
    assert_int_equal(mode, 0); /* the test itself runs unfiltered */
    char b[64];
    int st = in_filtered_child(status_says_filtered);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("the filter is not in place in the child: %s%s", how(st, b, sizeof(b)),
                 WIFEXITED(st) && WEXITSTATUS(st) == EXIT_NO_FILTER
                     ? " (signer_seccomp_install failed)"
                     : "");
}

/* ---- what the signer needs ---- */

static void *thread_fn(void *arg)
{
    return arg;
}

/* The signer's own work, step by step; the failing step's number. */
static int signer_work(void)
{
    char dir[] = "/tmp/ztb-test-seccomp-XXXXXX", tmp[64], key[64];
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(tmp, sizeof(tmp), "%s/keys.json.tmp", dir);
    snprintf(key, sizeof(key), "%s/keys.json", dir);
    /* a key store rewrite: O_EXCL 0600, write, fsync, rename, read back */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return 2;
    if (write(fd, "{}\n", 3) != 3 || fsync(fd) != 0 || close(fd) != 0)
        return 3;
    if (rename(tmp, key) != 0)
        return 4;
    char rb[8] = {0};
    fd = open(key, O_RDONLY | O_NOFOLLOW);
    if (fd < 0 || read(fd, rb, sizeof(rb)) != 3 || memcmp(rb, "{}\n", 3) != 0)
        return 5;
    close(fd);
    if (unlink(key) != 0 || rmdir(dir) != 0)
        return 6;
    /* its channels: a message each way over a pair made before the filter */
    char m = 0;
    if (send(g_pair[0], "x", 1, MSG_NOSIGNAL) != 1 || recv(g_pair[1], &m, 1, 0) != 1 || m != 'x')
        return 7;
    /* memory, random bytes, the clock */
    void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 8;
    memset(p, 1, 4096);
    munmap(p, 1 << 20);
    unsigned char r[32];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        return 9;
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 10;
    /* threads (one drain thread per CPU): clone3 refused, clone with
     * CLONE_THREAD allowed */
    static int token;
    pthread_t t;
    void *ret = NULL;
    if (pthread_create(&t, NULL, thread_fn, &token) != 0 || pthread_join(t, &ret) != 0 ||
        ret != &token)
        return 11;
    return 0;
}

/* Everything the signer does after the filter still works. */
static void test_signer_work_allowed(void **state)
{
    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, g_pair), 0);
    char b[64];
    int st = in_filtered_child(signer_work);
    close(g_pair[0]);
    close(g_pair[1]);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("the signer's work failed under the filter: %s (the step in signer_work)",
                 how(st, b, sizeof(b)));
}

static int clone3_enosys(void)
{
    errno = 0;
    long r = syscall(__NR_clone3, NULL, (size_t)0);
    return r == -1 && errno == ENOSYS ? 0 : 1;
}

/* clone3 answers ENOSYS (so libc falls back to clone) and does not kill. */
static void test_clone3_enosys(void **state)
{
    (void)state;
    char b[64];
    int st = in_filtered_child(clone3_enosys);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("clone3 under the filter: %s, want ENOSYS", how(st, b, sizeof(b)));
}

/* ---- what kills ---- */

static int do_execve(void)
{
    char *const argv[] = {"true", NULL};
    execve("/bin/true", argv, NULL);
    return 0;
}

static int do_execveat(void)
{
    char *const argv[] = {"true", NULL};
    syscall(__NR_execveat, AT_FDCWD, "/bin/true", argv, NULL, 0);
    return 0;
}

static int do_socket_unix(void)
{
    return socket(AF_UNIX, SOCK_STREAM, 0) >= 0 ? 0 : 0;
}

static int do_socket_inet(void)
{
    return socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 0 : 0;
}

static int do_socketpair(void)
{
    int sv[2];
    return socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 ? 0 : 0;
}

/* connect, bind, listen, accept on the channel made before the filter:
 * the socket exists, so only the filter can stop the call */
static int do_connect(void)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    connect(g_pair[0], (struct sockaddr *)&a, sizeof(a));
    return 0;
}

static int do_bind(void)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    bind(g_pair[0], (struct sockaddr *)&a, sizeof(sa_family_t));
    return 0;
}

static int do_listen(void)
{
    listen(g_pair[0], 1);
    return 0;
}

static int do_accept(void)
{
    syscall(__NR_accept, g_pair[0], NULL, NULL);
    return 0;
}

static int do_accept4(void)
{
    accept4(g_pair[0], NULL, NULL, SOCK_NONBLOCK);
    return 0;
}

static int do_ptrace(void)
{
    syscall(__NR_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0);
    return 0;
}

static int do_vm_readv(void)
{
    char src[8] = "secret", dst[8];
    struct iovec l = {dst, sizeof(dst)}, r = {src, sizeof(src)};
    process_vm_readv(getppid(), &l, 1, &r, 1, 0);
    return 0;
}

static int do_vm_writev(void)
{
    char src[8] = "x", dst[8];
    struct iovec l = {src, sizeof(src)}, r = {dst, sizeof(dst)};
    process_vm_writev(getpid(), &l, 1, &r, 1, 0);
    return 0;
}

/* the ids the process already has: harmless if the call went through */
static int do_setuid(void)
{
    syscall(__NR_setuid, getuid());
    return 0;
}

static int do_setgid(void)
{
    syscall(__NR_setgid, getgid());
    return 0;
}

static int do_setresuid(void)
{
    syscall(__NR_setresuid, -1, -1, -1);
    return 0;
}

static int do_setresgid(void)
{
    syscall(__NR_setresgid, -1, -1, -1);
    return 0;
}

static int do_setreuid(void)
{
    syscall(__NR_setreuid, -1, -1);
    return 0;
}

static int do_setregid(void)
{
    syscall(__NR_setregid, -1, -1);
    return 0;
}

static int do_setfsuid(void)
{
    syscall(__NR_setfsuid, -1);
    return 0;
}

static int do_setfsgid(void)
{
    syscall(__NR_setfsgid, -1);
    return 0;
}

static int do_setgroups(void)
{
    syscall(__NR_setgroups, 0, NULL);
    return 0;
}

static int do_capset(void)
{
    syscall(__NR_capset, NULL, NULL);
    return 0;
}

static int do_pidfd_getfd(void)
{
    syscall(__NR_pidfd_getfd, -1, 0, 0);
    return 0;
}

static int do_process_madvise(void)
{
    syscall(__NR_process_madvise, -1, NULL, 0, 0, 0);
    return 0;
}

/* libc's fork: clone without CLONE_THREAD */
static int do_libc_fork(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    if (p > 0)
        waitpid(p, NULL, 0);
    return 0;
}

static int do_clone_process(void)
{
    long p = syscall(__NR_clone, (unsigned long)SIGCHLD, 0, 0, 0, 0);
    if (p == 0)
        _exit(0);
    if (p > 0)
        waitpid((pid_t)p, NULL, 0);
    return 0;
}

#ifdef __NR_fork
static int do_raw_fork(void)
{
    long p = syscall(__NR_fork);
    if (p == 0)
        _exit(0);
    if (p > 0)
        waitpid((pid_t)p, NULL, 0);
    return 0;
}
#endif

/* io_uring: a ring can make sockets and connect them (IORING_OP_SOCKET,
 * IORING_OP_CONNECT) without those system calls */
static int do_io_uring_setup(void)
{
    unsigned char params[120] = {0}; /* struct io_uring_params */
    long fd = syscall(__NR_io_uring_setup, 1, params);
    if (fd >= 0)
        close((int)fd);
    return 0;
}

#if defined(__x86_64__)
/* getpid through the x32 ABI (bit 30 set): a number the list would miss */
static int do_x32(void)
{
    syscall(__NR_getpid | 0x40000000);
    return 0;
}

/* getpid through the 32-bit entry (int 0x80, i386 number 20): another
 * architecture, with other numbers */
static long int80_getpid(void)
{
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
    return r;
}

static int do_int80(void)
{
    int80_getpid();
    return 0;
}
#endif

struct forbidden {
    const char *name;
    int (*fn)(void);
};

/* Each forbidden call kills the child with SIGSYS, and the child gets no
 * further: not an error code it could ignore. */
static void test_forbidden_calls_kill(void **state)
{
    (void)state;
    static const struct forbidden calls[] = {
        {"execve", do_execve},
        {"execveat", do_execveat},
        {"socket(AF_UNIX)", do_socket_unix},
        {"socket(AF_INET)", do_socket_inet},
        {"socketpair", do_socketpair},
        {"connect", do_connect},
        {"bind", do_bind},
        {"listen", do_listen},
        {"accept", do_accept},
        {"accept4", do_accept4},
        {"ptrace", do_ptrace},
        {"process_vm_readv", do_vm_readv},
        {"process_vm_writev", do_vm_writev},
        {"setuid", do_setuid},
        {"setgid", do_setgid},
        {"setresuid", do_setresuid},
        {"setresgid", do_setresgid},
        {"setreuid", do_setreuid},
        {"setregid", do_setregid},
        {"setfsuid", do_setfsuid},
        {"setfsgid", do_setfsgid},
        {"setgroups", do_setgroups},
        {"capset", do_capset},
        {"pidfd_getfd", do_pidfd_getfd},
        {"process_madvise", do_process_madvise},
        {"fork (libc)", do_libc_fork},
        {"clone without CLONE_THREAD", do_clone_process},
#ifdef __NR_fork
        {"fork", do_raw_fork},
#endif
        {"io_uring_setup", do_io_uring_setup},
#if defined(__x86_64__)
        {"getpid via x32", do_x32},
#endif
    };
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, g_pair), 0);
    int bad = 0;
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        char b[64];
        int st = in_filtered_child(calls[i].fn);
        if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS) {
            fprintf(stderr, "%s under the filter: %s, want killed by SIGSYS\n", calls[i].name,
                    how(st, b, sizeof(b)));
            bad++;
        }
    }
    close(g_pair[0]);
    close(g_pair[1]);
    assert_int_equal(bad, 0);
}

#if defined(__x86_64__)
static int int80_works(void)
{
    return int80_getpid() == getpid() ? 0 : 1;
}

/* The 32-bit entry (another audit arch) kills. Where the kernel has no
 * 32-bit entry at all (ia32_emulation off), nothing can come through it:
 * the test says so and checks that it is closed without the filter too. */
static void test_32bit_entry_kills(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(int80_works());
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    char b[64];
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr,
                "note: this kernel has no 32-bit system call entry (%s without a "
                "filter): the arch check has nothing to stop here\n",
                how(st, b, sizeof(b)));
        assert_true(WIFSIGNALED(st));
        return;
    }
    st = in_filtered_child(do_int80);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS)
        fail_msg("int 0x80 under the filter: %s, want killed by SIGSYS", how(st, b, sizeof(b)));
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernel_takes_the_filter),
        cmocka_unit_test(test_signer_work_allowed),
        cmocka_unit_test(test_clone3_enosys),
        cmocka_unit_test(test_forbidden_calls_kill),
#if defined(__x86_64__)
        cmocka_unit_test(test_32bit_entry_kills),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

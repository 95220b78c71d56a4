/* A process killed (SIGKILL) halfway through its first write of more than one byte to a file whose
   path ends with $KILL_MID_WRITE_TARGET, as a power loss or the OOM killer cuts a write short. A
   fake, preloaded (LD_PRELOAD) into the controller and what it starts; used by KillMidWrite
   (Tests/TestSupport/FaultInjection.swift) and Benchmarks/faults. */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int matches(int fd) {
    const char *suffix = getenv("KILL_MID_WRITE_TARGET");
    if (!suffix) return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    size_t m = strlen(suffix);
    return (size_t)n >= m && strcmp(path + n - m, suffix) == 0;
}

ssize_t write(int fd, const void *buffer, size_t count) {
    static ssize_t (*real)(int, const void *, size_t);
    if (!real) real = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    if (count > 1 && matches(fd)) {
        real(fd, buffer, count / 2);
        kill(getpid(), SIGKILL);
    }
    return real(fd, buffer, count);
}

static ssize_t cut(const char *name, int fd, const void *buffer, size_t count, off_t offset) {
    ssize_t (*real)(int, const void *, size_t, off_t) = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, name);
    if (count > 1 && matches(fd)) {
        real(fd, buffer, count / 2, offset);
        kill(getpid(), SIGKILL);
    }
    return real(fd, buffer, count, offset);
}

ssize_t pwrite(int fd, const void *buffer, size_t count, off_t offset) { return cut("pwrite", fd, buffer, count, offset); }
ssize_t pwrite64(int fd, const void *buffer, size_t count, off_t offset) { return cut("pwrite64", fd, buffer, count, offset); }


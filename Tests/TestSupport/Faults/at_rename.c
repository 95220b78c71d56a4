/* Something done at a process's first rename over a path ending with $KILL_AT_RENAME_TARGET (a
   commit point): a signal to itself or its parent, or a file written, as another process would at
   that moment. A fake, preloaded (LD_PRELOAD) into the controller and what it starts; used by
   AtRename (Tests/TestSupport/FaultInjection.swift) and Benchmarks/faults. */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int (*real)(const char *, const char *);
static int done;

static int matches(const char *path) {
    const char *suffix = getenv("KILL_AT_RENAME_TARGET");
    if (!suffix || !path) return 0;
    size_t n = strlen(path), m = strlen(suffix);
    return n >= m && strcmp(path + n - m, suffix) == 0;
}

static void act(void) {
    const char *path = getenv("KILL_AT_RENAME_WRITE_PATH");
    if (path) {
        const char *text = getenv("KILL_AT_RENAME_WRITE_TEXT");
        char temporary[4096];
        snprintf(temporary, sizeof temporary, "%s.at-rename-%d", path, (int)getpid());
        int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            if (text) write(fd, text, strlen(text));
            close(fd);
            real(temporary, path);
        }
        return;
    }
    const char *signal_text = getenv("KILL_AT_RENAME_SIGNAL");
    const char *recipient = getenv("KILL_AT_RENAME_RECIPIENT");
    int signal_number = signal_text ? atoi(signal_text) : SIGKILL;
    kill(recipient && strcmp(recipient, "parent") == 0 ? getppid() : getpid(), signal_number);
    const char *wait = getenv("KILL_AT_RENAME_WAIT_MS");
    if (wait) usleep((useconds_t)atoi(wait) * 1000);
}

int rename(const char *from, const char *to) {
    if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    const char *when = getenv("KILL_AT_RENAME_WHEN");
    int hit = !done && matches(to) && when;
    if (hit) done = 1;
    if (hit && strcmp(when, "before") == 0) act();
    int result = real(from, to);
    if (hit && strcmp(when, "after") == 0) act();
    return result;
}

/* Runs a command as its child and writes the child's peak resident memory (ru_maxrss, KiB) to the
   file named first; forwards SIGTERM, SIGINT and SIGHUP and ends as the command ended. Used by
   PeakMemoryLauncher (Tests/TestSupport/ChildProcess.swift). */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t child;
static void forward(int signal) { if (child > 0) kill(child, signal); }

int main(int argc, char **argv) {
    if (argc < 3) return 127;
    pid_t launcher = getpid();
    child = fork();
    if (child < 0) return 127;
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != launcher) _exit(127);
        execvp(argv[2], argv + 2);
        _exit(127);
    }
    struct sigaction action = {0};
    action.sa_handler = forward;
    sigaction(SIGTERM, &action, 0);
    sigaction(SIGINT, &action, 0);
    sigaction(SIGHUP, &action, 0);
    int status;
    struct rusage usage;
    while (wait4(child, &status, 0, &usage) < 0) if (errno != EINTR) return 127;
    FILE *file = fopen(argv[1], "w");
    if (file) { fprintf(file, "%ld\n", usage.ru_maxrss); fclose(file); }
    if (WIFSIGNALED(status)) {
        signal(WTERMSIG(status), SIG_DFL);
        kill(getpid(), WTERMSIG(status));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 127;
}

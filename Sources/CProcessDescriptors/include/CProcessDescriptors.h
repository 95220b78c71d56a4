#ifndef CPROCESSDESCRIPTORS_H
#define CPROCESSDESCRIPTORS_H

#include <spawn.h>

/// Duplicates file descriptor `descriptor` of process `pid` into this process (Linux 5.6
/// pidfd_open and pidfd_getfd; the caller needs ptrace access to the process). The copy refers to
/// the same open file (a listening socket keeps listening while either side holds it) and is
/// close-on-exec. Returns it, or -1 with errno set (ENOSYS before Linux 5.6, EPERM without
/// access).
int process_descriptor_copy(int pid, int descriptor);

/// Adds to `actions` the closing of every descriptor from `lowest` on (glibc 2.34
/// posix_spawn_file_actions_addclosefrom_np, declared only under _GNU_SOURCE). Returns 0, or an
/// error number (ENOSYS where glibc lacks it).
int process_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest);

/// Adds to `attributes` (keeping the flags set so far) a child with every signal unblocked and at
/// its default: posix_spawn otherwise passes on the calling thread's mask, and a SIGTERM blocked
/// there would never stop the child. Returns 0, or an error number.
int process_spawn_default_signals(posix_spawnattr_t *attributes);

#endif

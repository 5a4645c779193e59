/*
 * spawn.h - the one way odmrd, odmrd -t and odmrd-map start another program.
 */
#ifndef ODMRD_SPAWN_H
#define ODMRD_SPAWN_H

#include <sys/types.h>

/*
 * fork + execve of ARGV[0] (an absolute path) with ARGV, no shell, PATH as the only environment
 * variable, SIGPIPE at its default: stdin IN_FD, stdout OUT_FD, stderr ERR_FD (-1: /dev/null),
 * no other descriptor open. IN_FD is made blocking (shared with the caller: only for a descriptor
 * the caller no longer reads). Returns the child's pid (to be waited for), or -1 if fork failed.
 * A program that cannot be run exits 127 after "PROGNAME: cannot run PATH: REASON" on its stderr
 * (PROGNAME: odmrd or odmrd-map, as their other messages begin).
 */
pid_t spawn_exec(char *const argv[], int in_fd, int out_fd, int err_fd);

#endif

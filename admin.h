/*
 * admin.h - the admin's commands of odmrd: -t (check the set-up), -n (settings that differ from
 * the defaults), -V (version). Run from a shell, never by inetd.
 */
#ifndef ODMRD_ADMIN_H
#define ODMRD_ADMIN_H

#include <stddef.h>

/*
 * Run the command OPT ('t', 'n' or 'V') for the configuration at CFPATH with the N settings OPTS
 * (odmrd -o key=value) over the file's; the exit status.
 */
int admin_main(int opt, const char *cfpath, char *const *opts, size_t n);

#endif

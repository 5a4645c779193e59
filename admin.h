/*
 * admin.h - the admin's commands of odmrd: -t (check the set-up), -n (settings that differ from
 * the defaults), -V (version). Run from a shell, never by inetd.
 */
#ifndef ODMRD_ADMIN_H
#define ODMRD_ADMIN_H

/* Run the command OPT ('t', 'n' or 'V') for the configuration at CFPATH; the exit status. */
int admin_main(int opt, const char *cfpath);

#endif

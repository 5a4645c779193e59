/*
 * rundir.h - run_dir: its ownership and mode, the locks, the atrn_interval stamps and the
 * per-domain sockets that live in it. Every path in run_dir is made by rd_path().
 */
#ifndef ODMRD_RUNDIR_H
#define ODMRD_RUNDIR_H

#include <stddef.h>
#include <sys/types.h>
#include "config.h"

/* RUN_DIR/NAME into BUF; -1 (ENAMETOOLONG) if it does not fit, NAME is empty or has a '/'. */
int rd_path(const struct config *cf, const char *name, char *buf, size_t len);
/*
 * uid and primary gid of the account the MTA connects to our sockets as: mta_user, else the
 * MTA's own (see rundir.c); -1 and WHY if the account does not exist.
 */
int rd_mta_ids(const struct config *cf, uid_t *uid, gid_t *gid, char *why, size_t whylen);
/*
 * Is run_dir safe to serve from? A directory owned by our effective uid with no "other"
 * permission bit. -1 and a log-safe reason in WHY otherwise.
 */
int rd_check(const struct config *cf, char *why, size_t whylen);
/*
 * Can the MTA (MTA_UID, MTA_GID) reach sockets bound in run_dir? A socket is 0660 and gets
 * run_dir's group when run_dir is set-group-ID (our own group otherwise). Root always can.
 */
int rd_check_group(const struct config *cf, uid_t mta_uid, gid_t mta_gid, char *why, size_t whylen);
/* As root, when run_dir is missing: create it owned by `user`, group of mta_user, mode 2750. */
void rd_create(const struct config *cf);
/* flock RUN_DIR/NAME (created 0600). Returns the fd; -1 if another process holds it, -2 on error. */
int rd_lock(const struct config *cf, const char *name);
/* Remove NAME and drop its lock (fd < 0: nothing). */
void rd_unlock(const struct config *cf, const char *name, int fd);
/* Lock/stamp file name ".KIND.HEX" for KEY (hex, so any SASL user name is a safe file name). */
void rd_keyname(const char *kind, const char *key, char *buf, size_t len);
/* atrn_interval: 1 if USER's last accepted request was too recent, else records this one. */
int rd_too_soon(const struct config *cf, const char *user);
/* Listen on RUN_DIR/DOMAIN, mode 0660 (a stale socket there is replaced: we hold its lock). */
int rd_bind(const struct config *cf, const char *domain);
/* Remove RUN_DIR/DOMAIN and close FD (fd < 0: only the path). */
void rd_unbind(const struct config *cf, const char *domain, int fd);

#endif

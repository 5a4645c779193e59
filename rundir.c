/*
 * rundir.c - run_dir and what lives in it: per-customer and per-domain flock files, the
 * atrn_interval stamps, and the per-domain listening sockets the MTA delivers to.
 *
 * The layout (also odmrd.conf(5) and the package's tmpfiles line): run_dir owned by odmrd's
 * account, group = the primary group of mta_user, mode 2750. Set-group-ID makes each socket
 * inherit the MTA's group without odmrd joining that group; sockets are 0660, locks and stamps
 * 0600. So a local user who is neither odmrd, the MTA nor root cannot even reach a socket.
 *
 * Trusts: the config. Domain names come validated from domains.c; user names are hexed.
 * Invariants: every path is made by rd_path() (one place checks length and '/'); a socket exists
 * only while its domain's lock is held; no lock is taken in a run_dir others can write or read.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "rundir.h"

#define RD_PATH_MAX 4096
#define RD_MODE 02750

/* See rundir.h. */
int rd_path(const struct config *cf, const char *name, char *buf, size_t len)
{
	if (name[0] == '\0' || strchr(name, '/') != NULL ||
	    (size_t)snprintf(buf, len, "%s/%s", cf->run_dir, name) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/*
 * The account the MTA connects to our sockets as: mta_user, else the account the MTAs were seen
 * to connect as (SO_PEERCRED, Debian 12): Postfix 3.7's lmtp(8) runs as mail_owner "postfix"; a
 * Sendmail 8.17 queue run started by root stays root (Debian's MTA .cf sets no RunAsUser; only
 * the MSP runs as smmsp).
 */
static const char *rd_mta_user(const struct config *cf)
{
	if (cf->mta_user != NULL)
		return cf->mta_user;
	return cf->mta == CF_MTA_SENDMAIL ? "root" : "postfix";
}

/* See rundir.h. */
int rd_mta_ids(const struct config *cf, uid_t *uid, gid_t *gid, char *why, size_t whylen)
{
	struct passwd *pw = getpwnam(rd_mta_user(cf));

	if (pw == NULL) {
		snprintf(why, whylen, "mta_user %s: no such user", rd_mta_user(cf));
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

/* See rundir.h. */
int rd_check(const struct config *cf, char *why, size_t whylen)
{
	struct stat st;

	if (lstat(cf->run_dir, &st) < 0) {
		snprintf(why, whylen, "run_dir %s: %s", cf->run_dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "run_dir %s is not a directory", cf->run_dir);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		snprintf(why, whylen, "run_dir %s is owned by uid %u, not by odmrd's uid %u", cf->run_dir,
			 (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	if (st.st_mode & S_IRWXO) {
		snprintf(why, whylen, "run_dir %s is open to others (mode %04o; want 2750)", cf->run_dir,
			 (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

/* See rundir.h. */
int rd_check_group(const struct config *cf, uid_t mta_uid, gid_t mta_gid, char *why, size_t whylen)
{
	struct stat st;

	if (mta_uid == 0 || mta_uid == geteuid())
		return 0;
	if (stat(cf->run_dir, &st) < 0) {
		snprintf(why, whylen, "run_dir %s: %s", cf->run_dir, strerror(errno));
		return -1;
	}
	gid_t sock_gid = (st.st_mode & S_ISGID) ? st.st_gid : getegid();
	if (sock_gid != mta_gid || !(st.st_mode & S_IXGRP)) {
		snprintf(why, whylen, "run_dir %s (group %u, mode %04o): mta_user %s (group %u) could not "
			 "reach its sockets; want group %u, mode 2750", cf->run_dir, (unsigned)st.st_gid,
			 (unsigned)(st.st_mode & 07777), rd_mta_user(cf), (unsigned)mta_gid, (unsigned)mta_gid);
		return -1;
	}
	return 0;
}

/* See rundir.h. Only the last component is made: its parent (/run) is the system's. */
void rd_create(const struct config *cf)
{
	struct stat st;
	uid_t owner = 0, mu;
	gid_t group = 0;
	char why[300];

	if (lstat(cf->run_dir, &st) == 0 || errno != ENOENT)
		return;
	if (cf->user != NULL) {
		struct passwd *pw = getpwnam(cf->user);
		if (pw == NULL)
			return;  /* proc_privsep reports the unknown user */
		owner = pw->pw_uid;
		group = pw->pw_gid;
	}
	if (cf->mta != CF_MTA_EXEC && rd_mta_ids(cf, &mu, &group, why, sizeof why) < 0) {
		log_msg(LOG_ERR, "run_dir %s is missing and cannot be created: %s", cf->run_dir, why);
		return;
	}
	if (mkdir(cf->run_dir, 0700) < 0) {
		if (errno != EEXIST)
			log_msg(LOG_ERR, "cannot create run_dir %s: %s", cf->run_dir, strerror(errno));
		return;
	}
	int fd = open(cf->run_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchown(fd, owner, group) < 0 || fchmod(fd, RD_MODE) < 0)
		log_msg(LOG_ERR, "cannot set up run_dir %s: %s", cf->run_dir, strerror(errno));
	else
		log_msg(LOG_NOTICE, "created run_dir %s (uid %u, gid %u, mode 2750)", cf->run_dir,
			(unsigned)owner, (unsigned)group);
	if (fd >= 0)
		close(fd);
}

/* See rundir.h. */
int rd_lock(const struct config *cf, const char *name)
{
	struct stat a, b;
	char path[RD_PATH_MAX];

	if (rd_path(cf, name, path, sizeof path) < 0)
		return -2;
	for (int tries = 0; tries < 5; tries++) {
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return -2;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int e = errno;
			close(fd);
			return e == EWOULDBLOCK ? -1 : -2;
		}
		/* The holder before us may have unlinked the file after we opened it: retry on the new one. */
		if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
			return fd;
		close(fd);
	}
	return -1;
}

/* See rundir.h. */
void rd_unlock(const struct config *cf, const char *name, int fd)
{
	char path[RD_PATH_MAX];

	if (fd < 0)
		return;
	if (rd_path(cf, name, path, sizeof path) == 0)
		unlink(path);
	close(fd);
}

/* See rundir.h. */
void rd_keyname(const char *kind, const char *key, char *buf, size_t len)
{
	size_t o = (size_t)snprintf(buf, len, ".%s.", kind);

	for (const unsigned char *p = (const unsigned char *)key; *p && o + 3 < len; p++)
		o += (size_t)snprintf(buf + o, len - o, "%02x", *p);
}

/* See rundir.h. */
int rd_too_soon(const struct config *cf, const char *user)
{
	char name[600], path[RD_PATH_MAX];
	struct stat st;
	time_t now = time(NULL);

	if (cf->atrn_interval == 0)
		return 0;
	rd_keyname("stamp", user, name, sizeof name);
	if (rd_path(cf, name, path, sizeof path) < 0)
		return 0;
	int soon = stat(path, &st) == 0 && now - st.st_mtime < (time_t)cf->atrn_interval;
	if (!soon) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0) {
			futimens(fd, NULL);
			close(fd);
		}
	}
	return soon;
}

/* See rundir.h. */
int rd_bind(const struct config *cf, const char *domain)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if (rd_path(cf, domain, sun.sun_path, sizeof sun.sun_path) < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	unlink(sun.sun_path);  /* stale from a crashed session: we hold the domain lock */
	/* The mode comes from the umask at bind(2): 0660, never briefly wider. */
	mode_t old = umask(0117);
	int r = bind(fd, (struct sockaddr *)&sun, sizeof sun);
	umask(old);
	if (r < 0 || listen(fd, 16) < 0) {
		int e = errno;
		close(fd);
		if (r == 0)
			unlink(sun.sun_path);
		errno = e;
		return -1;
	}
	return fd;
}

/* See rundir.h. */
void rd_unbind(const struct config *cf, const char *domain, int fd)
{
	char path[RD_PATH_MAX];

	if (rd_path(cf, domain, path, sizeof path) == 0)
		unlink(path);
	if (fd >= 0)
		close(fd);
}

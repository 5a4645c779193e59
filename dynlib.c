/*
 * dynlib.c - open a shared library at its first use.
 *
 * odmrd is exec'd for every connection, and every library it is linked with is mapped, paged in
 * and relocated by ld.so for every connection, and sits in the global symbol scope that every
 * later symbol look-up (libsasl2's plugins, Berkeley DB under sasldb) walks through. Libraries
 * that only some sessions use are therefore opened here when the first of those sessions gets
 * there: GDBM at the first customer-map look-up (ATRN), jansson at the first Postfix queue probe,
 * libwrap when tcp_wrappers = yes. RTLD_LOCAL keeps them out of the global scope; RTLD_LAZY binds
 * only the functions a session calls (an object linked with BIND_NOW is bound at once anyway).
 * Trusts: the soname, fixed at build time (Makefile). The package must depend on these libraries
 * itself: they are not DT_NEEDED, so dpkg-shlibdeps cannot see them.
 */
#include <dlfcn.h>
#include <stdio.h>

#include "dynlib.h"

/* See dynlib.h. */
int dynlib_load(const char *soname, void **handle, const struct dynlib_sym *syms, size_t n,
		char *err, size_t errlen)
{
	if (*handle != NULL)
		return 0;
	void *h = dlopen(soname, RTLD_LAZY | RTLD_LOCAL);
	if (h == NULL) {
		snprintf(err, errlen, "%s", dlerror());
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		/* POSIX's way to store dlsym's result in a function pointer. */
		if ((*syms[i].slot = dlsym(h, syms[i].name)) == NULL) {
			snprintf(err, errlen, "%s: no symbol %s", soname, syms[i].name);
			dlclose(h);
			return -1;
		}
	}
	*handle = h;
	return 0;
}

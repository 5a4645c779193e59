/*
 * dynlib.h - libraries odmrd opens when a session first needs them instead of at exec.
 */
#ifndef ODMRD_DYNLIB_H
#define ODMRD_DYNLIB_H

#include <stddef.h>

/* One symbol to resolve: NAME, and the function pointer that receives its address. */
struct dynlib_sym {
	const char *name;
	void **slot;
};

/*
 * Open SONAME and resolve the N symbols of SYMS, once per process (*HANDLE remembers it; later
 * calls return 0 at once). 0, or -1 and a reason in err; after a failure the caller uses none of
 * the pointers, and the next call tries again.
 */
int dynlib_load(const char *soname, void **handle, const struct dynlib_sym *syms, size_t n,
		char *err, size_t errlen);

#endif

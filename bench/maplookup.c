/*
 * maplookup.c - cost of odmrd's customer-map lookup alone (dom_lookup from ../domains.c: gdbm_open,
 * gdbm_fetch, gdbm_close, parse), repeated N times on one map, as one ATRN does it once.
 * usage: maplookup MAP.db USER N   -> prints "lookup_us=<mean>"
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "domains.h"

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	int n = atoi(argv[3]);
	char why[512];
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++) {
		struct dom_list l;
		if (dom_lookup(argv[1], argv[2], "", &l, why, sizeof why) != DOM_OK) {
			fprintf(stderr, "lookup failed: %s\n", why);
			return 1;
		}
		dom_free(&l);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("lookup_us=%.2f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n / 1000.0);
	return 0;
}

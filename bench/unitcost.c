/*
 * unitcost.c - what the kernel-side building blocks of a per-connection process cost on this
 * machine, for the benchmark report's "where the time goes" (not a benchmark of odmrd).
 *
 * Prints one line, key=value, CPU time (this process, CLOCK_PROCESS_CPUTIME_ID) per operation:
 *   cpuid_us        one CPUID instruction (a VM exit under virtualisation; glibc's start-up of
 *                   every process runs a few dozen of them to learn CPU features and caches)
 *   anon_fault_us   first write to a fresh anonymous page (heap, stack, .bss)
 *   file_fault_us   first read of a page of a file mapping (a shared library's code or data;
 *                   the kernel maps the neighbouring cached pages on the same fault)
 *   mmap_us         mmap + munmap of a 1.8 MB file mapping (ld.so maps each library in 4-5 pieces)
 *   open_us         open + close of a file (ld.so, the config, the sasldb, the map)
 *   syscall_us      the cheapest system call (getppid)
 * and, with -c PROGRAM ARGS..., the number of CPUID instructions PROGRAM executes from exec to
 * exit (single-stepped under ptrace; run it on the static floor, whose start-up is glibc's).
 * Trusts: nothing; all files it maps are its own argv[0] and the libc it runs with.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* CPU time of this process in µs. */
static double cpu_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* Count CPUID instructions of ARGV[0] from exec to exit; -1 on failure. */
static long count_cpuid(char **argv)
{
	int st;
	long n = 0;
	pid_t p = fork();

	if (p == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		execv(argv[0], argv);
		_exit(127);
	}
	if (p < 0 || waitpid(p, &st, 0) < 0 || !WIFSTOPPED(st))
		return -1;
	for (;;) {
		struct user_regs_struct r;
		if (ptrace(PTRACE_GETREGS, p, 0, &r) < 0)
			return -1;
		long w = ptrace(PTRACE_PEEKTEXT, p, (void *)r.rip, 0);
		if ((w & 0xffff) == 0xa20f)  /* 0F A2: cpuid */
			n++;
		if (ptrace(PTRACE_SINGLESTEP, p, 0, 0) < 0 || waitpid(p, &st, 0) < 0)
			return -1;
		if (WIFEXITED(st) || WIFSIGNALED(st))
			return n;
	}
}

int main(int argc, char **argv)
{
	const char *lib = "/lib/x86_64-linux-gnu/libc.so.6";
	unsigned a, b, c, d;
	volatile unsigned sink = 0;  /* keeps the measured loops */
	struct stat sb;
	double t;
	int i, n;

	if (argc > 2 && !strcmp(argv[1], "-c")) {
		printf("cpuid_count=%ld\n", count_cpuid(argv + 2));
		return 0;
	}
	n = 2000;
	t = cpu_us();
	for (i = 0; i < n; i++) {
		__cpuid_count(4, (unsigned)i & 3, a, b, c, d);
		sink += a ^ b ^ c ^ d;
	}
	printf("cpuid_us=%.2f ", (cpu_us() - t) / n);

	n = 20000;
	char *m = mmap(NULL, (size_t)n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 1;
	t = cpu_us();
	for (i = 0; i < n; i++)
		m[(size_t)i * 4096] = 1;
	printf("anon_fault_us=%.2f ", (cpu_us() - t) / n);
	munmap(m, (size_t)n * 4096);

	int fd = open(lib, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0)
		return 1;
	size_t len = (size_t)sb.st_size, faults = 0;
	t = cpu_us();
	for (i = 0; i < 500; i++) {
		volatile const char *f = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (f == MAP_FAILED)
			return 1;
		for (size_t o = 0; o < len; o += 16 * 4096, faults++)  /* one fault per fault-around window */
			sink += (unsigned)f[o];
		munmap((void *)f, len);
	}
	double fault_total = cpu_us() - t;
	t = cpu_us();
	for (i = 0; i < 5000; i++) {
		void *f = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
		munmap(f, len);
	}
	double map_us = (cpu_us() - t) / 5000;
	printf("file_fault_us=%.2f mmap_us=%.2f ", (fault_total - 500 * map_us) / (double)faults, map_us);
	close(fd);

	n = 20000;
	t = cpu_us();
	for (i = 0; i < n; i++)
		close(open(lib, O_RDONLY | O_CLOEXEC));
	printf("open_us=%.2f ", (cpu_us() - t) / n);
	t = cpu_us();
	for (i = 0; i < n; i++)
		sink += (unsigned)getppid();
	printf("syscall_us=%.3f\n", (cpu_us() - t) / n);
	return 0;
}

/* srv_empty.c - the baseline for bench/tls/measure.sh: an empty C program (exec + libc only). */
int main(void)
{
	return 0;
}

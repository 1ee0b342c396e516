/*
 * clockshift: an LD_PRELOAD library that shifts a process's wall clock by RL_CLOCK_SHIFT_MS
 * milliseconds (negative: behind, positive: ahead), for the clock-skew failover test, or by
 * the number in the file RL_CLOCK_SHIFT_FILE names, re-read at every clock read, for tests
 * that step the clock while the server runs.
 *
 * Why not libfaketime: Debian's redis-server is linked with jemalloc, which reads the clock
 * while libfaketime is still initialising; libfaketime then aborts the recursion and
 * redis-server exits at start. This shim has no initialisation to recurse into: it reads the
 * clock with the raw system call (no dlsym, no allocation) and shifts only the wall clock
 * (CLOCK_REALTIME*, gettimeofday, time), which is what RedisModule_Milliseconds and key
 * expiry use. Monotonic clocks (timeouts, cluster failure detection) are left alone, like a
 * real machine whose NTP-set wall clock is off.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The shift in the file RL_CLOCK_SHIFT_FILE names, re-read on every clock read so that a
 * test can step the clock while the server runs (decimal ms; raw system calls, no stdio). */
static long long file_shift_ms(const char *path) {
    char buf[32];
    long long v = 0;
    int neg = 0;
    long fd = syscall(SYS_open, path, 0 /* O_RDONLY */);
    if (fd < 0)
        return 0;
    long n = syscall(SYS_read, fd, buf, sizeof buf - 1);
    syscall(SYS_close, fd);
    for (long i = 0; i < n; i++) {
        if (buf[i] == '-' && i == 0)
            neg = 1;
        else if (buf[i] >= '0' && buf[i] <= '9')
            v = v * 10 + (buf[i] - '0');
        else
            break;
    }
    return neg ? -v : v;
}

static long long shift_ms(void) {
    /* Read once; a racing first read in two threads computes the same value. */
    static volatile int ready;
    static long long value;
    static const char *file;
    if (!ready) {
        const char *s = getenv("RL_CLOCK_SHIFT_MS");
        value = s ? atoll(s) : 0;
        file = getenv("RL_CLOCK_SHIFT_FILE");
        ready = 1;
    }
    return file ? file_shift_ms(file) : value;
}

static void shift_ts(struct timespec *ts) {
    long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + shift_ms() * 1000000LL;
    ts->tv_sec = (time_t)(ns / 1000000000LL);
    ts->tv_nsec = (long)(ns % 1000000000LL);
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    int rc = (int)syscall(SYS_clock_gettime, id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        shift_ts(ts);
    return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    struct timespec ts;
    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return -1;
    tv->tv_sec = ts.tv_sec; /* glibc declares tv non-null */
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

time_t time(time_t *out) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return (time_t)-1;
    if (out)
        *out = ts.tv_sec;
    return ts.tv_sec;
}

/*
 * frozenclock: an LD_PRELOAD library that makes a process's wall clock read whatever Unix
 * millisecond a test writes into the file named by RL_FROZEN_CLOCK_FILE, so that the module
 * (RedisModule_Milliseconds) and a Lua script (TIME) decide at exact instants and the
 * conformance traces are deterministic.
 *
 * Like tests/cluster/clockshift.c it reads the real clock with the raw system call (no dlsym,
 * no allocation, nothing for jemalloc to recurse into) and touches only the wall clock
 * (CLOCK_REALTIME*, gettimeofday, time); monotonic clocks keep running. While the file is
 * absent, empty or unreadable the real clock is used, so the server starts normally.
 * The file is read on every call (a few microseconds): fine for a test server, not for
 * anything else.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The frozen instant in ms, or -1 to use the real clock. */
static long long frozen_ms(void) {
    const char *path = getenv("RL_FROZEN_CLOCK_FILE");
    if (!path)
        return -1;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[32];
    long n = (long)syscall(SYS_read, fd, buf, sizeof buf - 1);
    syscall(SYS_close, fd);
    if (n <= 0)
        return -1;
    long long v = 0;
    for (long i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
        v = v * 10 + (buf[i] - '0');
    return v > 0 ? v : -1;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    int rc = (int)syscall(SYS_clock_gettime, id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
        long long ms = frozen_ms();
        if (ms >= 0) {
            ts->tv_sec = (time_t)(ms / 1000);
            ts->tv_nsec = (long)(ms % 1000) * 1000000L;
        }
    }
    return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    struct timespec ts;
    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return -1;
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

time_t time(time_t *t) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t)
        *t = ts.tv_sec;
    return ts.tv_sec;
}

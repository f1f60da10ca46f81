// Per-thread scheduling priority: background builds run niced so queries keep their cores.
#define _GNU_SOURCE
#include "vecgo_native.h"
#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

int vecgo_set_thread_nice(int nice) {
#if defined(__linux__)
    // PRIO_PROCESS with a thread id sets that thread's nice value alone (Linux, not POSIX).
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice);
#else
    (void)nice;
    return -1;
#endif
}

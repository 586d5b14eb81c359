#include <libpq-fe.h>
#include <unistd.h>
#include <sys/syscall.h>

/* Sets the effective uid of the calling thread only. glibc's seteuid() changes every thread
   of the process; the raw system call does not, so a connection made under another account
   (for peer authentication) cannot leak that identity into work on other threads. */
static inline int hm_thread_set_euid(uid_t euid) {
    return (int)syscall(SYS_setresuid, (uid_t)-1, euid, (uid_t)-1);
}

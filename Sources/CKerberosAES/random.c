#include "CKerberosAES.h"

#include <errno.h>

#if defined(__linux__)
#include <sys/random.h>
#else
#include <stdlib.h>
#endif

int tessera_krb_random(uint8_t *out, size_t count) {
#if defined(__linux__)
    size_t filled = 0;
    while (filled < count) {
        ssize_t got = getrandom(out + filled, count - filled, 0);
        if (got > 0) {
            filled += (size_t)got;
        } else if (got < 0 && errno != EINTR) {
            return -1;
        }
    }
    return 0;
#else
    arc4random_buf(out, count);
    return 0;
#endif
}

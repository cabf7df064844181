/*
 * base.c - the fatal-error path and small platform helpers.
 */
#include "base.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The linker defines these for a section whose name is a C identifier. At
 * least one SPANGC_STATE variable exists in every build (the heap). */
extern char __start_spangc_state[] __attribute__((visibility("hidden")));
extern char __stop_spangc_state[] __attribute__((visibility("hidden")));

void spangc_state_bounds(uintptr_t *lo, uintptr_t *hi)
{
    *lo = (uintptr_t)__start_spangc_state;
    *hi = (uintptr_t)__stop_spangc_state;
}

uint64_t spangc_nanotime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t put_str(char *buf, size_t pos, size_t cap, const char *s)
{
    while (*s && pos + 1 < cap)
        buf[pos++] = *s++;
    return pos;
}

static size_t put_num(char *buf, size_t pos, size_t cap, unsigned long long v, unsigned base,
                      bool neg)
{
    char tmp[32];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (neg)
        tmp[n++] = '-';
    if (base == 16) {
        tmp[n++] = 'x';
        tmp[n++] = '0';
    }
    while (n > 0 && pos + 1 < cap)
        buf[pos++] = tmp[--n];
    return pos;
}

void spangc_throw(const char *fmt, ...)
{
    char buf[512];
    size_t pos = put_str(buf, 0, sizeof buf, "spangc: fatal: ");
    va_list ap;
    va_start(ap, fmt);
    for (const char *f = fmt; *f && pos + 1 < sizeof buf; f++) {
        if (*f != '%') {
            buf[pos++] = *f;
            continue;
        }
        f++;
        /* Length: none (int), l or ll (long), z (size_t): all read as a
         * 64-bit value except plain ints. */
        int wide = 0;
        while (*f == 'l' || *f == 'z') {
            wide = 1;
            f++;
        }
        switch (*f) {
        case 's': {
            const char *str = va_arg(ap, const char *);
            pos = put_str(buf, pos, sizeof buf, str ? str : "(null)");
            break;
        }
        case 'd': {
            long long v = wide ? va_arg(ap, long long) : va_arg(ap, int);
            unsigned long long mag = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
            pos = put_num(buf, pos, sizeof buf, mag, 10, v < 0);
            break;
        }
        case 'u':
        case 'x': {
            unsigned long long v = wide ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
            pos = put_num(buf, pos, sizeof buf, v, *f == 'u' ? 10 : 16, false);
            break;
        }
        case 'p':
            pos = put_num(buf, pos, sizeof buf, (uintptr_t)va_arg(ap, void *), 16, false);
            break;
        case '%':
            buf[pos++] = '%';
            break;
        default:
            goto done;
        }
    }
done:
    va_end(ap);
    buf[pos++] = '\n';
    ssize_t ignored = write(2, buf, pos);
    (void)ignored;
    abort();
}

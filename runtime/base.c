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
        if (*f == 's') {
            const char *s = va_arg(ap, const char *);
            pos = put_str(buf, pos, sizeof buf, s ? s : "(null)");
        } else if (*f == 'd') {
            int v = va_arg(ap, int);
            pos = put_num(buf, pos, sizeof buf, (unsigned long long)(v < 0 ? -(long long)v : v),
                          10, v < 0);
        } else if (*f == 'u') {
            pos = put_num(buf, pos, sizeof buf, va_arg(ap, unsigned), 10, false);
        } else if (*f == 'x') {
            pos = put_num(buf, pos, sizeof buf, va_arg(ap, unsigned), 16, false);
        } else if (*f == 'z' && f[1] == 'u') {
            f++;
            pos = put_num(buf, pos, sizeof buf, va_arg(ap, size_t), 10, false);
        } else if (*f == 'l' && f[1] == 'x') {
            f++;
            pos = put_num(buf, pos, sizeof buf, va_arg(ap, unsigned long), 16, false);
        } else if (*f == 'p') {
            pos = put_num(buf, pos, sizeof buf, (uintptr_t)va_arg(ap, void *), 16, false);
        } else if (*f == '%') {
            buf[pos++] = '%';
        } else {
            break;
        }
    }
    va_end(ap);
    buf[pos++] = '\n';
    ssize_t ignored = write(2, buf, pos);
    (void)ignored;
    abort();
}

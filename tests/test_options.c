/*
 * test_options.c - gc_options, GC_* environment variables and defaults.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "options.h"

static void clear_env(void)
{
    const char *vars[] = {"GC_PERCENT", "GC_MEMORY_LIMIT", "GC_TRACE", "GC_DEBUG",
                          "GC_SUSPEND_SIGNAL", "GC_SCAVENGE_DELAY_MS", "GC_FINALIZER_THREAD",
                          "GC_MIN_HEAP", "GC_MARKERS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

static void test_defaults(void **state)
{
    (void)state;
    clear_env();
    assert_int_equal(spangc_options_load(NULL), 0);
    assert_int_equal(spangc_gc_percent(), 100);
    assert_int_equal(spangc_memory_limit(), 0);
    assert_false(spangc_cfg.trace);
    assert_false(spangc_cfg.verify || spangc_cfg.poison || spangc_cfg.stress);
    assert_int_equal(spangc_cfg.suspend_signal, SIGPWR);
    assert_true(spangc_cfg.background_sweep);
    assert_int_equal(spangc_cfg.profile_rate, 512 * 1024);
    assert_int_equal(spangc_cfg.min_heap, 4 << 20);
}

static void test_environment(void **state)
{
    (void)state;
    clear_env();
    setenv("GC_PERCENT", "50", 1);
    setenv("GC_MEMORY_LIMIT", "512MiB", 1);
    setenv("GC_TRACE", "1", 1);
    setenv("GC_DEBUG", "verify,poison,stress=7", 1);
    setenv("GC_SUSPEND_SIGNAL", "34", 1);
    setenv("GC_SCAVENGE_DELAY_MS", "250", 1);
    setenv("GC_MIN_HEAP", "768KiB", 1);
    setenv("GC_MARKERS", "2000", 1); /* "at most 8 are used", not an error */
    assert_int_equal(spangc_options_load(NULL), 0);
    assert_int_equal(spangc_cfg.min_heap, 768 << 10);
    assert_int_equal(spangc_cfg.markers, 2000);
    assert_int_equal(spangc_gc_percent(), 50);
    assert_int_equal(spangc_memory_limit(), 512ull << 20);
    assert_true(spangc_cfg.trace);
    assert_true(spangc_cfg.verify && spangc_cfg.poison);
    assert_int_equal(spangc_cfg.stress, 7);
    assert_int_equal(spangc_cfg.suspend_signal, 34);
    assert_int_equal(spangc_cfg.scavenge_delay_ns, 250000000ull);

    setenv("GC_PERCENT", "off", 1);
    assert_int_equal(spangc_options_load(NULL), 0);
    assert_true(spangc_gc_percent() < 0);
    setenv("GC_PERCENT", "-5", 1);
    assert_int_equal(spangc_options_load(NULL), 0);
    assert_true(spangc_gc_percent() < 0);
    setenv("GC_PERCENT", "0", 1); /* taken as 1 */
    assert_int_equal(spangc_options_load(NULL), 0);
    assert_int_equal(spangc_gc_percent(), 1);

    /* "0" turns a switch off; a bare "stress" collects at every allocation. */
    setenv("GC_TRACE", "0", 1);
    setenv("GC_FINALIZER_THREAD", "0", 1);
    setenv("GC_DEBUG", "stress", 1);
    assert_int_equal(spangc_options_load(NULL), 0);
    assert_false(spangc_cfg.trace);
    assert_false(spangc_cfg.finalizer_thread);
    assert_int_equal(spangc_cfg.stress, 1);
    setenv("GC_FINALIZER_THREAD", "1", 1);
    assert_int_equal(spangc_options_load(NULL), 0);
    assert_true(spangc_cfg.finalizer_thread);
    setenv("GC_TRACE", "1", 1); /* on again: IGNORE_ENV must ignore it below */

    /* Options win over the environment; IGNORE_ENV ignores it. */
    gc_options o = {.gc_percent = 200, .min_heap = 2 << 20};
    assert_int_equal(spangc_options_load(&o), 0);
    assert_int_equal(spangc_gc_percent(), 200);
    assert_int_equal(spangc_cfg.min_heap, 2 << 20);
    /* The debug fields (lox --gc-stress sets .stress), each on its own:
     * GC_DEBUG gives what the options leave unset. */
    setenv("GC_DEBUG", "poison,stress=9", 1);
    gc_options dbg = {.stress = 3};
    assert_int_equal(spangc_options_load(&dbg), 0);
    assert_int_equal(spangc_cfg.stress, 3);
    assert_true(spangc_cfg.poison && !spangc_cfg.verify);
    gc_options dbg2 = {.debug = GC_DEBUG_VERIFY};
    assert_int_equal(spangc_options_load(&dbg2), 0);
    assert_int_equal(spangc_cfg.stress, 9);
    assert_true(spangc_cfg.verify && !spangc_cfg.poison);
    unsetenv("GC_DEBUG");
    gc_options ignore = {.flags = GC_OPT_IGNORE_ENV};
    assert_int_equal(spangc_options_load(&ignore), 0);
    assert_int_equal(spangc_gc_percent(), 100);
    assert_int_equal(spangc_memory_limit(), 0);
    assert_false(spangc_cfg.trace);
    clear_env();
}

static void test_bad_values(void **state)
{
    (void)state;
    const char *bad[][2] = {
        {"GC_PERCENT", "lots"},          {"GC_PERCENT", "12abc"},
        {"GC_MEMORY_LIMIT", "12 parsecs"}, {"GC_MEMORY_LIMIT", "-1"},
        {"GC_MEMORY_LIMIT", "99999999999999999999GiB"},
        {"GC_DEBUG", "verify,frobnicate"}, {"GC_DEBUG", "stress=x"},
        {"GC_SUSPEND_SIGNAL", "9"},      {"GC_SUSPEND_SIGNAL", "1000"},
        {"GC_SCAVENGE_DELAY_MS", "-3"},  {"GC_MIN_HEAP", "0"},
        {"GC_MIN_HEAP", "1.5MiB"},
        /* Out of range before narrowing: 2^32 + 10 is not SIGUSR1, 2^32 ms
         * is not 0, and stress=2^32 does not turn stress off. */
        {"GC_SUSPEND_SIGNAL", "4294967306"}, {"GC_SCAVENGE_DELAY_MS", "4294967296"},
        {"GC_DEBUG", "stress=4294967296"},   {"GC_MARKERS", "0"},
        {"GC_MARKERS", "4294967296"},
        /* Blanks are refused on either side, and so is a '+'. */
        {"GC_PERCENT", " 50"},           {"GC_PERCENT", "50 "},
        {"GC_PERCENT", "+50"},           {"GC_MARKERS", "\t2"},
        /* glibc's own signals, and those no stop may use. */
        {"GC_SUSPEND_SIGNAL", "32"},     {"GC_SUSPEND_SIGNAL", "33"},
        {"GC_SUSPEND_SIGNAL", "11"},     {"GC_SUSPEND_SIGNAL", "7"},
        {"GC_SUSPEND_SIGNAL", "19"},
        /* Beyond the ranges, before any narrowing. */
        {"GC_PERCENT", "1000001"},       {"GC_PERCENT", "4294967306"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clear_env();
        setenv(bad[i][0], bad[i][1], 1);
        assert_int_equal(spangc_options_load(NULL), -EINVAL);
    }
    clear_env();
    gc_options o1 = {.debug = 0x100};
    assert_int_equal(spangc_options_load(&o1), -EINVAL);
    gc_options o2 = {.suspend_signal = SIGSTOP};
    assert_int_equal(spangc_options_load(&o2), -EINVAL);
    gc_options o3 = {.suspend_signal = 32};
    assert_int_equal(spangc_options_load(&o3), -EINVAL);
    gc_options o4 = {.flags = 0x100};
    assert_int_equal(spangc_options_load(&o4), -EINVAL);
    /* An empty variable counts as unset. */
    setenv("GC_PERCENT", "", 1);
    assert_int_equal(spangc_options_load(NULL), 0);
    clear_env();
}

static void test_parse_bytes(void **state)
{
    (void)state;
    struct {
        const char *s;
        uint64_t v;
    } ok[] = {{"0", 0},          {"4096", 4096},         {"1K", 1024},
              {"2KiB", 2048},    {"3M", 3 << 20},        {"512MiB", 512ull << 20},
              {"2GiB", 2ull << 30}, {"1TiB", 1ull << 40}, {"5MB", 5000000},
              {"7GB", 7000000000ull}, {"64B", 64}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 1;
        assert_true(spangc_parse_bytes(ok[i].s, &v));
        assert_int_equal(v, ok[i].v);
    }
    const char *bad[] = {"", "MiB", "1.5GiB", "1 GiB", "1PiB", "18446744073709551616",
                         "20000000000GiB"};
    uint64_t v;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(spangc_parse_bytes(bad[i], &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_environment),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_parse_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

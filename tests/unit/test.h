/* SPDX-License-Identifier: MIT */
/*
 * test.h - the unit-test harness: CHECK records a failure and goes on,
 * TEST_MAIN runs the listed tests and prints "N passed, N failed".
 * Each test is one function; it passes when none of its CHECKs failed.
 */
#ifndef CRIER_TEST_H
#define CRIER_TEST_H

#include <stdio.h>
#include <string.h>

static int test_failed_checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                      \
            test_failed_checks++;                                                                  \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_)) {                                                        \
            fprintf(stderr, "  FAIL %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__,   \
                    #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                   \
            test_failed_checks++;                                                                  \
        }                                                                                          \
    } while (0)

typedef struct test_case {
    const char *name;
    void (*fn)(void);
} test_case;

#define TEST(fn)                                                                                   \
    {                                                                                              \
#fn, fn                                                                                    \
    }

static inline int test_run(const char *suite, const test_case *tests, size_t n)
{
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        int before = test_failed_checks;
        tests[i].fn();
        if (test_failed_checks == before) {
            passed++;
            printf("ok   %s.%s\n", suite, tests[i].name);
        } else {
            failed++;
            printf("FAIL %s.%s\n", suite, tests[i].name);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#define TEST_MAIN(suite, ...)                                                                      \
    int main(void)                                                                                 \
    {                                                                                              \
        static const test_case tests_[] = {__VA_ARGS__};                                           \
        return test_run(suite, tests_, sizeof(tests_) / sizeof(tests_[0]));                        \
    }

#endif

/* fuzz_common.h — what every fuzz target of tools/fuzz shares: libFuzzer's
 * entry points and the checks that turn a wrong answer into a crash (a
 * fuzzer only sees crashes, so a property that must hold aborts when it does
 * not, saying which one).
 *
 * The targets are built only with FENBO_FUZZ=ON (cmake/fuzz.cmake); each runs
 * the real code of lib/ and intake/ on arbitrary bytes. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include "fb_petition.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with "fuzz check failed: <what>" on stderr (and the input's stack)
 * unless ok. */
#define FZ_CHECK(ok, what)                                                                         \
    do {                                                                                           \
        if (!(ok))                                                                                 \
            fz_fail(what, __FILE__, __LINE__);                                                     \
    } while (0)

void fz_fail(const char *what, const char *file, int line) __attribute__((noreturn));

/* Once per process: TZ=Asia/Shanghai, logs only errors (a refusal per input
 * would drown the fuzzer's own output), and fb_text_init() for
 * fb_text_normalize. */
void fz_init_common(void);

/* A string that reaches a client or the database: NULL allowed when
 * may_be_null, else valid UTF-8. */
void fz_check_text(const char *s, bool may_be_null, const char *what);

/* The checks every accepted petition passes: the fields the contract says are
 * set, valid UTF-8 everywhere, a location on the globe, and a spool/bus
 * round trip (dumps, loads, dumps) that gives the same text. */
void fz_check_petition(const fb_petition_t *p, const char *channel);

#endif

/* dvmstream — error codes shared by every core module.
 *
 * Every public core function returns a dvm_err: 0 (DVM_OK) on success, a
 * negative code otherwise. Functions that reject peer input additionally
 * write a human-readable reason into a caller buffer, fit to send back in an
 * `error` message (seeds/streaming-guide-p2p-cashu.md, "Message Types"). */
#ifndef DVM_COMMON_ERR_H
#define DVM_COMMON_ERR_H

#include <stddef.h>

typedef int dvm_err;

enum {
    DVM_OK = 0,
    DVM_ERR_NOMEM = -1,     /* allocation failed */
    DVM_ERR_INVALID = -2,   /* malformed input (bad JSON, bad field, bad token) */
    DVM_ERR_TOO_LARGE = -3, /* input over a configured size limit */
    DVM_ERR_PROTO = -4,     /* valid input that violates the protocol state */
    DVM_ERR_STATE = -5,     /* API misuse by the caller (wrong state) */
    DVM_ERR_CRYPTO = -6,    /* signature, MAC, DLEQ or curve check failed */
    DVM_ERR_NOT_FOUND = -7, /* unknown job, keyset, quote, ... */
    DVM_ERR_EXISTS = -8,    /* duplicate (job id, proof, output) */
    DVM_ERR_LIMIT = -9,     /* a count/budget/capacity limit was reached */
    DVM_ERR_AGAIN = -10,    /* more input needed / nothing to return yet */
    DVM_ERR_SPENT = -11,    /* Cashu proof already spent (NUT error 11001) */
    DVM_ERR_UNSUPPORTED = -12 /* recognised but not supported (unit, version) */
};

/* Returns a static, NUL-terminated English name for `err` (never NULL;
 * "unknown error" for codes not listed above). */
const char *dvm_strerror(dvm_err err);

/* Write a reason (printf format) into reason[0..cap): cut to fit and
 * NUL-terminated; nothing is written when reason is NULL or cap is 0. The
 * shared writer of every "reason" / "err" buffer the library and tools
 * fill. */
void dvm_reasonf(char *reason, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* dvm_reasonf, then return e (for `return dvm_fail_reason(DVM_ERR_INVALID,
 * reason, cap, "...")`). */
dvm_err dvm_fail_reason(dvm_err e, char *reason, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif

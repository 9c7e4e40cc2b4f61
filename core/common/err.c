#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>

const char *dvm_strerror(dvm_err err)
{
    switch (err) {
    case DVM_OK: return "ok";
    case DVM_ERR_NOMEM: return "out of memory";
    case DVM_ERR_INVALID: return "invalid input";
    case DVM_ERR_TOO_LARGE: return "input too large";
    case DVM_ERR_PROTO: return "protocol violation";
    case DVM_ERR_STATE: return "invalid state";
    case DVM_ERR_CRYPTO: return "cryptographic check failed";
    case DVM_ERR_NOT_FOUND: return "not found";
    case DVM_ERR_EXISTS: return "already exists";
    case DVM_ERR_LIMIT: return "limit reached";
    case DVM_ERR_AGAIN: return "try again";
    case DVM_ERR_SPENT: return "already spent";
    case DVM_ERR_UNSUPPORTED: return "unsupported";
    default: return "unknown error";
    }
}

void dvm_reasonf(char *reason, size_t cap, const char *fmt, ...)
{
    if (!reason || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, cap, fmt, ap);
    va_end(ap);
}

dvm_err dvm_fail_reason(dvm_err e, char *reason, size_t cap, const char *fmt, ...)
{
    if (reason && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, cap, fmt, ap);
        va_end(ap);
    }
    return e;
}

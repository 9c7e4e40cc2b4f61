#include "wire/msg.h"

#include <string.h>

static const char *const type_names[] = {
    [DVM_MSG_NONE] = "",
    [DVM_MSG_REQUEST] = "request",
    [DVM_MSG_OFFER] = "offer",
    [DVM_MSG_PAYMENT] = "payment",
    [DVM_MSG_PAYMENT_ACK] = "payment_ack",
    [DVM_MSG_ACCEPTED] = "accepted",
    [DVM_MSG_CHUNK] = "chunk",
    [DVM_MSG_PAY_REQUIRED] = "pay_required",
    [DVM_MSG_RESULT] = "result",
    [DVM_MSG_STOP] = "stop",
    [DVM_MSG_ERROR] = "error",
};

const char *dvm_msg_type_name(dvm_msg_type t)
{
    if ((unsigned)t >= sizeof type_names / sizeof type_names[0])
        return "";
    return type_names[t];
}

dvm_str dvm_str_c(const char *s)
{
    dvm_str r = {s, s ? strlen(s) : 0};
    return r;
}

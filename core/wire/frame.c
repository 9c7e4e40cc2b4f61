#include "wire/frame.h"

#include <string.h>

void dvm_framer_init(dvm_framer *f, size_t max_line)
{
    memset(f, 0, sizeof *f);
    f->max_line = max_line ? max_line : DVM_FRAME_DEFAULT_MAX_LINE;
    if (f->max_line > SIZE_MAX / 2) /* keep max_line + 1 and sums exact */
        f->max_line = SIZE_MAX / 2;
    /* One extra byte so a max_line line followed by '\r' fits. */
    dvm_buf_init(&f->carry, f->max_line + 1);
}

void dvm_framer_free(dvm_framer *f)
{
    dvm_buf_free(&f->carry);
    f->in = NULL;
    f->in_len = f->in_pos = 0;
    f->carry_out = false;
    f->skipping = false;
}

dvm_err dvm_framer_push(dvm_framer *f, const void *data, size_t len)
{
    if (f->in_pos < f->in_len)
        return DVM_ERR_STATE;
    if (f->carry_out) {
        dvm_buf_reset(&f->carry);
        f->carry_out = false;
    }
    f->in = data;
    f->in_len = len;
    f->in_pos = 0;
    return DVM_OK;
}

size_t dvm_framer_pending(const dvm_framer *f)
{
    return f->carry_out ? 0 : f->carry.len;
}

/* Length of a raw line (bytes before '\n') once a trailing '\r' is dropped. */
static size_t strip_cr(const uint8_t *p, size_t n)
{
    return (n > 0 && p[n - 1] == '\r') ? n - 1 : n;
}

#if defined(__GNUC__)
__attribute__((noinline))
#endif
static dvm_err next_general(dvm_framer *f, const uint8_t **line, size_t *len);

dvm_err dvm_framer_next(dvm_framer *f, const uint8_t **line, size_t *len)
{
    /* Hot path, checked first: nothing carried or skipped and a whole
     * non-empty line of at most max_line bytes in the pushed bytes; handed
     * out in place, exactly as the general loop below would. Anything
     * else falls through to it with nothing changed. */
    if (f->in_pos < f->in_len && (f->carry.len | f->carry_out | f->skipping) == 0) {
        const uint8_t *p = f->in + f->in_pos;
        const uint8_t *nl = memchr(p, '\n', f->in_len - f->in_pos);
        if (nl) {
            size_t seg = (size_t)(nl - p), n = strip_cr(p, seg);
            if (n && n <= f->max_line) {
                f->in_pos += seg + 1;
                f->lines++;
                *line = p;
                *len = n;
                return DVM_OK;
            }
        }
    }
    return next_general(f, line, len);
}

/* Everything else: carried partial lines, skipping, empty and oversize
 * lines, the end of the pushed bytes. */
static dvm_err next_general(dvm_framer *f, const uint8_t **line, size_t *len)
{
    if (f->carry_out) {
        dvm_buf_reset(&f->carry);
        f->carry_out = false;
    }
    while (f->in_pos < f->in_len) {
        const uint8_t *p = f->in + f->in_pos;
        size_t avail = f->in_len - f->in_pos;
        const uint8_t *nl = memchr(p, '\n', avail);

        if (f->skipping) {
            if (!nl) {
                f->in_pos = f->in_len;
                break;
            }
            f->in_pos += (size_t)(nl - p) + 1;
            f->skipping = false;
            continue;
        }

        if (!nl) {
            /* Partial line: keep it, unless it is already too long. The
             * carry may hold max_line + 1 bytes (the last may be a '\r'). */
            f->in_pos = f->in_len;
            if (avail > f->max_line + 1 - f->carry.len) {
                dvm_buf_reset(&f->carry);
                f->skipping = true;
                f->oversize++;
                return DVM_ERR_TOO_LARGE;
            }
            if (dvm_buf_append(&f->carry, p, avail) != DVM_OK) {
                dvm_buf_reset(&f->carry);
                f->skipping = true;
                return DVM_ERR_NOMEM;
            }
            break;
        }

        size_t seg = (size_t)(nl - p);
        f->in_pos += seg + 1;

        if (f->carry.len == 0) {
            /* Hot path: the whole line is inside the chunk, no copy. */
            size_t n = strip_cr(p, seg);
            if (n == 0)
                continue;
            if (n > f->max_line) {
                f->oversize++;
                return DVM_ERR_TOO_LARGE;
            }
            f->lines++;
            *line = p;
            *len = n;
            return DVM_OK;
        }

        /* The line started in an earlier push: complete the carry. */
        if (seg > f->max_line + 1 - f->carry.len) {
            dvm_buf_reset(&f->carry);
            f->oversize++;
            return DVM_ERR_TOO_LARGE;
        }
        if (dvm_buf_append(&f->carry, p, seg) != DVM_OK) {
            dvm_buf_reset(&f->carry);
            return DVM_ERR_NOMEM;
        }
        size_t n = strip_cr(f->carry.data, f->carry.len);
        if (n == 0) {
            dvm_buf_reset(&f->carry);
            continue;
        }
        if (n > f->max_line) {
            dvm_buf_reset(&f->carry);
            f->oversize++;
            return DVM_ERR_TOO_LARGE;
        }
        f->lines++;
        f->carry_out = true;
        *line = f->carry.data;
        *len = n;
        return DVM_OK;
    }
    return DVM_ERR_AGAIN;
}

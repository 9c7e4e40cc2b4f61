/* SUB_KIND pipeline batching. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "session/pipeline.h"

typedef struct got {
    char batches[16][512];
    size_t chars[16];
    size_t nbatches;
    char output[2048];
    int done, errors;
    char error[128];
} got;

/* Drain actions; the fake processor upper-cases ASCII of each batch and
 * answers with two output chunks at once. */
static void run(dvm_pipeline *pl, got *g)
{
    dvm_pipeline_action a;
    bool again = true;
    while (again) {
        again = false;
        while (dvm_pipeline_next_action(pl, &a)) {
            switch (a.type) {
            case DVM_PLACT_PROCESS_BATCH: {
                cr_assert_lt(g->nbatches, 16);
                snprintf(g->batches[g->nbatches], 512, "%.*s", (int)a.text.len, a.text.ptr);
                g->chars[g->nbatches] = a.chars;
                cr_assert_eq(a.batch, g->nbatches + 1);
                g->nbatches++;
                char up[512];
                size_t n = a.text.len < 511 ? a.text.len : 511;
                for (size_t i = 0; i < n; i++) {
                    char c = a.text.ptr[i];
                    up[i] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
                }
                size_t half = n / 2;
                while (half > 0 && ((unsigned char)up[half] & 0xC0) == 0x80)
                    half--;
                cr_assert_eq(dvm_pipeline_on_processor_chunk(pl, up, half), DVM_OK);
                cr_assert_eq(dvm_pipeline_on_processor_chunk(pl, up + half, n - half), DVM_OK);
                cr_assert_eq(dvm_pipeline_on_processor_done(pl), DVM_OK);
                again = true;
                break;
            }
            case DVM_PLACT_OUTPUT:
                strncat(g->output, a.text.ptr ? a.text.ptr : "", a.text.len);
                break;
            case DVM_PLACT_ERROR:
                g->errors++;
                snprintf(g->error, sizeof g->error, "%.*s", (int)a.text.len, a.text.ptr);
                break;
            case DVM_PLACT_DONE: g->done++; break;
            }
        }
    }
}

static dvm_pipeline *mkpl(size_t chars, size_t max_bytes, bool exact)
{
    dvm_pipeline_config c;
    dvm_pipeline_config_default(&c);
    c.batch_chars = chars;
    if (max_bytes)
        c.max_batch_bytes = max_bytes;
    c.split_exact = exact;
    dvm_pipeline *pl = dvm_pipeline_new(&c);
    cr_assert_not_null(pl);
    return pl;
}

static void feed(dvm_pipeline *pl, got *g, const char *s)
{
    cr_assert_eq(dvm_pipeline_on_sub_chunk(pl, s, strlen(s)), DVM_OK);
    run(pl, g);
}

Test(pipeline, batches_on_chunk_boundaries_like_the_reference)
{
    dvm_pipeline *pl = mkpl(10, 0, false);
    got g;
    memset(&g, 0, sizeof g);
    feed(pl, &g, "hello ");
    cr_assert_eq(g.nbatches, 0);
    feed(pl, &g, "world, ");   /* 13 chars >= 10: sealed */
    cr_assert_eq(g.nbatches, 1);
    cr_assert_str_eq(g.batches[0], "hello world, ");
    cr_assert_eq(g.chars[0], 13);
    feed(pl, &g, "bye");
    cr_assert_eq(g.nbatches, 1);
    cr_assert_eq(dvm_pipeline_on_sub_done(pl), DVM_OK);
    run(pl, &g);
    cr_assert_eq(g.nbatches, 2);
    cr_assert_str_eq(g.batches[1], "bye"); /* remainder flushed at the end */
    cr_assert_str_eq(g.output, "HELLO WORLD, BYE");
    cr_assert_eq(g.done, 1);
    cr_assert_eq(dvm_pipeline_on_sub_chunk(pl, "x", 1), DVM_ERR_STATE);
    dvm_pipeline_free(pl);
}

Test(pipeline, counts_code_points_not_bytes)
{
    dvm_pipeline *pl = mkpl(4, 0, false);
    got g;
    memset(&g, 0, sizeof g);
    feed(pl, &g, "百年孤"); /* 3 chars, 9 bytes */
    cr_assert_eq(g.nbatches, 0);
    feed(pl, &g, "独");
    cr_assert_eq(g.nbatches, 1);
    cr_assert_str_eq(g.batches[0], "百年孤独");
    cr_assert_eq(g.chars[0], 4);
    dvm_pipeline_free(pl);
}

Test(pipeline, exact_split_never_cuts_a_code_point)
{
    dvm_pipeline *pl = mkpl(3, 0, true);
    got g;
    memset(&g, 0, sizeof g);
    /* é (2 bytes), 孤 (3 bytes), 😀 (4 bytes) around the cut points */
    feed(pl, &g, "aé孤😀bc");
    dvm_pipeline_on_sub_done(pl);
    run(pl, &g);
    cr_assert_eq(g.nbatches, 2);
    cr_assert_str_eq(g.batches[0], "aé孤");
    cr_assert_str_eq(g.batches[1], "😀bc");
    cr_assert_eq(g.chars[0], 3);
    cr_assert_eq(g.chars[1], 3);
    dvm_pipeline_free(pl);
}

Test(pipeline, code_point_split_across_sub_chunks_is_held)
{
    dvm_pipeline *pl = mkpl(2, 0, true);
    got g;
    memset(&g, 0, sizeof g);
    const char *s = "x孤y"; /* 孤 = e5 ad a4 */
    cr_assert_eq(dvm_pipeline_on_sub_chunk(pl, s, 2), DVM_OK); /* "x" + e5 */
    run(pl, &g);
    cr_assert_eq(g.nbatches, 0);
    cr_assert_eq(dvm_pipeline_on_sub_chunk(pl, s + 2, 1), DVM_OK); /* ad */
    run(pl, &g);
    cr_assert_eq(g.nbatches, 0);
    cr_assert_eq(dvm_pipeline_on_sub_chunk(pl, s + 3, 2), DVM_OK); /* a4 "y" */
    run(pl, &g);
    cr_assert_eq(g.nbatches, 1);
    cr_assert_str_eq(g.batches[0], "x孤");
    dvm_pipeline_on_sub_done(pl);
    run(pl, &g);
    cr_assert_str_eq(g.batches[1], "y");
    dvm_pipeline_free(pl);
}

Test(pipeline, byte_bound_cuts_at_code_point_boundary)
{
    /* 100 chars wanted, but at most 7 bytes per batch */
    dvm_pipeline *pl = mkpl(100, 7, false);
    got g;
    memset(&g, 0, sizeof g);
    feed(pl, &g, "ab孤独cd"); /* 1+1+3+3+1+1 = 10 bytes */
    cr_assert_eq(g.nbatches, 1);
    cr_assert_str_eq(g.batches[0], "ab孤"); /* +独 would make 8 > 7 */
    dvm_pipeline_on_sub_done(pl);
    run(pl, &g);
    cr_assert_str_eq(g.batches[1], "独cd");
    cr_assert_str_eq(g.output, "AB孤独CD");
    dvm_pipeline_free(pl);
}

Test(pipeline, batches_wait_while_processor_busy_and_pending_is_bounded)
{
    dvm_pipeline_config c;
    dvm_pipeline_config_default(&c);
    c.batch_chars = 2;
    c.max_batch_bytes = 8;
    c.max_pending_bytes = 8;
    dvm_pipeline *pl = dvm_pipeline_new(&c);
    dvm_pipeline_action a;
    cr_assert_eq(dvm_pipeline_on_sub_chunk(pl, "ab", 2), DVM_OK);
    cr_assert(dvm_pipeline_next_action(pl, &a));
    cr_assert_eq(a.type, DVM_PLACT_PROCESS_BATCH);
    /* processor busy: next batches wait */
    cr_assert_eq(dvm_pipeline_on_sub_chunk(pl, "cd", 2), DVM_OK);
    cr_assert_eq(dvm_pipeline_on_sub_chunk(pl, "ef", 2), DVM_OK);
    cr_assert(!dvm_pipeline_next_action(pl, &a));
    cr_assert_eq(dvm_pipeline_pending_bytes(pl), 4);
    cr_assert_eq(dvm_pipeline_on_sub_chunk(pl, "ghijk", 5), DVM_ERR_LIMIT);
    cr_assert_eq(dvm_pipeline_on_processor_done(pl), DVM_OK);
    cr_assert(dvm_pipeline_next_action(pl, &a));
    cr_assert_eq(a.type, DVM_PLACT_PROCESS_BATCH);
    cr_assert_eq(a.text.len, 2);
    cr_assert(memcmp(a.text.ptr, "cd", 2) == 0);
    cr_assert_eq(a.batch, 2);
    dvm_pipeline_free(pl);
}

Test(pipeline, sub_error_is_reported)
{
    dvm_pipeline *pl = mkpl(100, 0, false);
    got g;
    memset(&g, 0, sizeof g);
    feed(pl, &g, "partial");
    cr_assert_eq(dvm_pipeline_on_sub_error(pl, "Price too high", 14), DVM_OK);
    run(pl, &g);
    cr_assert_eq(g.errors, 1);
    cr_assert_str_eq(g.error, "Price too high");
    cr_assert_eq(g.nbatches, 0);
    cr_assert_eq(g.done, 0);
    dvm_pipeline_free(pl);
}

Test(pipeline, utf8_count)
{
    cr_assert_eq(dvm_utf8_count("", 0), 0);
    cr_assert_eq(dvm_utf8_count("abc", 3), 3);
    cr_assert_eq(dvm_utf8_count("百年孤独", strlen("百年孤独")), 4);
    cr_assert_eq(dvm_utf8_count("😀é", strlen("😀é")), 2);
    cr_assert_eq(dvm_utf8_count("\x80\x80", 2), 2); /* stray continuations */
}

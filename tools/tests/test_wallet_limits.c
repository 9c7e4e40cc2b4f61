/* The HTTP wallet (live/wallet_client.h) sizes its requests by the mint's
 * NUT-06 `max_array_length` (GET /v1/info, optional top-level field). A
 * `dvm mint` run with --max-inputs 100 --max-outputs 100 sits behind a
 * small proxy on 127.0.0.1 that adds "max_array_length": 100 to /v1/info
 * (dvm mint itself publishes none), or not. */
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>

#include "live/wallet_client.h"
#include "mint_proc.h"

static struct mint_proc M;
static char DB[300];

struct proxy {
    struct MHD_Daemon *d;
    unsigned port;
    char url[64];
    int advertise;          /* max_array_length to add (0: none) */
    pthread_mutex_t mu;
    size_t swaps;           /* POST /v1/swap forwarded */
};
static struct proxy P;

struct body {
    char *buf;
    size_t len;
};

static size_t collect(char *p, size_t sz, size_t n, void *ctx)
{
    struct body *b = ctx;
    size_t k = sz * n;
    char *nb = realloc(b->buf, b->len + k + 1);
    if (!nb)
        return 0;
    memcpy(nb + b->len, p, k);
    b->buf = nb;
    b->len += k;
    b->buf[b->len] = '\0';
    return k;
}

/* Forward to the mint; returns the HTTP status (0 on failure) and the
 * malloc'd reply body. */
static long forward(const char *method, const char *path, const struct body *in, struct body *out)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", M.url, path);
    CURL *c = curl_easy_init();
    if (!c)
        return 0;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, in->buf ? in->buf : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)in->len);
    }
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **ptr)
{
    (void)version;
    struct proxy *p = cls;
    struct body *in = *ptr;
    if (!in) {
        *ptr = calloc(1, sizeof *in);
        return *ptr ? MHD_YES : MHD_NO;
    }
    if (*upload_size) {
        if (collect((char *)upload, 1, *upload_size, in) != *upload_size)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    struct body out = {0};
    long status = forward(method, url, in, &out);
    if (status == 0) {
        free(out.buf);
        return MHD_NO;
    }
    if (strcmp(url, "/v1/swap") == 0) {
        pthread_mutex_lock(&p->mu);
        p->swaps++;
        pthread_mutex_unlock(&p->mu);
    }
    if (strcmp(url, "/v1/info") == 0 && status == 200 && p->advertise) {
        json_t *j = json_loads(out.buf ? out.buf : "", 0, NULL);
        if (j) {
            json_object_set_new(j, "max_array_length", json_integer(p->advertise));
            free(out.buf);
            out.buf = json_dumps(j, JSON_COMPACT);
            out.len = out.buf ? strlen(out.buf) : 0;
            json_decref(j);
        }
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(out.len, out.buf ? out.buf : (char *)"",
                                                             out.buf ? MHD_RESPMEM_MUST_FREE
                                                                     : MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static void completed(void *cls, struct MHD_Connection *c, void **ptr,
                      enum MHD_RequestTerminationCode t)
{
    (void)cls, (void)c, (void)t;
    struct body *b = *ptr;
    if (b)
        free(b->buf);
    free(b);
    *ptr = NULL;
}

static void setup(void)
{
    static const char *const extra[] = {"--max-inputs", "100", "--max-outputs", "100", NULL};
    char db[300];
    mp_start(&M, mp_tmp(db, sizeof db, "mint.db"), extra);
    mp_tmp(DB, sizeof DB, "w.db");
    memset(&P, 0, sizeof P);
    pthread_mutex_init(&P.mu, NULL);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    P.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, &P,
                           MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                           MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    cr_assert_not_null(P.d);
    P.port = MHD_get_daemon_info(P.d, MHD_DAEMON_INFO_BIND_PORT)->port;
    cr_assert(P.port > 0);
    snprintf(P.url, sizeof P.url, "http://127.0.0.1:%u", P.port);
}

static void teardown(void)
{
    if (P.d)
        MHD_stop_daemon(P.d);
    P.d = NULL;
    pthread_mutex_destroy(&P.mu);
    mp_stop(&M, SIGTERM);
    mp_fini();
}

static size_t swaps(void)
{
    pthread_mutex_lock(&P.mu);
    size_t n = P.swaps;
    pthread_mutex_unlock(&P.mu);
    return n;
}

TestSuite(wallet_limits, .init = setup, .fini = teardown, .timeout = 120);

Test(wallet_limits, split_respects_the_advertised_max_array_length)
{
    P.advertise = 100;
    dvm_wallet_client *w;
    char err[256];
    cr_assert_eq(dvm_wallet_client_open(P.url, DB, 10000, &w, err, sizeof err), DVM_OK, "%s", err);
    cr_assert_eq(dvm_wallet_client_max_array(w), 1000, "not read before the keysets load");
    cr_assert_eq(dvm_wallet_client_mint(w, 500, 10000, NULL), DVM_OK, "%s",
                 dvm_wallet_client_last_error(w)); /* 256 128 64 32 16 4 */
    cr_assert_eq(dvm_wallet_client_max_array(w), 100);
    dvm_token *ts = NULL;
    cr_assert_eq(dvm_wallet_client_split(w, 1, 300, &ts), DVM_OK, "%s",
                 dvm_wallet_client_last_error(w));
    cr_assert_geq(swaps(), 3, "300 outputs of 1 sat at 100 per request");
    uint64_t sum = 0;
    for (size_t i = 0; i < 300; i++) {
        uint64_t a = 0;
        cr_assert_eq(dvm_token_amount(&ts[i], &a), DVM_OK);
        sum += a;
    }
    cr_assert_eq(sum, 300);
    dvm_wallet_balance b;
    cr_assert_eq(dvm_wallet_client_balance(w, &b), DVM_OK);
    cr_assert_eq(b.reserved, 300);
    cr_assert_eq(b.unspent, 200);
    dvm_wallet_tokens_free(ts, 300);
    /* Sending the 300 sats again (300 one-sat proofs and change) stays
     * within the mint's 100 inputs per request. */
    uint64_t rel = 0;
    cr_assert_eq(dvm_wallet_client_release_reserved(w, &rel), DVM_OK);
    dvm_token t;
    cr_assert_eq(dvm_wallet_client_send(w, 300, &t), DVM_OK, "%s", dvm_wallet_client_last_error(w));
    dvm_token_free(&t);
    cr_assert_eq(dvm_wallet_client_balance(w, &b), DVM_OK);
    cr_assert_eq(b.unspent, 200);
    dvm_wallet_client_close(w);
}

Test(wallet_limits, without_the_field_the_mint_refuses_and_nothing_is_lost)
{
    P.advertise = 0; /* the wallet assumes 1000; the mint takes 100 */
    dvm_wallet_client *w;
    char err[256];
    cr_assert_eq(dvm_wallet_client_open(P.url, DB, 10000, &w, err, sizeof err), DVM_OK, "%s", err);
    cr_assert_eq(dvm_wallet_client_mint(w, 500, 10000, NULL), DVM_OK, "%s",
                 dvm_wallet_client_last_error(w));
    cr_assert_eq(dvm_wallet_client_max_array(w), 1000);
    dvm_token *ts = NULL;
    cr_assert_eq(dvm_wallet_client_split(w, 1, 300, &ts), DVM_ERR_PROTO);
    cr_assert_null(ts);
    cr_assert_eq(dvm_wallet_client_last_code(w), 11015, "%s", dvm_wallet_client_last_error(w));
    dvm_wallet_balance b;
    cr_assert_eq(dvm_wallet_client_balance(w, &b), DVM_OK);
    cr_assert_eq(b.unspent, 500);
    cr_assert_eq(b.pending + b.reserved, 0);
    size_t open = 1;
    cr_assert_eq(dvm_wallet_client_open_ops(w, &open), DVM_OK);
    cr_assert_eq(open, 0);
    dvm_wallet_client_close(w);
}

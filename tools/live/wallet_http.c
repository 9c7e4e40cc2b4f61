/* dvmstream — JSON over HTTP to a Cashu mint (see wallet_http.h). */
#include "live/wallet_http.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cashu/proof.h"

struct dvm_mint_client {
    CURL *curl;
    char url[DVM_MINT_URL_MAX + 1];
    long timeout_ms;
};

struct sink {
    char *data;
    size_t len;
    size_t cap;
    bool too_large;
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    struct sink *s = ud;
    size_t n = size * nmemb;
    if (n > DVM_MINT_RESPONSE_MAX - s->len) {
        s->too_large = true;
        return 0; /* abort the transfer */
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *nd = realloc(s->data, cap);
        if (!nd)
            return 0;
        s->data = nd;
        s->cap = cap;
    }
    memcpy(s->data + s->len, p, n);
    s->len += n;
    s->data[s->len] = '\0';
    return n;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

dvm_err dvm_mint_client_new(const char *mint_url, long timeout_ms, dvm_mint_client **out)
{
    *out = NULL;
    size_t n = mint_url ? strlen(mint_url) : 0;
    while (n > 0 && mint_url[n - 1] == '/')
        n--;
    if (n == 0 || n > DVM_MINT_URL_MAX)
        return DVM_ERR_INVALID;
    pthread_once(&curl_once, curl_init_once);
    dvm_mint_client *c = calloc(1, sizeof *c);
    if (!c)
        return DVM_ERR_NOMEM;
    c->curl = curl_easy_init();
    if (!c->curl) {
        free(c);
        return DVM_ERR_NOMEM;
    }
    memcpy(c->url, mint_url, n);
    c->url[n] = '\0';
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
    *out = c;
    return DVM_OK;
}

void dvm_mint_client_free(dvm_mint_client *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->curl);
    free(c);
}

const char *dvm_mint_client_url(const dvm_mint_client *c)
{
    return c->url;
}

static dvm_err perform(dvm_mint_client *c, const char *path, const char *post, json_t **resp,
                       dvm_mint_http_error *err)
{
    dvm_mint_http_error dummy;
    if (!err)
        err = &dummy;
    memset(err, 0, sizeof *err);
    *resp = NULL;
    char url[DVM_MINT_URL_MAX + 256];
    if ((size_t)snprintf(url, sizeof url, "%s%s", c->url, path) >= sizeof url) {
        snprintf(err->detail, sizeof err->detail, "URL too long");
        return DVM_ERR_INVALID;
    }
    struct sink s = {0};
    struct curl_slist *hdrs = NULL;
    CURL *h = c->curl;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms < 10000 ? c->timeout_ms : 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)DVM_MINT_RESPONSE_MAX);
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (post) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, post);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(post));
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    dvm_err e = DVM_OK;
    if (s.too_large) {
        snprintf(err->detail, sizeof err->detail, "mint reply over %u bytes", DVM_MINT_RESPONSE_MAX);
        e = DVM_ERR_TOO_LARGE;
        goto out;
    }
    if (rc != CURLE_OK) {
        snprintf(err->detail, sizeof err->detail, "%.160s: %s", url, curl_easy_strerror(rc));
        e = DVM_ERR_AGAIN;
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    err->http_status = (int)status;
    json_error_t je;
    json_t *j = s.len ? json_loadb(s.data, s.len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (status >= 200 && status < 300) {
        if (!j) {
            snprintf(err->detail, sizeof err->detail, "mint reply is not JSON");
            e = DVM_ERR_INVALID;
            goto out;
        }
        *resp = j;
        goto out;
    }
    /* An error reply: {"detail", "code"} per NUT-00, or anything else. */
    const char *detail = NULL;
    if (j && json_is_object(j)) {
        json_t *d = json_object_get(j, "detail");
        json_t *cd = json_object_get(j, "code");
        if (json_is_string(d))
            detail = json_string_value(d);
        if (json_is_integer(cd))
            err->code = (long)json_integer_value(cd);
    }
    snprintf(err->detail, sizeof err->detail, "%s", detail ? detail : "HTTP error");
    json_decref(j);
    if (status >= 500 && err->code == 0)
        e = DVM_ERR_AGAIN; /* a server failure: the outcome is unknown */
    else
        e = err->code == 11001 ? DVM_ERR_SPENT : DVM_ERR_PROTO;
out:
    free(s.data);
    return e;
}

dvm_err dvm_mint_client_get(dvm_mint_client *c, const char *path, json_t **resp,
                            dvm_mint_http_error *err)
{
    return perform(c, path, NULL, resp, err);
}

dvm_err dvm_mint_client_post(dvm_mint_client *c, const char *path, const json_t *body,
                             json_t **resp, dvm_mint_http_error *err)
{
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text) {
        *resp = NULL;
        if (err) {
            memset(err, 0, sizeof *err);
            snprintf(err->detail, sizeof err->detail, "cannot serialise request");
        }
        return DVM_ERR_NOMEM;
    }
    dvm_err e = perform(c, path, text, resp, err);
    free(text);
    return e;
}

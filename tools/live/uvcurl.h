/* dvmstream — libcurl's multi interface driven by a libuv loop.
 *
 * curl_multi_socket_action with one uv_poll per socket curl asks about and
 * one uv_timer for curl's timeout (libcurl "multi_socket" API, as in its
 * multi-uv example). Transfers complete with a callback on the loop. */
#ifndef DVM_LIVE_UVCURL_H
#define DVM_LIVE_UVCURL_H

#include <curl/curl.h>
#include <uv.h>

typedef struct dvm_uvcurl dvm_uvcurl;

/* Called once when `easy` finished (result CURLE_OK or an error). The easy
 * handle has already been removed from the multi handle; the callee owns it
 * again (cleanup or reuse). */
typedef void (*dvm_uvcurl_done_cb)(void *ud, CURL *easy, CURLcode result);

/* New multi handle on `loop`; NULL when out of memory or curl failed. */
dvm_uvcurl *dvm_uvcurl_new(uv_loop_t *loop);

/* Start a transfer. `easy` stays owned by the caller; done(ud, ...) is
 * called from the loop when it ends. Returns 0, -1 if curl refused it. */
int dvm_uvcurl_add(dvm_uvcurl *m, CURL *easy, dvm_uvcurl_done_cb done, void *ud);

/* Abort a running transfer: no done callback will be made for it. */
void dvm_uvcurl_remove(dvm_uvcurl *m, CURL *easy);

/* Free after all transfers ended or were removed; handles close on the next
 * loop iteration. NULL is ignored. */
void dvm_uvcurl_free(dvm_uvcurl *m);

#endif

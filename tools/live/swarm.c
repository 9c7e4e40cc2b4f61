/* Swarm dispatch and peer address parsing; see swarm.h. */
#include "live/swarm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live/identity.h"

dvm_err dvm_swarm_join(dvm_swarm *sw, const uint8_t topic[DVM_SWARM_TOPIC_BYTES], unsigned roles)
{
    if (!sw || !topic || !roles || (roles & ~(unsigned)(DVM_SWARM_SERVER | DVM_SWARM_CLIENT)))
        return DVM_ERR_INVALID;
    sw->last_error[0] = '\0';
    return sw->ops->join(sw, topic, roles);
}

const char *dvm_swarm_last_error(const dvm_swarm *sw) { return sw->last_error; }

dvm_err dvm_swarm_leave(dvm_swarm *sw, const uint8_t topic[DVM_SWARM_TOPIC_BYTES])
{
    if (!sw || !topic)
        return DVM_ERR_INVALID;
    return sw->ops->leave(sw, topic);
}

dvm_err dvm_swarm_local_address(const dvm_swarm *sw, char *out, size_t cap)
{
    if (!sw || !out || !cap)
        return DVM_ERR_INVALID;
    return sw->ops->local_address(sw, out, cap);
}

const char *dvm_swarm_backend(const dvm_swarm *sw) { return sw->ops->name; }

void dvm_swarm_destroy(dvm_swarm *sw)
{
    if (sw)
        sw->ops->destroy(sw);
}

dvm_err dvm_peer_addr_parse(const char *s, bool allow_port0, dvm_peer_addr *out, char *errbuf, size_t errlen)
{
    char dummy[8];
    if (!errbuf) {
        errbuf = dummy;
        errlen = sizeof dummy;
    }
    memset(out, 0, sizeof *out);
    if (!s || !*s) {
        snprintf(errbuf, errlen, "empty address (want HOST:PORT)");
        return DVM_ERR_INVALID;
    }
    char buf[512];
    if (strlen(s) >= sizeof buf) {
        snprintf(errbuf, errlen, "address too long");
        return DVM_ERR_INVALID;
    }
    strcpy(buf, s);
    char *at = strchr(buf, '@');
    if (at) {
        *at = '\0';
        if (!dvm_identity_parse_hex(at + 1, out->public_key)) {
            snprintf(errbuf, errlen, "'%s': the key after @ must be 64 hex characters", s);
            return DVM_ERR_INVALID;
        }
        out->pinned = true;
    }
    char *host = buf, *port;
    if (buf[0] == '[') {
        char *close = strchr(buf, ']');
        if (!close || close[1] != ':') {
            snprintf(errbuf, errlen, "'%s': want [IPV6]:PORT", s);
            return DVM_ERR_INVALID;
        }
        *close = '\0';
        host = buf + 1;
        port = close + 2;
    } else {
        char *colon = strrchr(buf, ':');
        if (!colon || strchr(buf, ':') != colon) {
            snprintf(errbuf, errlen, "'%s': want HOST:PORT (IPv6 as [ADDR]:PORT)", s);
            return DVM_ERR_INVALID;
        }
        *colon = '\0';
        port = colon + 1;
    }
    if (!*host || strlen(host) >= sizeof out->host) {
        snprintf(errbuf, errlen, "'%s': missing host", s);
        return DVM_ERR_INVALID;
    }
    char *end = NULL;
    unsigned long p = *port >= '0' && *port <= '9' ? strtoul(port, &end, 10) : 0;
    if (!end || *end || p > 65535 || (p == 0 && !allow_port0)) {
        snprintf(errbuf, errlen, "'%s': port must be 1..65535", s);
        return DVM_ERR_INVALID;
    }
    strcpy(out->host, host);
    out->port = (uint16_t)p;
    return DVM_OK;
}

dvm_err dvm_peer_addr_parse_list(const char *s, dvm_peer_addr *out, size_t max, size_t *n, char *errbuf,
                                 size_t errlen)
{
    *n = 0;
    if (!s || !*s) {
        if (errbuf)
            snprintf(errbuf, errlen, "empty peer list");
        return DVM_ERR_INVALID;
    }
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (*n >= max) {
            if (errbuf)
                snprintf(errbuf, errlen, "more than %zu peers", max);
            return DVM_ERR_LIMIT;
        }
        char one[512];
        if (len >= sizeof one) {
            if (errbuf)
                snprintf(errbuf, errlen, "peer address too long");
            return DVM_ERR_INVALID;
        }
        memcpy(one, p, len);
        one[len] = '\0';
        dvm_err e = dvm_peer_addr_parse(one, false, &out[*n], errbuf, errlen);
        if (e)
            return e;
        (*n)++;
        if (!comma)
            break;
        p = comma + 1;
    }
    return DVM_OK;
}

/* dvmstream — job event logs (see joblog.h). */
#include "live/joblog.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void timestamp(char *out, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%.20s.%03dZ", base, (int)(ts.tv_nsec / 1000000) % 1000);
}

static bool needs_quotes(const char *s)
{
    if (!*s)
        return true;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == '"' || *s == '=' || *s == 0x7f || *s == '\\')
            return true;
    return false;
}

static void put_human_string(char *line, size_t cap, size_t *len, const char *s)
{
    if (!needs_quotes(s)) {
        *len += (size_t)snprintf(line + *len, *len < cap ? cap - *len : 0, "%s", s);
        return;
    }
    json_t *j = json_string(s);
    char *e = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    *len += (size_t)snprintf(line + *len, *len < cap ? cap - *len : 0, "%s", e ? e : "\"?\"");
    free(e);
    json_decref(j);
}

void dvm_log_event(const dvm_log *l, const char *job_id, const char *event, const dvm_log_field *f, size_t n)
{
    if (!l || !l->out)
        return;
    char ts[64];
    timestamp(ts, sizeof ts);
    if (l->json) {
        json_t *o = json_object();
        json_object_set_new(o, "ts", json_string(ts));
        json_object_set_new(o, "who", json_string(l->who ? l->who : "dvm"));
        if (job_id)
            json_object_set_new(o, "job", json_string(job_id));
        json_object_set_new(o, "event", json_string(event));
        for (size_t i = 0; i < n; i++) {
            json_t *v = f[i].s ? json_string(f[i].s) : json_integer((json_int_t)f[i].u);
            if (!v) /* invalid UTF-8 */
                v = json_string("?");
            json_object_set_new(o, f[i].key, v);
        }
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (s) {
            size_t len = strlen(s);
            s[len] = '\n'; /* replace the NUL: one fwrite of the whole line */
            fwrite(s, 1, len + 1, l->out);
            free(s);
        }
    } else {
        char line[4096];
        size_t cap = sizeof line - 1, len = 0;
        len += (size_t)snprintf(line, cap, "%s %s", ts, l->who ? l->who : "dvm");
        if (job_id) {
            len += (size_t)snprintf(line + len, len < cap ? cap - len : 0, " job=");
            put_human_string(line, cap, &len, job_id);
        }
        len += (size_t)snprintf(line + len, len < cap ? cap - len : 0, " %s", event);
        for (size_t i = 0; i < n; i++) {
            len += (size_t)snprintf(line + len, len < cap ? cap - len : 0, " %s=", f[i].key);
            if (f[i].s)
                put_human_string(line, cap, &len, f[i].s);
            else
                len += (size_t)snprintf(line + len, len < cap ? cap - len : 0, "%llu", (unsigned long long)f[i].u);
        }
        if (len > cap)
            len = cap;
        line[len++] = '\n';
        fwrite(line, 1, len, l->out);
    }
    fflush(l->out);
}

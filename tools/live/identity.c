/* Identity file; see identity.h. */
#include "live/identity.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_IDENTITY_FILE 4096

dvm_err dvm_identity_default_path(char *out, size_t cap)
{
    const char *xdg = getenv("XDG_DATA_HOME");
    int n;
    if (xdg && *xdg) {
        n = snprintf(out, cap, "%s/dvm/identity", xdg);
    } else {
        const char *home = getenv("HOME");
        if (!home || !*home)
            return DVM_ERR_NOT_FOUND;
        n = snprintf(out, cap, "%s/.local/share/dvm/identity", home);
    }
    return n < 0 || (size_t)n >= cap ? DVM_ERR_TOO_LARGE : DVM_OK;
}

void dvm_identity_hex(const uint8_t key[DVM_NOISE_PUBLIC_KEY_BYTES], char out[2 * DVM_NOISE_PUBLIC_KEY_BYTES + 1])
{
    sodium_bin2hex(out, 2 * DVM_NOISE_PUBLIC_KEY_BYTES + 1, key, DVM_NOISE_PUBLIC_KEY_BYTES);
}

bool dvm_identity_parse_hex(const char *hex, uint8_t key[DVM_NOISE_PUBLIC_KEY_BYTES])
{
    size_t got = 0;
    const char *end = NULL;
    if (!hex || strlen(hex) != 2 * DVM_NOISE_PUBLIC_KEY_BYTES)
        return false;
    if (sodium_hex2bin(key, DVM_NOISE_PUBLIC_KEY_BYTES, hex, strlen(hex), NULL, &got, &end) != 0)
        return false;
    return got == DVM_NOISE_PUBLIC_KEY_BYTES && end && *end == '\0';
}

/* mkdir -p of the directory part of path, mode 0700 for new directories. */
static int make_parents(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n >= sizeof tmp)
        return -1;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

static dvm_err create_file(const char *path, dvm_noise_keypair *kp, char *errbuf, size_t errlen)
{
    if (make_parents(path) != 0) {
        snprintf(errbuf, errlen, "cannot create the directory of %s: %s", path, strerror(errno));
        return DVM_ERR_STATE;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        snprintf(errbuf, errlen, "cannot create %s: %s", path, strerror(errno));
        return DVM_ERR_STATE;
    }
    uint8_t seed[32];
    randombytes_buf(seed, sizeof seed);
    dvm_noise_keypair_from_seed(kp, seed);
    char line[256];
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, seed, sizeof seed);
    int n = snprintf(line, sizeof line, "# dvmstream identity: Ed25519 seed (keep secret)\n%s\n", hex);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(hex, sizeof hex);
    ssize_t w = write(fd, line, (size_t)n);
    sodium_memzero(line, sizeof line);
    if (w != n || fsync(fd) != 0) {
        snprintf(errbuf, errlen, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return DVM_ERR_STATE;
    }
    close(fd);
    return DVM_OK;
}

static dvm_err read_file(const char *path, dvm_noise_keypair *kp, char *errbuf, size_t errlen)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(errbuf, errlen, "cannot open %s: %s", path, strerror(errno));
        return DVM_ERR_STATE;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(errbuf, errlen, "%s is not a regular file", path);
        close(fd);
        return DVM_ERR_STATE;
    }
    if (st.st_mode & 077) {
        snprintf(errbuf, errlen, "%s is readable by others (mode %03o); run: chmod 600 %s", path,
                 (unsigned)(st.st_mode & 0777), path);
        close(fd);
        return DVM_ERR_CRYPTO;
    }
    char buf[MAX_IDENTITY_FILE + 1];
    ssize_t n = read(fd, buf, MAX_IDENTITY_FILE + 1);
    close(fd);
    if (n < 0 || n > MAX_IDENTITY_FILE) {
        snprintf(errbuf, errlen, "cannot read %s (or larger than %d bytes)", path, MAX_IDENTITY_FILE);
        return DVM_ERR_INVALID;
    }
    buf[n] = '\0';
    dvm_err e = DVM_ERR_INVALID;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        uint8_t seed[32];
        if (dvm_identity_parse_hex(line, seed)) {
            dvm_noise_keypair_from_seed(kp, seed);
            sodium_memzero(seed, sizeof seed);
            e = DVM_OK;
        }
        break;
    }
    sodium_memzero(buf, sizeof buf);
    if (e)
        snprintf(errbuf, errlen, "%s: expected one line of 64 hex characters (an Ed25519 seed)", path);
    return e;
}

dvm_err dvm_identity_load_or_create(const char *path, dvm_noise_keypair *kp, bool *created, char *errbuf,
                                    size_t errlen)
{
    char def[4096];
    char dummy[8];
    if (!errbuf) {
        errbuf = dummy;
        errlen = sizeof dummy;
    }
    if (!path) {
        if (dvm_identity_default_path(def, sizeof def) != DVM_OK) {
            snprintf(errbuf, errlen, "no identity path: set --identity, XDG_DATA_HOME or HOME");
            return DVM_ERR_NOT_FOUND;
        }
        path = def;
    }
    if (created)
        *created = false;
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        dvm_err e = create_file(path, kp, errbuf, errlen);
        if (e == DVM_OK && created)
            *created = true;
        if (e != DVM_ERR_STATE || errno != EEXIST)
            return e;
        /* lost a creation race: read what the other process wrote */
    }
    return read_file(path, kp, errbuf, errlen);
}

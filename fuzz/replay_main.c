/* Replay driver for the fuzz harnesses when built without libFuzzer (gcc):
 * runs LLVMFuzzerTestOneInput once per file named on the command line, or
 * once per file inside each directory named. Exit 0 when every input ran;
 * a crash or sanitizer report aborts the process (non-zero). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_INPUT (16u << 20) /* 16 MiB: larger inputs are skipped */

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    uint8_t *buf = malloc(REPLAY_MAX_INPUT);
    if (!buf) {
        fclose(f);
        return -1;
    }
    size_t n = fread(buf, 1, REPLAY_MAX_INPUT, f);
    fclose(f);
    /* Hand the harness an exact-size copy so ASan sees overreads. */
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned ran = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            /* A harness whose corpus directory does not exist yet has nothing
             * to replay; that is not an error. */
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            if (!d)
                continue;
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (e->d_name[0] == '.')
                    continue;
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
                if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                    if (run_file(path) == 0)
                        ran++;
                    else
                        failed++;
                }
            }
            closedir(d);
        } else if (run_file(argv[i]) == 0) {
            ran++;
        } else {
            failed++;
        }
    }
    printf("replay: %u inputs ran, %u unreadable\n", ran, failed);
    return failed ? 1 : 0;
}

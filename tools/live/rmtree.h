/* dvmstream — removing a temporary directory tree without a shell. */
#ifndef DVM_LIVE_RMTREE_H
#define DVM_LIVE_RMTREE_H

/* Remove path and everything below it, depth first, without following
 * symbolic links (a link is removed, not its target) and without running a
 * shell. Returns 0 when everything was removed, -1 otherwise (errno from
 * the first failure; what could be removed is gone). Used for the temporary
 * directories of `dvm demo` and `dvm-bench e2e`. */
int dvm_remove_tree(const char *path);

#endif

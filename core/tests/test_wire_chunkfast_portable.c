/* test_wire_chunkfast.c again with the portable scanners of wire/jscan.h
 * (8-byte words) instead of SSE2, so both ways are tested on x86-64. The
 * library (libdvmcore) keeps its own build; this file checks the inline
 * header functions compiled the portable way against the same reference
 * rules and against the library. */
#define DVM_JSCAN_PORTABLE 1
#define SUITE wire_chunkfast_portable
#include "test_wire_chunkfast.c"

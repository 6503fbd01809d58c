/* The virtio test guest: what main found, shared by the tests (blk.c, net.c, rng.c, hostile.c). */
#ifndef VMMSHARP_GUEST_VIRTIO_GUEST_H
#define VMMSHARP_GUEST_VIRTIO_GUEST_H

#include <stdint.h>

#include "../common/rt.h"
#include "virtio_mmio.h"

#define MAX_DEVICES 8
#define EXIT_VIRTIO_FAIL 3u /* status 7: a virtio self-check failed (a FAIL line says which) */

/* How long a test polls a used ring: each spin is a few emulated instructions (~1 us each here). */
#define SPINS_SHORT 200000u
#define SPINS_LONG 5000000u

struct guest {
    uint32_t cmdline;      /* physical address of the command line */
    uint64_t ram_end;      /* end of the highest RAM range of the memory map */
    int ndev;
    struct vmmio_dev dev[MAX_DEVICES];
};

/* The index-th device (0-based among those) of type id, or 0. */
struct vmmio_dev *find_device(struct guest *g, uint32_t id, int index);
/* Prints "FAIL <what>" and remembers that a check failed. */
void fail(const char *what);
extern int failures;

void test_blk(struct guest *g);
void test_net(struct guest *g);
void test_rng(struct guest *g);
void test_vsock(struct guest *g, int to_host, int from_host);
/* Reads n random bytes from the first rng device and prints RNG lines; 0 when it answered correctly. */
int rng_check(struct guest *g, uint32_t n);
void test_hostile(struct guest *g, const char *name);

void print_bytes_hex(const uint8_t *p, uint32_t n);

#endif

/* virtio-rng (§5.4): one queue of device-writable buffers. */
#include "dma.h"
#include "guest.h"
#include "virtq.h"

static struct virtq rngq;
static struct vmmio_dev *rngdev;

static int rng_open(struct guest *g)
{
    if (rngdev)
        return 0;
    struct vmmio_dev *d = find_device(g, VIRTIO_ID_RNG, 0);
    if (!d || vmmio_negotiate(d, 0) != 0 || virtq_init(&rngq, 8) != 0 || vmmio_queue_setup(d, 0, &rngq) != 0)
        return -1;
    vmmio_driver_ok(d);
    rngdev = d;
    return 0;
}

int rng_check(struct guest *g, uint32_t n)
{
    static uint8_t *buf;
    if (rng_open(g) != 0) {
        fail("rng device missing or refused");
        return -1;
    }
    if (!buf)
        buf = dma_alloc(4096, 16);
    if (n > 4096)
        n = 4096;
    struct virtq_buf b = {(uintptr_t)buf, n};
    dma_zero(buf, n);
    if (virtq_add(&rngq, &b, 0, 1) < 0) {
        fail("rng queue full");
        return -1;
    }
    vmmio_kick(rngdev, 0, &rngq);
    uint32_t len = 0;
    if (virtq_wait_used(&rngq, &len, SPINS_LONG) < 0) {
        fail("rng did not answer");
        return -1;
    }
    uint32_t distinct = 0;
    uint8_t seen[32] = {0};
    for (uint32_t i = 0; i < len && i < n; i++) {
        if (!(seen[buf[i] >> 3] & (1u << (buf[i] & 7)))) {
            seen[buf[i] >> 3] |= (uint8_t)(1u << (buf[i] & 7));
            distinct++;
        }
    }
    print("RNG bytes=");
    print_dec(len);
    print(" asked=");
    print_dec(n);
    print(" distinct=");
    print_dec(distinct);
    print(" status=");
    print_hex(vmmio_status(rngdev));
    print("\n");
    if (len != n || distinct < 2) {
        fail("rng answer");
        return -1;
    }
    return 0;
}

void test_rng(struct guest *g)
{
    /* Two sizes: the count must match each. */
    if (rng_check(g, 64) == 0 && rng_check(g, 512) == 0)
        print("RNG ok\n");
}

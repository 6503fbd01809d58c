/* Hostile variants of the blk driver (hostile=CASE): each submits one malformed request on blk 0 (or, for rodisk,
 * on the first read-only disk), prints what the device answered, then checks that rng still answers and that the
 * blk device works again after a reset. The guest prints facts; the host test decides what the right answer is.
 *
 *   long           an INDIRECT table of 300 descriptors: a chain longer than the queue (and the device's limit)
 *   loop           descriptor 0 -> 1 -> 2 -> 1 (the header, then two writable buffers that point at each other)
 *   indirect-loop  a loop inside an INDIRECT table
 *   nested         an INDIRECT descriptor inside an INDIRECT table
 *   overflow       a buffer whose address + length wraps past 2^64
 *   sector-overflow a read at a sector whose byte offset overflows 64 bits
 *   sum-overflow   five 1 GiB buffers (all inside RAM: the guest needs 2 GiB) whose lengths add up past 4 GiB
 *   avail          the available index jumps more than the queue size ahead
 *   head           a head index past the queue's end
 *   outside-read   a read into a buffer that runs past the end of RAM (a canary guards the part inside)
 *   outside-write  a write from a buffer at 256 GiB, far outside guest memory
 *   header         a read whose header is 8 bytes instead of 16
 *   nostatus       a request with no device-writable byte for the status
 *   ring           the used ring placed outside guest memory before DRIVER_OK
 *   rodisk         a write to a read-only disk */
#include "blkdev.h"
#include "dma.h"
#include "guest.h"

#define QSIZE 16u
#define CANARY 0xa5u

static int is(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

static void set_desc(volatile struct virtq_desc *d, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    d->addr = addr;
    d->len = len;
    d->flags = flags;
    d->next = next;
}

static void publish(struct blkdev *b, uint16_t head)
{
    virtq_push_head(&b->q, head);
    virtq_publish(&b->q);
    vmmio_notify(b->dev, 0);
}

/* Waits until the device used something, or asked for a reset and raised its configuration-change interrupt. */
static void await_answer(struct blkdev *b)
{
    for (uint32_t i = 0; i < SPINS_SHORT * 5; i++) {
        if (b->q.used->idx != b->q.last_used)
            return;
        if ((vmmio_status(b->dev) & VIRTIO_STATUS_NEEDS_RESET) && (vmmio_read(b->dev, VMMIO_INTERRUPT_STATUS) & 2u))
            return;
        __asm__ volatile("pause" ::: "memory");
    }
}

void test_hostile(struct guest *g, const char *name)
{
    static struct blkdev blk;
    int rodisk = is(name, "rodisk");
    struct vmmio_dev *d = 0;
    for (int i = 0; (d = find_device(g, VIRTIO_ID_BLOCK, i)) != 0; i++) {
        if (vmmio_negotiate(d, VIRTIO_BLK_F_RO) != 0)
            continue;
        if (((d->features & VIRTIO_BLK_F_RO) != 0) == rodisk)
            break;
    }
    if (!d) {
        fail("hostile: no suitable blk device");
        return;
    }
    uint8_t *data = dma_alloc(8192, 4096);
    struct virtq_desc *table = dma_alloc(16u * 320u, 16);
    struct blk_req_hdr *hdr = dma_alloc(64, 16);
    volatile uint8_t *status = (volatile uint8_t *)hdr + 32;
    if (!data || !table || !hdr) {
        fail("hostile: out of memory");
        return;
    }

    int ring = is(name, "ring");
    if (ring) {
        /* The used ring goes to the hole just past RAM: the device must refuse the queue at DRIVER_OK. */
        if (vmmio_negotiate(d, VIRTIO_F_INDIRECT_DESC) != 0 || virtq_init(&blk.q, QSIZE) != 0) {
            fail("hostile: set-up");
            return;
        }
        blk.dev = d;
        blk.q.used = (volatile struct virtq_used *)(uintptr_t)(g->ram_end + 0x10000u);
        vmmio_queue_setup(d, 0, &blk.q);
        vmmio_driver_ok(d);
    } else {
        if (blk_open(&blk, d, VIRTIO_BLK_F_RO | VIRTIO_F_INDIRECT_DESC, QSIZE) != 0) {
            fail("hostile: blk device refused the driver");
            return;
        }
        int st = blk_request(&blk, VIRTIO_BLK_T_IN, 0, data, 512);
        print("HOSTILE before read status=");
        print_dec((uint32_t)st);
        print("\n");
    }

    volatile struct virtq_desc *q = blk.q.desc;
    hdr->type = VIRTIO_BLK_T_IN;
    hdr->reserved = 0;
    hdr->sector = 0;
    *status = VIRTIO_BLK_S_PENDING;
    uint8_t *canary = 0;
    uint32_t canary_len = 0;
    uint16_t head = 0;
    if (is(name, "long")) {
        table[0] = (struct virtq_desc){(uintptr_t)hdr, 16, VIRTQ_DESC_F_NEXT, 1};
        for (uint16_t i = 1; i < 299; i++)
            table[i] = (struct virtq_desc){(uintptr_t)data, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1)};
        table[299] = (struct virtq_desc){(uintptr_t)status, 1, VIRTQ_DESC_F_WRITE, 0};
        set_desc(&q[0], (uintptr_t)table, 16u * 300u, VIRTQ_DESC_F_INDIRECT, 0);
    } else if (is(name, "loop")) {
        set_desc(&q[0], (uintptr_t)hdr, 16, VIRTQ_DESC_F_NEXT, 1);
        set_desc(&q[1], (uintptr_t)data, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
        set_desc(&q[2], (uintptr_t)data, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    } else if (is(name, "indirect-loop")) {
        table[0] = (struct virtq_desc){(uintptr_t)hdr, 16, VIRTQ_DESC_F_NEXT, 1};
        table[1] = (struct virtq_desc){(uintptr_t)data, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2};
        table[2] = (struct virtq_desc){(uintptr_t)data, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1};
        set_desc(&q[0], (uintptr_t)table, 16u * 3u, VIRTQ_DESC_F_INDIRECT, 0);
    } else if (is(name, "nested")) {
        struct virtq_desc *inner = table + 8;
        inner[0] = (struct virtq_desc){(uintptr_t)data, 512, VIRTQ_DESC_F_WRITE, 0};
        table[0] = (struct virtq_desc){(uintptr_t)hdr, 16, VIRTQ_DESC_F_NEXT, 1};
        table[1] = (struct virtq_desc){(uintptr_t)inner, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 2};
        table[2] = (struct virtq_desc){(uintptr_t)status, 1, VIRTQ_DESC_F_WRITE, 0};
        set_desc(&q[0], (uintptr_t)table, 16u * 3u, VIRTQ_DESC_F_INDIRECT, 0);
    } else if (is(name, "overflow")) {
        set_desc(&q[0], (uintptr_t)hdr, 16, VIRTQ_DESC_F_NEXT, 1);
        set_desc(&q[1], 0xfffffffffffff000ull, 0x2000, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
        set_desc(&q[2], (uintptr_t)status, 1, VIRTQ_DESC_F_WRITE, 0);
    } else if (is(name, "sector-overflow")) {
        hdr->sector = 0x00ffffffffffffffull;
        set_desc(&q[0], (uintptr_t)hdr, 16, VIRTQ_DESC_F_NEXT, 1);
        set_desc(&q[1], (uintptr_t)data, 4096, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
        set_desc(&q[2], (uintptr_t)status, 1, VIRTQ_DESC_F_WRITE, 0);
    } else if (is(name, "sum-overflow")) {
        if (g->ram_end < 0x80000000ull) {
            fail("hostile: sum-overflow needs 2 GiB of RAM");
            return;
        }
        set_desc(&q[0], (uintptr_t)hdr, 16, VIRTQ_DESC_F_NEXT, 1);
        for (uint16_t i = 1; i <= 5; i++)
            set_desc(&q[i], 0x40000000u, 0x40000000u, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1));
        set_desc(&q[6], (uintptr_t)status, 1, VIRTQ_DESC_F_WRITE, 0);
    } else if (is(name, "avail")) {
        set_desc(&q[0], (uintptr_t)hdr, 16, VIRTQ_DESC_F_NEXT, 1);
        set_desc(&q[1], (uintptr_t)status, 1, VIRTQ_DESC_F_WRITE, 0);
        blk.q.avail_idx = (uint16_t)(blk.q.avail_idx + QSIZE); /* with the push below: QSIZE + 1 ahead */
    } else if (is(name, "head")) {
        head = 200;
    } else if (is(name, "outside-read")) {
        /* The buffer's first 4 KiB are the last page of RAM, the next 4 KiB are past its end. */
        canary = (uint8_t *)(uintptr_t)(g->ram_end - 4096u);
        canary_len = 4096;
        for (uint32_t i = 0; i < canary_len; i++)
            canary[i] = CANARY;
        set_desc(&q[0], (uintptr_t)hdr, 16, VIRTQ_DESC_F_NEXT, 1);
        set_desc(&q[1], (uintptr_t)canary, 8192, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
        set_desc(&q[2], (uintptr_t)status, 1, VIRTQ_DESC_F_WRITE, 0);
    } else if (is(name, "outside-write")) {
        hdr->type = VIRTIO_BLK_T_OUT;
        set_desc(&q[0], (uintptr_t)hdr, 16, VIRTQ_DESC_F_NEXT, 1);
        set_desc(&q[1], 0x4000000000ull, 4096, VIRTQ_DESC_F_NEXT, 2);
        set_desc(&q[2], (uintptr_t)status, 1, VIRTQ_DESC_F_WRITE, 0);
    } else if (is(name, "header")) {
        set_desc(&q[0], (uintptr_t)hdr, 8, VIRTQ_DESC_F_NEXT, 1);
        set_desc(&q[1], (uintptr_t)data, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
        set_desc(&q[2], (uintptr_t)status, 1, VIRTQ_DESC_F_WRITE, 0);
    } else if (is(name, "nostatus")) {
        hdr->type = VIRTIO_BLK_T_OUT;
        set_desc(&q[0], (uintptr_t)hdr, 16, VIRTQ_DESC_F_NEXT, 1);
        set_desc(&q[1], (uintptr_t)data, 512, 0, 0);
    } else if (is(name, "rodisk")) {
        for (uint32_t i = 0; i < 512; i++)
            data[i] = CANARY;
        hdr->type = VIRTIO_BLK_T_OUT;
        set_desc(&q[0], (uintptr_t)hdr, 16, VIRTQ_DESC_F_NEXT, 1);
        set_desc(&q[1], (uintptr_t)data, 512, VIRTQ_DESC_F_NEXT, 2);
        set_desc(&q[2], (uintptr_t)status, 1, VIRTQ_DESC_F_WRITE, 0);
    } else if (!ring) {
        fail("hostile: unknown case");
        return;
    }
    /* What the earlier good read raised is acknowledged, so only this request's answer shows. */
    if (!ring) {
        vmmio_ack_interrupts(d);
        publish(&blk, head);
        await_answer(&blk);
    } else {
        for (uint32_t i = 0; i < SPINS_SHORT && !(vmmio_read(d, VMMIO_INTERRUPT_STATUS) & 2u); i++)
            __asm__ volatile("pause" ::: "memory");
    }

    uint32_t dev_status = vmmio_status(d);
    print("HOSTILE case=");
    print(name);
    print(" device_status=");
    print_hex(dev_status);
    print(" needs_reset=");
    print_dec((dev_status & VIRTIO_STATUS_NEEDS_RESET) ? 1u : 0u);
    print(" used=");
    print_dec(ring ? 0u : (uint32_t)(uint16_t)(blk.q.used->idx - blk.q.last_used));
    print(" blk_status=");
    print_dec(*status);
    print(" interrupt=");
    print_hex(vmmio_read(d, VMMIO_INTERRUPT_STATUS));
    print("\n");
    if (canary) {
        uint32_t intact = 1;
        for (uint32_t i = 0; i < canary_len; i++)
            if (canary[i] != CANARY)
                intact = 0;
        print("HOSTILE canary intact=");
        print_dec(intact);
        print("\n");
    }

    /* The other devices are still served... */
    rng_check(g, 16);
    /* ...and this one works again after a reset. */
    vmmio_reset(d);
    print("HOSTILE reset status=");
    print_hex(vmmio_status(d));
    print("\n");
    if (blk_open(&blk, d, VIRTIO_BLK_F_RO, QSIZE) != 0) {
        fail("hostile: blk refused the driver after a reset");
        return;
    }
    int st = blk_request(&blk, VIRTIO_BLK_T_IN, 0, data, 512);
    print("HOSTILE recovered read status=");
    print_dec((uint32_t)st);
    print(" device_status=");
    print_hex(vmmio_status(d));
    print("\n");
}

/* virtio-blk test: the whole disk written with a pattern and read back, several requests in flight (writes as
 * direct chains, reads through INDIRECT tables), FLUSH, GET_ID; a read-only disk answers writes with IOERR.
 *
 * The pattern (the host test recomputes it over the image file): dword k of sector s is
 *   k == 0: s;  k == 1: ~s;  else ((s % 256) * 128 + k) * 0x9e3779b1 + 0x7f4a7c15   (32-bit arithmetic).
 * Requests are 256 sectors (128 KiB) long and start at multiples of 256. The guest checks dwords 0, 1, 64 and 127
 * of every sector it reads back (poisoned before each read); the host checks every byte. */
#include "blkdev.h"
#include "dma.h"
#include "guest.h"

#define REQ_SECTORS 256u
#define REQ_BYTES (REQ_SECTORS * 512u)
#define INFLIGHT 4u
#define POISON 0xdeadbeefu

static uint32_t pattern(uint32_t s, uint32_t k)
{
    if (k == 0)
        return s;
    if (k == 1)
        return ~s;
    return ((s % REQ_SECTORS) * 128u + k) * 0x9e3779b1u + 0x7f4a7c15u;
}

static uint32_t *buffers[INFLIGHT];

static void print_prefix(int i)
{
    print("BLK ");
    print_dec((uint32_t)i);
}

/* Runs the whole disk through INFLIGHT buffers; write or read-back-and-check. Returns the failed requests. */
static uint32_t whole_disk(struct blkdev *b, int write, int indirect, uint32_t *requests, uint32_t *mismatches,
                           uint32_t *max_inflight)
{
    uint32_t cap = (uint32_t)b->capacity, next = 0, inflight = 0, errors = 0;
    int16_t head_buf[256];
    uint32_t head_sector[256];
    uint32_t free_mask = (1u << INFLIGHT) - 1;
    *requests = *mismatches = *max_inflight = 0;
    for (uint32_t spins = 0; (next < cap || inflight) && spins < 100000u; spins++) {
        while (inflight < INFLIGHT && next < cap) {
            uint32_t i = 0;
            while (!(free_mask & (1u << i)))
                i++;
            uint32_t n = cap - next < REQ_SECTORS ? cap - next : REQ_SECTORS;
            uint32_t *w = buffers[i];
            for (uint32_t s = 0; s < n; s++) {
                uint32_t *sec = w + s * 128u;
                if (write) {
                    sec[0] = next + s;
                    sec[1] = ~(next + s);
                } else {
                    sec[0] = sec[1] = sec[64] = sec[127] = POISON;
                }
            }
            int h = blk_submit(b, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, next, w, n * 512u, indirect);
            if (h < 0) {
                fail("blk queue full");
                return errors + 1;
            }
            head_buf[h] = (int16_t)i;
            head_sector[h] = next;
            free_mask &= ~(1u << i);
            next += n;
            inflight++;
            (*requests)++;
        }
        if (inflight > *max_inflight)
            *max_inflight = inflight;
        vmmio_kick(b->dev, 0, &b->q);
        int h = blk_complete(b, SPINS_LONG);
        if (h < 0) {
            fail("blk request did not complete");
            return errors + 1;
        }
        uint32_t i = (uint32_t)head_buf[h];
        if (b->slots[h].status != VIRTIO_BLK_S_OK)
            errors++;
        if (!write) {
            uint32_t first = head_sector[h], n = cap - first < REQ_SECTORS ? cap - first : REQ_SECTORS;
            for (uint32_t s = 0; s < n; s++) {
                const uint32_t *sec = buffers[i] + s * 128u;
                uint32_t sn = first + s;
                if (sec[0] != pattern(sn, 0) || sec[1] != pattern(sn, 1) || sec[64] != pattern(sn, 64) ||
                    sec[127] != pattern(sn, 127)) {
                    if (!*mismatches) {
                        print("BLK mismatch sector=");
                        print_dec(sn);
                        print(" got=");
                        print_hex(sec[0]);
                        print("\n");
                    }
                    (*mismatches)++;
                }
            }
        }
        free_mask |= 1u << i;
        inflight--;
    }
    return errors;
}

static void fill_base_pattern(void)
{
    for (uint32_t i = 0; i < INFLIGHT; i++) {
        uint32_t *w = buffers[i];
        uint32_t v = 0x7f4a7c15u;
        for (uint32_t k = 0; k < REQ_BYTES / 4u; k++, v += 0x9e3779b1u)
            w[k] = v;
    }
}

static void read_write_disk(struct blkdev *b, int i)
{
    uint32_t requests, mismatches, inflight;
    fill_base_pattern();
    uint32_t errors = whole_disk(b, 1, 0, &requests, &mismatches, &inflight);
    print_prefix(i);
    print(" write sectors=");
    print_dec((uint32_t)b->capacity);
    print(" requests=");
    print_dec(requests);
    print(" inflight=");
    print_dec(inflight);
    print(" errors=");
    print_dec(errors);
    print("\n");
    if (errors)
        fail("blk write");

    int st = blk_request(b, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
    print_prefix(i);
    print(" flush status=");
    print_dec((uint32_t)st);
    print("\n");
    if (st != VIRTIO_BLK_S_OK)
        fail("blk flush");

    int indirect = (b->dev->features & VIRTIO_F_INDIRECT_DESC) != 0;
    errors = whole_disk(b, 0, indirect, &requests, &mismatches, &inflight);
    print_prefix(i);
    print(" read sectors=");
    print_dec((uint32_t)b->capacity);
    print(" requests=");
    print_dec(requests);
    print(" inflight=");
    print_dec(inflight);
    print(" indirect=");
    print_dec((uint32_t)indirect);
    print(" errors=");
    print_dec(errors);
    print(" mismatches=");
    print_dec(mismatches);
    print("\n");
    if (errors || mismatches)
        fail("blk read back");
}

static void read_only_disk(struct blkdev *b, int i)
{
    uint8_t *sector = (uint8_t *)buffers[0];
    for (uint32_t k = 0; k < 512; k++)
        sector[k] = 0xa5;
    int st = blk_request(b, VIRTIO_BLK_T_OUT, 0, sector, 512);
    print_prefix(i);
    print(" ro write status=");
    print_dec((uint32_t)st);
    print("\n");
    if (st != VIRTIO_BLK_S_IOERR)
        fail("blk read-only disk accepted a write");
    st = blk_request(b, VIRTIO_BLK_T_IN, 0, sector, 512);
    print_prefix(i);
    print(" ro read status=");
    print_dec((uint32_t)st);
    print(" first=");
    print_first_bytes(sector, 16);
    print("\n");
}

void test_blk(struct guest *g)
{
    if (!buffers[0])
        for (uint32_t i = 0; i < INFLIGHT; i++)
            buffers[i] = dma_alloc(REQ_BYTES, 4096);
    if (!buffers[INFLIGHT - 1]) {
        fail("blk buffers");
        return;
    }
    static struct blkdev disks[MAX_DEVICES];
    struct vmmio_dev *d;
    for (int i = 0; (d = find_device(g, VIRTIO_ID_BLOCK, i)) != 0; i++) {
        struct blkdev *b = &disks[i];
        if (blk_open(b, d, VIRTIO_BLK_F_RO | VIRTIO_BLK_F_FLUSH | VIRTIO_F_INDIRECT_DESC | VIRTIO_F_EVENT_IDX, 16) != 0) {
            fail("blk device refused the driver");
            continue;
        }
        int ro = (d->features & VIRTIO_BLK_F_RO) != 0;
        print_prefix(i);
        print(" capacity=");
        print_dec((uint32_t)b->capacity);
        print(" ro=");
        print_dec((uint32_t)ro);
        print(" features=");
        print_hex(d->features);
        print("\n");
        char id[21];
        for (int k = 0; k < 21; k++)
            id[k] = 0;
        int st = blk_request(b, VIRTIO_BLK_T_GET_ID, 0, id, 20);
        print_prefix(i);
        print(" id status=");
        print_dec((uint32_t)st);
        print(" serial=");
        print(id);
        print("\n");
        if (ro)
            read_only_disk(b, i);
        else
            read_write_disk(b, i);
    }
}

#include "blkdev.h"

#include "dma.h"

int blk_open(struct blkdev *b, struct vmmio_dev *dev, uint64_t wanted, uint16_t qsize)
{
    b->dev = dev;
    if (vmmio_negotiate(dev, wanted) != 0 || virtq_init(&b->q, qsize) != 0)
        return -1;
    if (!b->slots && !(b->slots = dma_alloc(sizeof(struct blk_slot) * 256u, 16)))
        return -1;
    if (vmmio_queue_setup(dev, 0, &b->q) != 0)
        return -1;
    b->capacity = vmmio_config64(dev, 0);
    vmmio_driver_ok(dev);
    return 0;
}

int blk_submit(struct blkdev *b, uint32_t type, uint64_t sector, void *data, uint32_t len, int indirect)
{
    /* The slot belongs to the head, which is only known after adding: take the head the queue will use next. */
    struct blk_slot *s = &b->slots[b->q.free_head];
    s->hdr.type = type;
    s->hdr.reserved = 0;
    s->hdr.sector = sector;
    s->status = VIRTIO_BLK_S_PENDING;
    struct virtq_buf bufs[3];
    uint32_t n = 0, out = 1;
    bufs[n++] = (struct virtq_buf){(uintptr_t)&s->hdr, sizeof s->hdr};
    if (data && len) {
        bufs[n++] = (struct virtq_buf){(uintptr_t)data, len};
        if (type == VIRTIO_BLK_T_OUT)
            out = 2;
    }
    bufs[n++] = (struct virtq_buf){(uintptr_t)&s->status, 1};
    return indirect ? virtq_add_indirect(&b->q, s->table, bufs, out, n - out) : virtq_add(&b->q, bufs, out, n - out);
}

int blk_complete(struct blkdev *b, uint32_t spins)
{
    int h = virtq_wait_used(&b->q, 0, spins);
    return h < 0 ? -1 : h;
}

int blk_request(struct blkdev *b, uint32_t type, uint64_t sector, void *data, uint32_t len)
{
    int h = blk_submit(b, type, sector, data, len, 0);
    if (h < 0)
        return -1;
    vmmio_kick(b->dev, 0, &b->q);
    h = blk_complete(b, 2000000u);
    return h < 0 ? -1 : b->slots[h].status;
}

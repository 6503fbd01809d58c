/* virtio-blk requests (virtio 1.2 §5.2) on a virtqueue: header, data, status byte. No test policy. */
#ifndef VMMSHARP_GUEST_BLKDEV_H
#define VMMSHARP_GUEST_BLKDEV_H

#include <stdint.h>

#include "virtio_mmio.h"
#include "virtq.h"

#define VIRTIO_BLK_F_SIZE_MAX (1ull << 1)
#define VIRTIO_BLK_F_SEG_MAX (1ull << 2)
#define VIRTIO_BLK_F_RO (1ull << 5)
#define VIRTIO_BLK_F_FLUSH (1ull << 9)

#define VIRTIO_BLK_T_IN 0u
#define VIRTIO_BLK_T_OUT 1u
#define VIRTIO_BLK_T_FLUSH 4u
#define VIRTIO_BLK_T_GET_ID 8u

#define VIRTIO_BLK_S_OK 0u
#define VIRTIO_BLK_S_IOERR 1u
#define VIRTIO_BLK_S_UNSUPP 2u
#define VIRTIO_BLK_S_PENDING 0xffu /* written by the driver before submitting: not an answer */

struct blk_req_hdr {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

/* One request slot: its header, its status byte and (for indirect submission) its descriptor table. */
struct blk_slot {
    struct blk_req_hdr hdr;
    volatile uint8_t status;
    uint8_t pad[15];
    struct virtq_desc table[4];
};

struct blkdev {
    struct vmmio_dev *dev;
    struct virtq q;
    uint64_t capacity; /* sectors */
    struct blk_slot *slots; /* one per descriptor head */
};

/* Negotiates (VERSION_1 plus wanted & offered), sets up queue 0 of qsize entries, DRIVER_OK. -1 on failure. */
int blk_open(struct blkdev *b, struct vmmio_dev *dev, uint64_t wanted, uint16_t qsize);
/* Submits one request (data may be 0 for FLUSH); returns the head or -1. indirect: as one INDIRECT descriptor.
 * Not yet published: vmmio_kick(b->dev, 0, &b->q) does that. */
int blk_submit(struct blkdev *b, uint32_t type, uint64_t sector, void *data, uint32_t len, int indirect);
/* Waits for the next completion; returns its head (the status is b->slots[head].status), -1 on timeout. */
int blk_complete(struct blkdev *b, uint32_t spins);
/* Submit, kick, wait: the status byte, or -1 on timeout. */
int blk_request(struct blkdev *b, uint32_t type, uint64_t sector, void *data, uint32_t len);

#endif

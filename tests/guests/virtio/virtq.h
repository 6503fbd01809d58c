/* Split virtqueue, driver side (virtio 1.2 §2.7), with EVENT_IDX and INDIRECT_DESC. No test policy: a bench guest
 * reuses it as is. The raw fields are public so a test can also write what a correct driver never would. */
#ifndef VMMSHARP_GUEST_VIRTQ_H
#define VMMSHARP_GUEST_VIRTQ_H

#include <stdint.h>

#define VIRTQ_DESC_F_NEXT 1u
#define VIRTQ_DESC_F_WRITE 2u
#define VIRTQ_DESC_F_INDIRECT 4u
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u
#define VIRTQ_USED_F_NO_NOTIFY 1u

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
struct virtq_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[]; /* size entries, then used_event */
};
struct virtq_used_elem {
    uint32_t id;
    uint32_t len;
};
struct virtq_used {
    uint16_t flags;
    uint16_t idx;
    struct virtq_used_elem ring[]; /* size entries, then avail_event */
};

/* One buffer of a chain: the device reads it (out) or writes it (in). */
struct virtq_buf {
    uint64_t addr;
    uint32_t len;
};

struct virtq {
    uint16_t size;
    volatile struct virtq_desc *desc;
    volatile struct virtq_avail *avail;
    volatile struct virtq_used *used;
    uint16_t free_head;  /* first free descriptor (free ones are chained through next) */
    uint16_t num_free;
    uint16_t avail_idx;  /* the driver's next available index (published by virtq_publish) */
    uint16_t published;  /* the index the device last saw */
    uint16_t last_used;  /* the next used entry to take */
    int event_idx;       /* set by the transport from the negotiated features */
    uint16_t chain_len[256]; /* descriptors per head, for freeing (queues up to 256 entries) */
};

/* Allocates the rings (zeroed) for a queue of size entries (a power of two, at most 256); -1 when out of memory. */
int virtq_init(struct virtq *q, uint16_t size);
/* Adds a chain of out device-readable then in device-writable buffers; returns its head, -1 if there is no room.
 * Not yet visible to the device: see virtq_publish. */
int virtq_add(struct virtq *q, const struct virtq_buf *bufs, uint32_t out, uint32_t in);
/* The same chain as one INDIRECT descriptor whose table (16 bytes per buffer, 16-aligned) the caller provides. */
int virtq_add_indirect(struct virtq *q, struct virtq_desc *table, const struct virtq_buf *bufs, uint32_t out,
                       uint32_t in);
/* Puts head in the available ring as is (the descriptors are the caller's business). */
void virtq_push_head(struct virtq *q, uint16_t head);
/* Makes the added chains visible; returns whether the device wants a notification for them. */
int virtq_publish(struct virtq *q);
/* Takes the next used entry: its head (the chain's descriptors are freed) and *len; -1 when none. */
int virtq_get_used(struct virtq *q, uint32_t *len);
/* Polls virtq_get_used up to spins times. */
int virtq_wait_used(struct virtq *q, uint32_t *len, uint32_t spins);
/* Asks for an interrupt only after the next used entry (EVENT_IDX's used_event), or for none (NO_INTERRUPT). */
void virtq_set_used_event(struct virtq *q, uint16_t idx);
void virtq_suppress_interrupts(struct virtq *q, int suppress);

static inline void virtq_mb(void) { __asm__ volatile("lock; addl $0, (%%esp)" ::: "memory"); }

#endif

#include "virtq.h"

#include "dma.h"

int virtq_init(struct virtq *q, uint16_t size)
{
    if (size == 0 || size > 256 || (size & (size - 1)))
        return -1;
    uint32_t desc_bytes = 16u * size, avail_bytes = 6u + 2u * size, used_bytes = 6u + 8u * size;
    /* The used ring gets whole pages of its own: only the device writes there after the zeroing below (the host's
     * diff-snapshot test relies on that to see the device's writes, which KVM's dirty log does not). */
    void *desc = dma_alloc(desc_bytes, 4096), *avail = dma_alloc(avail_bytes, 4096),
         *used = dma_alloc((used_bytes + 4095u) & ~4095u, 4096);
    if (!desc || !avail || !used)
        return -1;
    dma_zero(desc, desc_bytes);
    dma_zero(avail, avail_bytes);
    dma_zero(used, used_bytes);
    q->size = size;
    q->desc = desc;
    q->avail = avail;
    q->used = used;
    for (uint16_t i = 0; i < size; i++)
        q->desc[i].next = (uint16_t)(i + 1);
    q->free_head = 0;
    q->num_free = size;
    q->avail_idx = q->published = q->last_used = 0;
    q->event_idx = 0;
    return 0;
}

static volatile uint16_t *used_event(struct virtq *q) { return &q->avail->ring[q->size]; }
static volatile uint16_t *avail_event(struct virtq *q) { return (volatile uint16_t *)&q->used->ring[q->size]; }

void virtq_push_head(struct virtq *q, uint16_t head)
{
    q->avail->ring[q->avail_idx & (q->size - 1)] = head;
    q->avail_idx++;
}

int virtq_add(struct virtq *q, const struct virtq_buf *bufs, uint32_t out, uint32_t in)
{
    uint32_t n = out + in;
    if (n == 0 || n > q->num_free)
        return -1;
    uint16_t head = q->free_head, i = head, last = head;
    for (uint32_t k = 0; k < n; k++) {
        volatile struct virtq_desc *d = &q->desc[i];
        d->addr = bufs[k].addr;
        d->len = bufs[k].len;
        d->flags = (uint16_t)((k >= out ? VIRTQ_DESC_F_WRITE : 0) | (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
        last = i;
        i = d->next;
    }
    q->free_head = q->desc[last].next;
    q->num_free = (uint16_t)(q->num_free - n);
    q->chain_len[head] = (uint16_t)n;
    virtq_push_head(q, head);
    return head;
}

int virtq_add_indirect(struct virtq *q, struct virtq_desc *table, const struct virtq_buf *bufs, uint32_t out,
                       uint32_t in)
{
    uint32_t n = out + in;
    if (n == 0 || q->num_free == 0)
        return -1;
    for (uint32_t k = 0; k < n; k++) {
        table[k].addr = bufs[k].addr;
        table[k].len = bufs[k].len;
        table[k].flags = (uint16_t)((k >= out ? VIRTQ_DESC_F_WRITE : 0) | (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
        table[k].next = (uint16_t)(k + 1);
    }
    uint16_t head = q->free_head;
    volatile struct virtq_desc *d = &q->desc[head];
    q->free_head = d->next;
    q->num_free--;
    d->addr = (uintptr_t)table;
    d->len = 16u * n;
    d->flags = VIRTQ_DESC_F_INDIRECT;
    q->chain_len[head] = 1;
    virtq_push_head(q, head);
    return head;
}

int virtq_publish(struct virtq *q)
{
    uint16_t old = q->published, now = q->avail_idx;
    /* Descriptors and ring entries are visible before the index that publishes them. */
    virtq_mb();
    q->avail->idx = now;
    q->published = now;
    /* The index is visible before the device's suppression field is read. */
    virtq_mb();
    if (q->event_idx)
        return (uint16_t)(now - *avail_event(q) - 1) < (uint16_t)(now - old);
    return !(q->used->flags & VIRTQ_USED_F_NO_NOTIFY);
}

int virtq_get_used(struct virtq *q, uint32_t *len)
{
    if (q->used->idx == q->last_used)
        return -1;
    virtq_mb(); /* the entry is read after the index that published it */
    volatile struct virtq_used_elem *e = &q->used->ring[q->last_used & (q->size - 1)];
    uint32_t id = e->id;
    if (len)
        *len = e->len;
    q->last_used++;
    if (id >= q->size)
        return -2; /* a device bug: report it, free nothing */
    /* Free the chain: walk its descriptors (an indirect chain is one). */
    uint16_t n = q->chain_len[id], i = (uint16_t)id;
    for (uint16_t k = 1; k < n; k++)
        i = q->desc[i].next;
    q->desc[i].next = q->free_head;
    q->free_head = (uint16_t)id;
    q->num_free = (uint16_t)(q->num_free + n);
    q->chain_len[id] = 0;
    return (int)id;
}

int virtq_wait_used(struct virtq *q, uint32_t *len, uint32_t spins)
{
    for (uint32_t i = 0; i < spins; i++) {
        int h = virtq_get_used(q, len);
        if (h != -1)
            return h;
        __asm__ volatile("pause" ::: "memory");
    }
    return -1;
}

void virtq_set_used_event(struct virtq *q, uint16_t idx) { *used_event(q) = idx; }

void virtq_suppress_interrupts(struct virtq *q, int suppress)
{
    q->avail->flags = suppress ? VIRTQ_AVAIL_F_NO_INTERRUPT : 0;
}

#include "virtio_mmio.h"

uint32_t vmmio_read(const struct vmmio_dev *d, uint32_t reg) { return *(volatile uint32_t *)(d->base + reg); }

void vmmio_write(const struct vmmio_dev *d, uint32_t reg, uint32_t v) { *(volatile uint32_t *)(d->base + reg) = v; }

int vmmio_probe(struct vmmio_dev *d, uintptr_t base, uint32_t gsi)
{
    d->base = base;
    d->gsi = gsi;
    d->device_id = 0;
    d->offered = d->features = 0;
    if (vmmio_read(d, VMMIO_MAGIC) != VMMIO_MAGIC_VALUE || vmmio_read(d, VMMIO_VERSION) != 2)
        return -1;
    d->device_id = vmmio_read(d, VMMIO_DEVICE_ID);
    return d->device_id ? 0 : -1;
}

int vmmio_negotiate(struct vmmio_dev *d, uint64_t wanted)
{
    vmmio_reset(d);
    vmmio_write(d, VMMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    vmmio_write(d, VMMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    vmmio_write(d, VMMIO_DEVICE_FEATURES_SEL, 0);
    uint64_t lo = vmmio_read(d, VMMIO_DEVICE_FEATURES);
    vmmio_write(d, VMMIO_DEVICE_FEATURES_SEL, 1);
    uint64_t hi = vmmio_read(d, VMMIO_DEVICE_FEATURES);
    d->offered = lo | (hi << 32);
    d->features = d->offered & (wanted | VIRTIO_F_VERSION_1);
    vmmio_write(d, VMMIO_DRIVER_FEATURES_SEL, 0);
    vmmio_write(d, VMMIO_DRIVER_FEATURES, (uint32_t)d->features);
    vmmio_write(d, VMMIO_DRIVER_FEATURES_SEL, 1);
    vmmio_write(d, VMMIO_DRIVER_FEATURES, (uint32_t)(d->features >> 32));
    uint32_t s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
    vmmio_write(d, VMMIO_STATUS, s);
    if (!(d->features & VIRTIO_F_VERSION_1) || !(vmmio_read(d, VMMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK)) {
        vmmio_write(d, VMMIO_STATUS, s | VIRTIO_STATUS_FAILED);
        return -1;
    }
    return 0;
}

uint32_t vmmio_queue_max(const struct vmmio_dev *d, uint32_t idx)
{
    vmmio_write(d, VMMIO_QUEUE_SEL, idx);
    return vmmio_read(d, VMMIO_QUEUE_NUM_MAX);
}

int vmmio_queue_setup(struct vmmio_dev *d, uint32_t idx, struct virtq *q)
{
    uint32_t max = vmmio_queue_max(d, idx);
    if (max == 0 || q->size > max || vmmio_read(d, VMMIO_QUEUE_READY))
        return -1;
    q->event_idx = (d->features & VIRTIO_F_EVENT_IDX) != 0;
    vmmio_write(d, VMMIO_QUEUE_NUM, q->size);
    uint64_t desc = (uintptr_t)q->desc, avail = (uintptr_t)q->avail, used = (uintptr_t)q->used;
    vmmio_write(d, VMMIO_QUEUE_DESC_LOW, (uint32_t)desc);
    vmmio_write(d, VMMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
    vmmio_write(d, VMMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
    vmmio_write(d, VMMIO_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
    vmmio_write(d, VMMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
    vmmio_write(d, VMMIO_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
    vmmio_write(d, VMMIO_QUEUE_READY, 1);
    return 0;
}

void vmmio_driver_ok(struct vmmio_dev *d)
{
    vmmio_write(d, VMMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
                                     VIRTIO_STATUS_DRIVER_OK);
}

void vmmio_reset(struct vmmio_dev *d)
{
    vmmio_write(d, VMMIO_STATUS, 0);
    /* The reset is complete when status reads 0 again (§4.2.2.1); bounded, as the device may be gone. */
    for (uint32_t i = 0; i < 1000u && vmmio_read(d, VMMIO_STATUS) != 0; i++)
        ;
}

uint32_t vmmio_status(const struct vmmio_dev *d) { return vmmio_read(d, VMMIO_STATUS); }

void vmmio_notify(const struct vmmio_dev *d, uint32_t idx) { vmmio_write(d, VMMIO_QUEUE_NOTIFY, idx); }

void vmmio_kick(const struct vmmio_dev *d, uint32_t idx, struct virtq *q)
{
    if (virtq_publish(q))
        vmmio_notify(d, idx);
}

uint32_t vmmio_ack_interrupts(const struct vmmio_dev *d)
{
    uint32_t s = vmmio_read(d, VMMIO_INTERRUPT_STATUS);
    if (s)
        vmmio_write(d, VMMIO_INTERRUPT_ACK, s);
    return s;
}

uint8_t vmmio_config8(const struct vmmio_dev *d, uint32_t off) { return *(volatile uint8_t *)(d->base + VMMIO_CONFIG + off); }

uint32_t vmmio_config32(const struct vmmio_dev *d, uint32_t off)
{
    return *(volatile uint32_t *)(d->base + VMMIO_CONFIG + off);
}

uint64_t vmmio_config64(const struct vmmio_dev *d, uint32_t off)
{
    /* Two 32-bit halves, retried while ConfigGeneration moves (§4.2.2.1 config atomicity). */
    uint64_t v = 0;
    for (int tries = 0; tries < 16; tries++) {
        uint32_t g = vmmio_read(d, VMMIO_CONFIG_GENERATION);
        v = vmmio_config32(d, off) | ((uint64_t)vmmio_config32(d, off + 4) << 32);
        if (vmmio_read(d, VMMIO_CONFIG_GENERATION) == g)
            break;
    }
    return v;
}

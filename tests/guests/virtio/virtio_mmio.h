/* virtio-mmio transport, version 2 registers (virtio 1.2 §4.2.2), driver side. No test policy: a bench guest
 * reuses it as is. Addresses are guest-physical = virtual (paging off). */
#ifndef VMMSHARP_GUEST_VIRTIO_MMIO_H
#define VMMSHARP_GUEST_VIRTIO_MMIO_H

#include <stdint.h>

#include "virtq.h"

#define VMMIO_MAGIC 0x000
#define VMMIO_VERSION 0x004
#define VMMIO_DEVICE_ID 0x008
#define VMMIO_VENDOR_ID 0x00c
#define VMMIO_DEVICE_FEATURES 0x010
#define VMMIO_DEVICE_FEATURES_SEL 0x014
#define VMMIO_DRIVER_FEATURES 0x020
#define VMMIO_DRIVER_FEATURES_SEL 0x024
#define VMMIO_QUEUE_SEL 0x030
#define VMMIO_QUEUE_NUM_MAX 0x034
#define VMMIO_QUEUE_NUM 0x038
#define VMMIO_QUEUE_READY 0x044
#define VMMIO_QUEUE_NOTIFY 0x050
#define VMMIO_INTERRUPT_STATUS 0x060
#define VMMIO_INTERRUPT_ACK 0x064
#define VMMIO_STATUS 0x070
#define VMMIO_QUEUE_DESC_LOW 0x080
#define VMMIO_QUEUE_DESC_HIGH 0x084
#define VMMIO_QUEUE_DRIVER_LOW 0x090
#define VMMIO_QUEUE_DRIVER_HIGH 0x094
#define VMMIO_QUEUE_DEVICE_LOW 0x0a0
#define VMMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VMMIO_CONFIG_GENERATION 0x0fc
#define VMMIO_CONFIG 0x100

#define VMMIO_MAGIC_VALUE 0x74726976u /* "virt" */

/* Device status bits (§2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1u
#define VIRTIO_STATUS_DRIVER 2u
#define VIRTIO_STATUS_DRIVER_OK 4u
#define VIRTIO_STATUS_FEATURES_OK 8u
#define VIRTIO_STATUS_NEEDS_RESET 64u
#define VIRTIO_STATUS_FAILED 128u

/* Device-independent feature bits (§6). */
#define VIRTIO_F_INDIRECT_DESC (1ull << 28)
#define VIRTIO_F_EVENT_IDX (1ull << 29)
#define VIRTIO_F_VERSION_1 (1ull << 32)

/* Device ids (§5). */
#define VIRTIO_ID_NET 1u
#define VIRTIO_ID_BLOCK 2u
#define VIRTIO_ID_CONSOLE 3u
#define VIRTIO_ID_RNG 4u
#define VIRTIO_ID_VSOCK 19u

struct vmmio_dev {
    uintptr_t base;     /* the register window */
    uint32_t gsi;       /* its interrupt (unused by a polling driver, reported) */
    uint32_t device_id; /* 0: no device behind the window */
    uint64_t offered;   /* the device's features */
    uint64_t features;  /* what was negotiated */
};

uint32_t vmmio_read(const struct vmmio_dev *d, uint32_t reg);
void vmmio_write(const struct vmmio_dev *d, uint32_t reg, uint32_t v);

/* Checks magic and version 2 and reads the device id; 0 when the window holds a virtio-mmio device. */
int vmmio_probe(struct vmmio_dev *d, uintptr_t base, uint32_t gsi);
/* Reset, ACKNOWLEDGE|DRIVER, accepts offered & wanted (VERSION_1 always), FEATURES_OK and checks it stuck.
 * 0 on success, -1 if the device refused (status FAILED is then set). */
int vmmio_negotiate(struct vmmio_dev *d, uint64_t wanted);
/* Sets queue idx up with ring q (initialised by virtq_init); -1 if the device has no such queue or q is too big. */
int vmmio_queue_setup(struct vmmio_dev *d, uint32_t idx, struct virtq *q);
/* QueueNumMax of queue idx (0: no such queue). */
uint32_t vmmio_queue_max(const struct vmmio_dev *d, uint32_t idx);
void vmmio_driver_ok(struct vmmio_dev *d);
void vmmio_reset(struct vmmio_dev *d);
uint32_t vmmio_status(const struct vmmio_dev *d);
void vmmio_notify(const struct vmmio_dev *d, uint32_t idx);
/* Notifies queue idx only if the device asked for it (EVENT_IDX / NO_NOTIFY); publishes q's new buffers first. */
void vmmio_kick(const struct vmmio_dev *d, uint32_t idx, struct virtq *q);
/* Reads InterruptStatus and acknowledges what it had. */
uint32_t vmmio_ack_interrupts(const struct vmmio_dev *d);
uint8_t vmmio_config8(const struct vmmio_dev *d, uint32_t off);
uint32_t vmmio_config32(const struct vmmio_dev *d, uint32_t off);
uint64_t vmmio_config64(const struct vmmio_dev *d, uint32_t off);

#endif

/* Finding virtio-mmio windows: LNRO0005 devices in the ACPI DSDT, or virtio_mmio.device= on the command line. */
#ifndef VMMSHARP_GUEST_DISCOVER_H
#define VMMSHARP_GUEST_DISCOVER_H

#include <stdint.h>

struct virtio_slot {
    uint64_t base;
    uint32_t size;
    uint32_t gsi;
};

/* Walks RSDP -> XSDT (or RSDT) -> FADT -> DSDT (checksums checked) and returns how many LNRO0005 devices with a
 * Memory32Fixed window and an interrupt it found (at most max), or -1 when the tables are unusable. */
int acpi_find_virtio_mmio(uint32_t rsdp, struct virtio_slot *out, int max);
/* Parses every "virtio_mmio.device=SIZE@ADDR:IRQ" word (SIZE with an optional K/M suffix). */
int cmdline_find_virtio_mmio(const char *cmdline, struct virtio_slot *out, int max);

#endif

/* The virtio test guest (PVH): finds virtio-mmio devices in the ACPI DSDT it is given (or on its command line with
 * discover=cmdline) and runs the tests its command line names: blk, net, rng, vsock, hostile=CASE. One fact per line on
 * COM1, then DONE and debug-exit 0, or FAIL lines and debug-exit 3. */
#include "../common/rt.h"
#include "discover.h"
#include "dma.h"
#include "guest.h"

struct hvm_start_info {
    uint32_t magic, version, flags, nr_modules;
    uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
    uint32_t memmap_entries, reserved;
};
struct hvm_memmap_table_entry {
    uint64_t addr, size;
    uint32_t type, reserved;
};

/* Rings and buffers go above the image (loaded at 1 MiB) and its stack. */
#define DMA_START 0x400000u

int failures;
static struct guest g;

void fail(const char *what)
{
    print("FAIL ");
    print(what);
    print("\n");
    failures++;
}

struct vmmio_dev *find_device(struct guest *gs, uint32_t id, int index)
{
    for (int i = 0; i < gs->ndev; i++)
        if (gs->dev[i].device_id == id && index-- == 0)
            return &gs->dev[i];
    return 0;
}

void print_bytes_hex(const uint8_t *p, uint32_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (uint32_t i = 0; i < n; i++) {
        serial_putc(hex[p[i] >> 4]);
        serial_putc(hex[p[i] & 15]);
    }
}

/* The value of "key=" as a word of the command line, copied into buf (NUL-terminated), or 0. */
static const char *word_value(const char *key, char *buf, uint32_t size)
{
    const char *s = (const char *)(uintptr_t)g.cmdline;
    uint32_t klen = 0;
    while (key[klen])
        klen++;
    for (uint32_t i = 0; s && s[i] && i < 4096u; i++) {
        if (i && s[i - 1] != ' ')
            continue;
        uint32_t k = 0;
        while (k < klen && s[i + k] == key[k])
            k++;
        if (k < klen || s[i + k] != '=')
            continue;
        uint32_t n = 0;
        for (const char *v = s + i + k + 1; *v && *v != ' ' && n + 1 < size; v++)
            buf[n++] = *v;
        buf[n] = 0;
        return buf;
    }
    return 0;
}

static void discover(const struct hvm_start_info *si)
{
    struct virtio_slot slots[MAX_DEVICES];
    int from_cmdline = has_word(g.cmdline, "discover=cmdline");
    int n = from_cmdline ? cmdline_find_virtio_mmio((const char *)(uintptr_t)g.cmdline, slots, MAX_DEVICES)
                         : acpi_find_virtio_mmio((uint32_t)si->rsdp_paddr, slots, MAX_DEVICES);
    print("VIRTIO discover=");
    print(from_cmdline ? "cmdline" : "acpi");
    print(" found=");
    print_dec(n < 0 ? 0 : (uint32_t)n);
    print("\n");
    if (n < 0) {
        fail("acpi tables unusable");
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        struct vmmio_dev *d = &g.dev[g.ndev];
        int ok = slots[i].base < 0x100000000ull && vmmio_probe(d, (uintptr_t)slots[i].base, slots[i].gsi) == 0;
        print("VIRTIO dev ");
        print_dec((uint32_t)i);
        print(" base=");
        print_hex(slots[i].base);
        print(" size=");
        print_hex(slots[i].size);
        print(" gsi=");
        print_dec(slots[i].gsi);
        print(" id=");
        print_dec(ok ? d->device_id : 0);
        print("\n");
        if (ok)
            g.ndev++;
    }
}

void pvh_main(const struct hvm_start_info *si);

void pvh_main(const struct hvm_start_info *si)
{
    serial_init();
    if (si->magic != 0x336ec578u) {
        print("FAIL magic\n");
        debug_exit(EXIT_BAD_MAGIC);
    }
    g.cmdline = (uint32_t)si->cmdline_paddr;
    for (uint32_t i = 0; si->version >= 1 && i < si->memmap_entries && i < 64; i++) {
        const struct hvm_memmap_table_entry *e =
            (const struct hvm_memmap_table_entry *)(uintptr_t)(si->memmap_paddr + i * sizeof *e);
        if (e->type == 1 && e->addr + e->size > g.ram_end)
            g.ram_end = e->addr + e->size;
    }
    uint64_t dma_end = g.ram_end > 0xc0000000ull ? 0xc0000000ull : g.ram_end;
    print("VIRTIO cmdline=");
    print_cstr_at(g.cmdline, 1024);
    print("\n");
    print("VIRTIO ram_end=");
    print_hex(g.ram_end);
    print("\n");
    dma_init(DMA_START, (uintptr_t)dma_end);
    discover(si);

    char name[32];
    if (word_value("hostile", name, sizeof name))
        test_hostile(&g, name);
    if (has_word(g.cmdline, "blk"))
        test_blk(&g);
    if (has_word(g.cmdline, "rng"))
        test_rng(&g);
    if (has_word(g.cmdline, "net"))
        test_net(&g);
    if (has_word(g.cmdline, "vsock"))
        test_vsock(&g, 1, 1);
    else if (word_value("vsock", name, sizeof name))
        test_vsock(&g, name[0] == 'o', name[0] == 'i');
    if (failures) {
        print("FAILURES ");
        print_dec((uint32_t)failures);
        print("\n");
        debug_exit(EXIT_VIRTIO_FAIL);
    }
    print("DONE\n");
    debug_exit(EXIT_OK);
}

/* PVH test kernel: prints the hvm_start_info it was handed, one fact per line.
 * Layout: xen/include/public/arch-x86/hvm/start_info.h (version 1 adds the memory map). */
#include "../common/rt.h"

struct hvm_start_info {
    uint32_t magic; /* 0x336ec578 */
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr; /* version >= 1 */
    uint32_t memmap_entries;
    uint32_t reserved;
};
struct hvm_modlist_entry {
    uint64_t paddr, size, cmdline_paddr, reserved;
};
struct hvm_memmap_table_entry {
    uint64_t addr, size;
    uint32_t type, reserved;
};
_Static_assert(sizeof(struct hvm_start_info) == 56, "start_info layout");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "modlist layout");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "memmap layout");

void pvh_main(const struct hvm_start_info *si);

void pvh_main(const struct hvm_start_info *si)
{
    serial_init();
    print("PVH magic=");
    print_hex32_bare(si->magic);
    print(" version=");
    print_dec(si->version);
    print(" flags=");
    print_hex(si->flags);
    print(" rsdp=");
    print_hex(si->rsdp_paddr);
    print("\n");
    if (si->magic != 0x336ec578u) {
        print("FAIL magic\n");
        debug_exit(EXIT_BAD_MAGIC);
    }
    print("PVH cmdline=");
    print_cstr_at((uint32_t)si->cmdline_paddr, 1024);
    print("\n");
    print("PVH mods=");
    print_dec(si->nr_modules);
    print("\n");
    for (uint32_t i = 0; i < si->nr_modules && i < 16; i++) {
        const struct hvm_modlist_entry *m =
            (const struct hvm_modlist_entry *)(uintptr_t)(si->modlist_paddr + i * sizeof(struct hvm_modlist_entry));
        const uint8_t *p = (const uint8_t *)(uintptr_t)m->paddr;
        uint32_t size = (uint32_t)m->size;
        print("PVH mod");
        print_dec(i);
        print(" paddr=");
        print_hex(m->paddr);
        print(" size=");
        print_hex(m->size);
        print(" sum=");
        print_hex32_bare(fnv1a32(p, size));
        print(" first=");
        print_first_bytes(p, size);
        print("\n");
        print("PVH mod");
        print_dec(i);
        print(" cmdline=");
        print_cstr_at((uint32_t)m->cmdline_paddr, 1024);
        print("\n");
    }
    if (si->version >= 1) {
        for (uint32_t i = 0; i < si->memmap_entries && i < 64; i++) {
            const struct hvm_memmap_table_entry *e =
                (const struct hvm_memmap_table_entry *)(uintptr_t)(si->memmap_paddr + i * sizeof(struct hvm_memmap_table_entry));
            print("PVH memmap ");
            print_dec(i);
            print(" addr=");
            print_hex(e->addr);
            print(" size=");
            print_hex(e->size);
            print(" type=");
            print_dec(e->type);
            print("\n");
        }
    }
    fwcfg_report();
    print("DONE\n");
    debug_exit(EXIT_OK);
}

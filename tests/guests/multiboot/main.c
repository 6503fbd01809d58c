/* Multiboot v1 test kernel: prints what the loader handed over, one fact per line. */
#include "../common/rt.h"
#include "../common/smp.h"

struct mb_info {
    uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length, mmap_addr;
};
struct mb_module {
    uint32_t mod_start, mod_end, string, reserved;
};
struct mb_mmap {
    uint32_t size;
    uint64_t base, len;
    uint32_t type;
} __attribute__((packed));

void mb_main(uint32_t magic, const struct mb_info *mbi);

void mb_main(uint32_t magic, const struct mb_info *mbi)
{
    serial_init();
    print("MB magic=");
    print_hex32_bare(magic);
    print("\n");
    if (magic != 0x2badb002u) {
        print("FAIL magic\n");
        debug_exit(EXIT_BAD_MAGIC);
    }
    uint32_t f = mbi->flags;
    print("MB flags=");
    print_hex(f);
    print("\n");
    if (f & (1u << 0)) {
        print("MB mem_lower=");
        print_dec(mbi->mem_lower);
        print(" mem_upper=");
        print_dec(mbi->mem_upper);
        print("\n");
    }
    if (f & (1u << 6)) {
        uint32_t off = 0, i = 0;
        while (off + sizeof(struct mb_mmap) <= mbi->mmap_length && i < 64) {
            const struct mb_mmap *e = (const struct mb_mmap *)(uintptr_t)(mbi->mmap_addr + off);
            print("MB mmap ");
            print_dec(i++);
            print(" base=");
            print_hex(e->base);
            print(" len=");
            print_hex(e->len);
            print(" type=");
            print_dec(e->type);
            print("\n");
            off += e->size + 4;
        }
    }
    uint32_t cmdline = (f & (1u << 2)) ? mbi->cmdline : 0;
    print("MB cmdline=");
    print_cstr_at(cmdline, 1024);
    print("\n");
    uint32_t mods = (f & (1u << 3)) ? mbi->mods_count : 0;
    print("MB mods=");
    print_dec(mods);
    print("\n");
    for (uint32_t i = 0; i < mods && i < 16; i++) {
        const struct mb_module *m = (const struct mb_module *)(uintptr_t)(mbi->mods_addr + i * sizeof(struct mb_module));
        const uint8_t *p = (const uint8_t *)(uintptr_t)m->mod_start;
        uint32_t size = m->mod_end - m->mod_start;
        print("MB mod");
        print_dec(i);
        print(" start=");
        print_hex(m->mod_start);
        print(" end=");
        print_hex(m->mod_end);
        print(" size=");
        print_hex(size);
        print(" sum=");
        print_hex32_bare(fnv1a32(p, size));
        print(" first=");
        print_first_bytes(p, size);
        print("\n");
        print("MB mod");
        print_dec(i);
        print(" cmdline=");
        print_cstr_at(m->string, 1024);
        print("\n");
    }

    uint32_t expected = fwcfg_report();
    expected = parse_uint_option(cmdline, "cpus", expected);
    uint32_t cpus = 1;
    if (!has_word(cmdline, "nosmp") && expected != 1)
        cpus = smp_start_aps(expected);
    print("SMP cpus=");
    print_dec(cpus);
    print("\n");
    if (expected && cpus != expected) {
        print("FAIL smp expected=");
        print_dec(expected);
        print("\n");
        debug_exit(EXIT_SMP);
    }
    print("DONE\n");
    debug_exit(EXIT_OK);
}

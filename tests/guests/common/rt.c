#include "rt.h"

#define COM1 0x3f8

void serial_init(void)
{
    outb(COM1 + 1, 0x00); /* IER: no interrupts */
    outb(COM1 + 3, 0x80); /* LCR: DLAB */
    outb(COM1 + 0, 0x01); /* DLL: 115200 baud */
    outb(COM1 + 1, 0x00); /* DLM */
    outb(COM1 + 3, 0x03); /* LCR: 8N1 */
}

void serial_putc(char c)
{
    for (uint32_t i = 0; i < 100000u && !(inb(COM1 + 5) & 0x20); i++)
        cpu_relax();
    outb(COM1, (uint8_t)c);
}

void print(const char *s)
{
    while (*s)
        serial_putc(*s++);
}

void print_n(const char *s, uint32_t max)
{
    for (uint32_t i = 0; i < max && s[i]; i++)
        serial_putc(s[i]);
}

static const char hexdigits[] = "0123456789abcdef";

void print_hex(uint64_t v)
{
    char buf[16];
    int n = 0;
    print("0x");
    do {
        buf[n++] = hexdigits[v & 0xf];
        v >>= 4;
    } while (v);
    while (n)
        serial_putc(buf[--n]);
}

void print_hex32_bare(uint32_t v)
{
    for (int s = 28; s >= 0; s -= 4)
        serial_putc(hexdigits[(v >> s) & 0xf]);
}

void print_dec(uint32_t v)
{
    char buf[10];
    int n = 0;
    do {
        buf[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        serial_putc(buf[--n]);
}

void print_cstr_at(uint32_t paddr, uint32_t max)
{
    if (paddr)
        print_n((const char *)(uintptr_t)paddr, max);
}

void print_first_bytes(const uint8_t *p, uint32_t n)
{
    if (n > 16)
        n = 16;
    for (uint32_t i = 0; i < n; i++)
        serial_putc(p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '.');
}

uint32_t fnv1a32(const uint8_t *p, uint32_t n)
{
    uint32_t h = 0x811c9dc5u;
    for (uint32_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x01000193u;
    }
    return h;
}

/* Finds "key" at the start of a blank-separated word; returns a pointer past it or 0. */
static const char *find_word(uint32_t cmdline_paddr, const char *key, int whole)
{
    const char *s = (const char *)(uintptr_t)cmdline_paddr;
    if (!s)
        return 0;
    for (uint32_t i = 0; i < 4096u && s[i]; i++) {
        if (i && s[i - 1] != ' ')
            continue;
        uint32_t k = 0;
        while (key[k] && s[i + k] == key[k])
            k++;
        if (!key[k] && (!whole || s[i + k] == ' ' || s[i + k] == 0))
            return s + i + k;
    }
    return 0;
}

uint32_t parse_uint_option(uint32_t cmdline_paddr, const char *key, uint32_t fallback)
{
    const char *p = find_word(cmdline_paddr, key, 0);
    if (!p || *p != '=' || p[1] < '0' || p[1] > '9')
        return fallback;
    uint32_t v = 0;
    for (p++; *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (uint32_t)(*p - '0');
    return v;
}

int has_word(uint32_t cmdline_paddr, const char *word) { return find_word(cmdline_paddr, word, 1) != 0; }

void debug_exit(uint8_t v)
{
    outb(0xf4, v);
    for (;;) /* no isa-debug-exit device: park the CPU */
        __asm__ volatile("cli; hlt");
}

void fwcfg_read(uint16_t key, void *buf, uint32_t len)
{
    uint8_t *b = buf;
    outw(0x510, key);
    for (uint32_t i = 0; i < len; i++)
        b[i] = inb(0x511);
}

int fwcfg_present(void)
{
    char sig[4];
    fwcfg_read(FW_CFG_SIGNATURE, sig, 4);
    return sig[0] == 'Q' && sig[1] == 'E' && sig[2] == 'M' && sig[3] == 'U';
}

uint32_t fwcfg_report(void)
{
    if (!fwcfg_present()) {
        print("FWCFG sig=none\n");
        return 0;
    }
    uint16_t cpus = 0;
    uint64_t ram = 0;
    uint32_t cmdline_size = 0, kernel_size = 0, initrd_size = 0;
    fwcfg_read(FW_CFG_NB_CPUS, &cpus, sizeof cpus);
    fwcfg_read(FW_CFG_RAM_SIZE, &ram, sizeof ram);
    fwcfg_read(FW_CFG_CMDLINE_SIZE, &cmdline_size, sizeof cmdline_size);
    fwcfg_read(FW_CFG_KERNEL_SIZE, &kernel_size, sizeof kernel_size);
    fwcfg_read(FW_CFG_INITRD_SIZE, &initrd_size, sizeof initrd_size);
    print("FWCFG sig=QEMU cpus=");
    print_dec(cpus);
    print(" ram=");
    print_hex(ram);
    print(" cmdline_size=");
    print_hex(cmdline_size);
    print(" kernel_size=");
    print_hex(kernel_size);
    print(" initrd_size=");
    print_hex(initrd_size);
    print("\n");
    if (cmdline_size) {
        char line[256];
        uint32_t n = cmdline_size < sizeof line ? cmdline_size : sizeof line;
        fwcfg_read(FW_CFG_CMDLINE_DATA, line, n);
        print("FWCFG cmdline=");
        print_n(line, n);
        print("\n");
    }
    return cpus;
}

/* Freestanding runtime shared by the VmmSharp test guests (32-bit, CPL0, paging off). */
#ifndef VMMSHARP_GUEST_RT_H
#define VMMSHARP_GUEST_RT_H

#include <stddef.h>
#include <stdint.h>

/* Debug-exit values (QEMU isa-debug-exit turns v into process status (v << 1) | 1). */
#define EXIT_OK 0u        /* status 1: every self-check passed */
#define EXIT_BAD_MAGIC 1u /* status 3: boot magic (EAX / start_info.magic) wrong */
#define EXIT_SMP 2u       /* status 5: fewer CPUs checked in than fw_cfg / cpus= announced */

/* fw_cfg keys (legacy I/O interface: selector 0x510, data 0x511). */
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NB_CPUS 0x05
#define FW_CFG_KERNEL_SIZE 0x08
#define FW_CFG_INITRD_SIZE 0x0b
#define FW_CFG_CMDLINE_SIZE 0x14
#define FW_CFG_CMDLINE_DATA 0x15

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint16_t inw(uint16_t port)
{
    uint16_t v;
    __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

void serial_init(void);
void serial_putc(char c);
void print(const char *s);
void print_n(const char *s, uint32_t max); /* at most max bytes, stops at NUL */
void print_hex(uint64_t v);               /* "0x" + minimal lowercase hex digits */
void print_hex32_bare(uint32_t v);        /* exactly 8 lowercase hex digits, no prefix */
void print_dec(uint32_t v);
void print_cstr_at(uint32_t paddr, uint32_t max); /* NUL-terminated string at a physical address, "" if 0 */
void print_first_bytes(const uint8_t *p, uint32_t n); /* up to 16 bytes, non-printables as '.' */

uint32_t fnv1a32(const uint8_t *p, uint32_t n);
uint32_t parse_uint_option(uint32_t cmdline_paddr, const char *key, uint32_t fallback); /* "key=N" */
int has_word(uint32_t cmdline_paddr, const char *word);

__attribute__((noreturn)) void debug_exit(uint8_t v);

int fwcfg_present(void);
void fwcfg_read(uint16_t key, void *buf, uint32_t len);
/* Prints the FWCFG line(s); returns FW_CFG_NB_CPUS, or 0 when there is no fw_cfg. */
uint32_t fwcfg_report(void);

#endif

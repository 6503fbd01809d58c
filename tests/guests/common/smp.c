#include "smp.h"
#include "rt.h"

extern const uint8_t ap_tramp_start[], ap_tramp_end[], ap_tramp_counter[];

static inline void lapic_write(uint32_t reg, uint32_t v) { *(volatile uint32_t *)(uintptr_t)(LAPIC_BASE + reg) = v; }
static inline uint32_t lapic_read(uint32_t reg) { return *(volatile uint32_t *)(uintptr_t)(LAPIC_BASE + reg); }

static void icr_send(uint32_t low)
{
    lapic_write(0x310, 0); /* destination field unused with a shorthand */
    lapic_write(0x300, low);
    for (uint32_t i = 0; i < 10000u && (lapic_read(0x300) & (1u << 12)); i++) /* delivery pending */
        cpu_relax();
}

static void short_delay(void)
{
    for (uint32_t i = 0; i < 1000u; i++)
        cpu_relax();
}

uint32_t smp_start_aps(uint32_t expected)
{
    uint8_t *dst = (uint8_t *)(uintptr_t)AP_TRAMPOLINE;
    uint32_t len = (uint32_t)(ap_tramp_end - ap_tramp_start);
    for (uint32_t i = 0; i < len; i++)
        dst[i] = ap_tramp_start[i];
    volatile uint32_t *counter = (volatile uint32_t *)(uintptr_t)(AP_TRAMPOLINE + (uint32_t)(ap_tramp_counter - ap_tramp_start));
    *counter = 0;

    lapic_write(0xf0, lapic_read(0xf0) | 0x100); /* SVR: APIC software enable */
    icr_send(0x000c4500);                         /* all-excluding-self, INIT, level assert */
    short_delay();
    for (int n = 0; n < 2; n++) {                 /* STARTUP twice, per the MP spec */
        icr_send(0x000c4600 | (AP_TRAMPOLINE >> 12));
        short_delay();
    }
    for (uint32_t i = 0; i < SMP_WAIT_BOUND; i++) {
        if (expected && *counter + 1 >= expected)
            break;
        cpu_relax();
    }
    return 1 + *counter;
}

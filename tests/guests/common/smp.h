#ifndef VMMSHARP_GUEST_SMP_H
#define VMMSHARP_GUEST_SMP_H
#include <stdint.h>

#define AP_TRAMPOLINE 0x8000u /* page-aligned, below 1 MiB: SIPI vector 0x08 */
#define LAPIC_BASE 0xfee00000u
#define SMP_WAIT_BOUND 300000u /* BSP polls at most this many times for the APs */

/* Starts the APs with INIT, SIPI, SIPI (all-excluding-self) and waits until
 * `expected - 1` APs have checked in (or the bound runs out when expected is 0).
 * Returns 1 + the number of APs that checked in. */
uint32_t smp_start_aps(uint32_t expected);
#endif

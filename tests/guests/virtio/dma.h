/* A bump allocator over a range of guest RAM for rings and buffers (identity-mapped, never freed). */
#ifndef VMMSHARP_GUEST_DMA_H
#define VMMSHARP_GUEST_DMA_H

#include <stdint.h>

void dma_init(uintptr_t start, uintptr_t end);
/* align: a power of two. Returns 0 when the range is used up. The memory is NOT cleared (fresh guest RAM is zero). */
void *dma_alloc(uint32_t bytes, uint32_t align);
/* Clears n bytes 32 bits at a time (a short loop: CPL0 code is emulated here). */
void dma_zero(void *p, uint32_t n);

#endif

#include "dma.h"

static uintptr_t next, limit;

void dma_init(uintptr_t start, uintptr_t end)
{
    next = start;
    limit = end;
}

void *dma_alloc(uint32_t bytes, uint32_t align)
{
    uintptr_t p = (next + align - 1) & ~(uintptr_t)(align - 1);
    if (p < next || p + bytes < p || p + bytes > limit)
        return 0;
    next = p + bytes;
    return (void *)p;
}

void dma_zero(void *p, uint32_t n)
{
    uint32_t words = n / 4;
    __asm__ volatile("rep stosl" : "+D"(p), "+c"(words) : "a"(0) : "memory");
    uint8_t *b = p;
    for (uint32_t i = 0; i < (n & 3u); i++)
        b[i] = 0;
}

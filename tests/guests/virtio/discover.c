#include "discover.h"

static int same(const uint8_t *a, const char *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (a[i] != (uint8_t)b[i])
            return 0;
    return 1;
}

static uint32_t rd32(const uint8_t *p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static int checksum_ok(const uint8_t *p, uint32_t n)
{
    uint8_t s = 0;
    for (uint32_t i = 0; i < n; i++)
        s = (uint8_t)(s + p[i]);
    return s == 0;
}

/* A system description table at addr with the given signature and a good checksum, or 0. Tables here are
 * below 4 GiB (paging off). */
static const uint8_t *table(uint64_t addr, const char *sig)
{
    if (!addr || addr >> 32)
        return 0;
    const uint8_t *t = (const uint8_t *)(uintptr_t)addr;
    uint32_t len = rd32(t + 4);
    if (!same(t, sig, 4) || len < 36 || len > (1u << 20) || !checksum_ok(t, len))
        return 0;
    return t;
}

/* AML PkgLength at p: the package's length (counting the encoding) and, in *bytes, the encoding's size. */
static uint32_t pkg_length(const uint8_t *p, uint32_t *bytes)
{
    uint32_t extra = p[0] >> 6;
    *bytes = extra + 1;
    if (!extra)
        return p[0] & 0x3f;
    uint32_t v = p[0] & 0x0f;
    for (uint32_t i = 0; i < extra; i++)
        v |= (uint32_t)p[1 + i] << (4 + 8 * i);
    return v;
}

/* Reads the _CRS ResourceTemplate buffer at p (after "_CRS"): Memory32Fixed and an (extended) interrupt. */
static int parse_crs(const uint8_t *p, const uint8_t *end, struct virtio_slot *s)
{
    if (p >= end || *p != 0x11) /* BufferOp */
        return 0;
    uint32_t nb, plen = pkg_length(p + 1, &nb);
    const uint8_t *body = p + 1 + nb, *bend = p + 1 + plen;
    if (bend > end || body >= bend)
        return 0;
    /* The buffer size: a ByteConst, WordConst or DWordConst. */
    if (*body == 0x0a)
        body += 2;
    else if (*body == 0x0b)
        body += 3;
    else if (*body == 0x0c)
        body += 5;
    else
        return 0;
    int have_mem = 0, have_irq = 0;
    while (body < bend) {
        uint8_t tag = *body;
        if (tag == 0x79) /* end tag */
            break;
        if (tag & 0x80) { /* large item */
            if (body + 3 > bend)
                return 0;
            uint32_t len = body[1] | (uint32_t)body[2] << 8;
            const uint8_t *d = body + 3;
            if (d + len > bend)
                return 0;
            if (tag == 0x86 && len == 9) { /* Memory32Fixed */
                s->base = rd32(d + 1);
                s->size = rd32(d + 5);
                have_mem = 1;
            } else if (tag == 0x89 && len >= 6 && d[1] >= 1) { /* Extended Interrupt */
                s->gsi = rd32(d + 2);
                have_irq = 1;
            }
            body = d + len;
        } else { /* small item */
            uint32_t len = tag & 7u;
            if ((tag >> 3) == 0x04 && len >= 2) { /* IRQ descriptor: a mask */
                uint32_t mask = body[1] | (uint32_t)body[2] << 8;
                for (uint32_t i = 0; i < 16; i++)
                    if (mask & (1u << i)) {
                        s->gsi = i;
                        have_irq = 1;
                        break;
                    }
            }
            body += 1 + len;
        }
    }
    return have_mem && have_irq;
}

static const uint8_t *find(const uint8_t *p, const uint8_t *end, const char *what, uint32_t n)
{
    for (; p + n <= end; p++)
        if (same(p, what, n))
            return p;
    return 0;
}

int acpi_find_virtio_mmio(uint32_t rsdp_addr, struct virtio_slot *out, int max)
{
    const uint8_t *rsdp = (const uint8_t *)(uintptr_t)rsdp_addr;
    if (!rsdp || !same(rsdp, "RSD PTR ", 8) || !checksum_ok(rsdp, 20))
        return -1;
    const uint8_t *fadt = 0;
    const uint8_t *xsdt = rsdp[15] >= 2 ? table(rd32(rsdp + 24) | (uint64_t)rd32(rsdp + 28) << 32, "XSDT") : 0;
    if (xsdt) {
        for (uint32_t off = 36; off + 8 <= rd32(xsdt + 4) && !fadt; off += 8)
            fadt = table(rd32(xsdt + off) | (uint64_t)rd32(xsdt + off + 4) << 32, "FACP");
    } else {
        const uint8_t *rsdt = table(rd32(rsdp + 16), "RSDT");
        for (uint32_t off = 36; rsdt && off + 4 <= rd32(rsdt + 4) && !fadt; off += 4)
            fadt = table(rd32(rsdt + off), "FACP");
    }
    if (!fadt)
        return -1;
    uint32_t flen = rd32(fadt + 4);
    uint64_t dsdt_addr = flen >= 148 ? (rd32(fadt + 140) | (uint64_t)rd32(fadt + 144) << 32) : 0;
    if (!dsdt_addr)
        dsdt_addr = rd32(fadt + 40);
    const uint8_t *dsdt = table(dsdt_addr, "DSDT");
    if (!dsdt)
        return -1;
    const uint8_t *p = dsdt + 36, *end = dsdt + rd32(dsdt + 4);
    int n = 0;
    /* Each Device (ExtOp 0x5b 0x82, PkgLength, NameSeg): look inside it for _HID "LNRO0005" and its _CRS. */
    for (; p + 2 < end && n < max; p++) {
        if (p[0] != 0x5b || p[1] != 0x82)
            continue;
        uint32_t nb, plen = pkg_length(p + 2, &nb);
        const uint8_t *body = p + 2, *dend = p + 2 + plen;
        if (dend > end || plen < nb + 4)
            continue;
        if (!find(body, dend, "_HID\x0dLNRO0005", 13))
            continue;
        const uint8_t *crs = find(body, dend, "_CRS", 4);
        struct virtio_slot s = {0, 0, 0};
        if (crs && parse_crs(crs + 4, dend, &s))
            out[n++] = s;
        p = dend - 1;
    }
    return n;
}

static const char *parse_num(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    int any = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        for (s += 2;; s++, any = 1) {
            char c = *s;
            uint32_t d = c >= '0' && c <= '9' ? (uint32_t)(c - '0')
                         : c >= 'a' && c <= 'f' ? (uint32_t)(c - 'a' + 10)
                         : c >= 'A' && c <= 'F' ? (uint32_t)(c - 'A' + 10)
                                                : 99u;
            if (d == 99u)
                break;
            x = x << 4 | d;
        }
    } else {
        for (; *s >= '0' && *s <= '9'; s++, any = 1)
            x = x * 10 + (uint32_t)(*s - '0');
    }
    *v = x;
    return any ? s : 0;
}

int cmdline_find_virtio_mmio(const char *cmdline, struct virtio_slot *out, int max)
{
    static const char key[] = "virtio_mmio.device=";
    int n = 0;
    if (!cmdline)
        return 0;
    for (const char *s = cmdline; *s && n < max; s++) {
        if ((s != cmdline && s[-1] != ' ') || !same((const uint8_t *)s, key, sizeof key - 1))
            continue;
        uint64_t size, base, irq;
        const char *p = parse_num(s + sizeof key - 1, &size);
        if (!p)
            continue;
        if (*p == 'K' || *p == 'k')
            size <<= 10, p++;
        else if (*p == 'M' || *p == 'm')
            size <<= 20, p++;
        if (*p++ != '@' || !(p = parse_num(p, &base)) || *p++ != ':' || !(p = parse_num(p, &irq)))
            continue;
        out[n].base = base;
        out[n].size = (uint32_t)size;
        out[n].gsi = (uint32_t)irq;
        n++;
    }
    return n;
}

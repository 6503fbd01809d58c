/* virtio-bench: a virtio-mmio driver that does as little as it can per request, so that a benchmark measures the
 * device side. Runs at CPL3 (natively, even on PVM) with interrupts off: it never takes an interrupt, it polls the
 * used ring, and it re-submits completed chains by writing their head into the available ring and bumping its index.
 *
 * Command line (PVH start_info): bench=blk|net, count=N (requests or frames per phase, default 50000), and the
 * devices as virtio_mmio.device=SIZE@ADDR:IRQ (vmm gives them; QEMU microvm with ACPI off too); without any, the
 * windows of vmm (0xd0000000 + 4 KiB * i) and of QEMU microvm (0xfeb00000 + 512 * i) are probed.
 *
 * Output, one line each: "BENCH <test> begin", "BENCH <test> end count=N errors=E"; the host times the lines.
 * blk tests: seqread randread seqwrite randwrite (4 KiB each, every queue entry in flight, indirect chains of
 * header, data, status). net tests: tx (60-byte frames to the TAP), rx (frames from the TAP; "BENCH rx ready" once
 * the receive buffers are posted). Then "BENCH done" and debug-exit 0 (QEMU status 1); a failure prints "FAIL ..."
 * and debug-exits 1 (status 3). */
#include <stddef.h>
#include <stdint.h>

/* ---- CPL3 runtime: port I/O (IOPL 3), serial, debug exit ---- */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
static inline void pause(void) { __asm__ volatile("pause" ::: "memory"); }

void *memset(void *d, int c, size_t n)
{
    uint8_t *p = d;
    while (n--)
        *p++ = (uint8_t)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *p = d;
    const uint8_t *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

static void putc_(char c) { outb(0x3f8, (uint8_t)c); } /* THR is always ready on a virtual UART: no LSR poll */

static void print(const char *s)
{
    while (*s)
        putc_(*s++);
}

static void print_dec(uint64_t v)
{
    char b[20];
    int n = 0;
    do {
        b[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        putc_(b[--n]);
}

static void print_hex(uint64_t v)
{
    char b[16];
    int n = 0;
    print("0x");
    do {
        b[n++] = "0123456789abcdef"[v & 0xf];
        v >>= 4;
    } while (v);
    while (n)
        putc_(b[--n]);
}

__attribute__((noreturn)) static void finish(uint8_t v)
{
    outb(0xf4, v);
    for (;;)
        pause();
}

__attribute__((noreturn)) static void fail(const char *what)
{
    print("FAIL ");
    print(what);
    print("\n");
    finish(1);
}

/* ---- command line ---- */

static const char *cmdline = "";

static const char *find_key(const char *key, const char *from)
{
    for (const char *p = from; *p; p++) {
        if (p != cmdline && p[-1] != ' ')
            continue;
        const char *k = key, *q = p;
        while (*k && *q == *k)
            k++, q++;
        if (!*k)
            return q;
    }
    return 0;
}

static uint64_t parse_num(const char **pp)
{
    const char *p = *pp;
    uint64_t v = 0;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        for (p += 2;; p++) {
            char c = *p;
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0)
                break;
            v = v * 16 + (uint64_t)d;
        }
    } else {
        for (; *p >= '0' && *p <= '9'; p++)
            v = v * 10 + (uint64_t)(*p - '0');
    }
    if (*p == 'K' || *p == 'k')
        v <<= 10, p++;
    *pp = p;
    return v;
}

static uint64_t option(const char *key, uint64_t fallback)
{
    const char *p = find_key(key, cmdline);
    return p ? parse_num(&p) : fallback;
}

static int option_is(const char *key, const char *value)
{
    const char *p = find_key(key, cmdline);
    if (!p)
        return 0;
    while (*value && *p == *value)
        value++, p++;
    return !*value && (*p == 0 || *p == ' ');
}

/* ---- virtio-mmio (version 2) ---- */

enum {
    R_MAGIC = 0x000, R_VERSION = 0x004, R_DEVICE_ID = 0x008, R_DEVICE_FEATURES = 0x010, R_DEVICE_FEATURES_SEL = 0x014,
    R_DRIVER_FEATURES = 0x020, R_DRIVER_FEATURES_SEL = 0x024, R_QUEUE_SEL = 0x030, R_QUEUE_NUM_MAX = 0x034,
    R_QUEUE_NUM = 0x038, R_QUEUE_READY = 0x044, R_QUEUE_NOTIFY = 0x050, R_STATUS = 0x070, R_QUEUE_DESC_LOW = 0x080,
    R_QUEUE_DESC_HIGH = 0x084, R_QUEUE_DRIVER_LOW = 0x090, R_QUEUE_DRIVER_HIGH = 0x094, R_QUEUE_DEVICE_LOW = 0x0a0,
    R_QUEUE_DEVICE_HIGH = 0x0a4, R_CONFIG = 0x100,
};
enum { S_ACK = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8, S_NEEDS_RESET = 64, S_FAILED = 128 };
enum { D_NEXT = 1, D_WRITE = 2, D_INDIRECT = 4 };
#define F_INDIRECT_DESC (1ull << 28)
#define F_EVENT_IDX (1ull << 29)
#define F_BLK_FLUSH (1ull << 9) /* accepted so that both devices cache writes (without it QEMU writes through) */
#define F_VERSION_1 (1ull << 32)
#define QMAX 256

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};
struct avail {
    uint16_t flags, idx, ring[QMAX + 1]; /* + used_event (EVENT_IDX) after the queue's entries */
};
struct used_elem {
    uint32_t id, len;
};
struct used {
    uint16_t flags, idx;
    struct used_elem ring[QMAX + 1]; /* + avail_event (EVENT_IDX) after the queue's entries */
};
struct queue {
    struct desc desc[QMAX] __attribute__((aligned(4096)));
    struct avail avail __attribute__((aligned(4096)));
    struct used used __attribute__((aligned(4096)));
    uint16_t size, seen; /* entries; the used index consumed so far */
    uint16_t submitted;  /* the available index */
    uint16_t published;  /* the available index the device was last shown */
    uint16_t index;      /* the queue number */
    int event_idx;       /* VIRTIO_RING_F_EVENT_IDX negotiated */
};

static uint64_t negotiated;

static volatile uint32_t *reg(uint64_t base, uint32_t off) { return (volatile uint32_t *)(uintptr_t)(base + off); }
static uint32_t rd(uint64_t base, uint32_t off) { return *reg(base, off); }
static void wr(uint64_t base, uint32_t off, uint32_t v) { *reg(base, off) = v; }

static int probe(uint64_t base, uint32_t id) { return rd(base, R_MAGIC) == 0x74726976 && rd(base, R_DEVICE_ID) == id; }

/* The first virtio device with this id: from the command line, else by probing the known windows. */
static uint64_t find_device(uint32_t id)
{
    for (const char *p = cmdline; (p = find_key("virtio_mmio.device=", p)) != 0;) {
        parse_num(&p); /* size */
        if (*p++ != '@')
            continue;
        uint64_t base = parse_num(&p);
        if (probe(base, id))
            return base;
    }
    for (uint64_t i = 0; i < 8; i++)
        if (probe(0xd0000000ull + 0x1000 * i, id))
            return 0xd0000000ull + 0x1000 * i;
    for (uint64_t i = 0; i < 32; i++)
        if (probe(0xfeb00000ull + 0x200 * i, id))
            return 0xfeb00000ull + 0x200 * i;
    return 0;
}

/* Starts the handshake; accepts want (which the device must offer) and EVENT_IDX if it offers that too. */
static void device_start(uint64_t base, uint64_t want)
{
    if (rd(base, R_VERSION) != 2)
        fail("virtio-mmio version is not 2 (QEMU: -global virtio-mmio.force-legacy=false)");
    wr(base, R_STATUS, 0);
    wr(base, R_STATUS, S_ACK | S_DRIVER);
    wr(base, R_DEVICE_FEATURES_SEL, 0);
    uint64_t offered = rd(base, R_DEVICE_FEATURES);
    wr(base, R_DEVICE_FEATURES_SEL, 1);
    offered |= (uint64_t)rd(base, R_DEVICE_FEATURES) << 32;
    if ((offered & want) != want)
        fail("the device does not offer VERSION_1 (and INDIRECT_DESC and FLUSH for blk)");
    want |= offered & F_EVENT_IDX; /* as a real driver: notifications only when the device asks for them */
    negotiated = want;
    wr(base, R_DRIVER_FEATURES_SEL, 0);
    wr(base, R_DRIVER_FEATURES, (uint32_t)want);
    wr(base, R_DRIVER_FEATURES_SEL, 1);
    wr(base, R_DRIVER_FEATURES, (uint32_t)(want >> 32));
    wr(base, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    if (!(rd(base, R_STATUS) & S_FEATURES_OK))
        fail("FEATURES_OK refused");
}

static void queue_setup(uint64_t base, struct queue *q, uint16_t index)
{
    wr(base, R_QUEUE_SEL, index);
    uint32_t max = rd(base, R_QUEUE_NUM_MAX);
    if (max == 0)
        fail("queue not available");
    q->size = (uint16_t)(max < QMAX ? max : QMAX);
    q->index = index;
    q->event_idx = (negotiated & F_EVENT_IDX) != 0;
    q->avail.flags = q->event_idx ? 0 : 1; /* VIRTQ_AVAIL_F_NO_INTERRUPT: the driver polls */
    q->avail.ring[q->size] = 0x8000;        /* used_event: far ahead, so no interrupt */
    wr(base, R_QUEUE_NUM, q->size);
    uint64_t d = (uintptr_t)q->desc, a = (uintptr_t)&q->avail, u = (uintptr_t)&q->used;
    wr(base, R_QUEUE_DESC_LOW, (uint32_t)d);
    wr(base, R_QUEUE_DESC_HIGH, (uint32_t)(d >> 32));
    wr(base, R_QUEUE_DRIVER_LOW, (uint32_t)a);
    wr(base, R_QUEUE_DRIVER_HIGH, (uint32_t)(a >> 32));
    wr(base, R_QUEUE_DEVICE_LOW, (uint32_t)u);
    wr(base, R_QUEUE_DEVICE_HIGH, (uint32_t)(u >> 32));
    wr(base, R_QUEUE_READY, 1);
}

static void device_ready(uint64_t base)
{
    wr(base, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    if (rd(base, R_STATUS) & (S_NEEDS_RESET | S_FAILED))
        fail("the device refused DRIVER_OK");
}

/* Shows the device the new available index, and notifies it if it asked to be (avail_event or NO_NOTIFY). */
static void publish(uint64_t base, struct queue *q)
{
    uint16_t old = q->published, now = q->submitted;
    q->published = now;
    __atomic_store_n(&q->avail.idx, now, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    int notify;
    if (q->event_idx) {
        uint16_t event = __atomic_load_n((uint16_t *)&q->used.ring[q->size], __ATOMIC_ACQUIRE);
        notify = (uint16_t)(now - event - 1) < (uint16_t)(now - old);
    } else {
        notify = !(__atomic_load_n(&q->used.flags, __ATOMIC_ACQUIRE) & 1); /* VIRTQ_USED_F_NO_NOTIFY */
    }
    if (notify)
        wr(base, R_QUEUE_NOTIFY, q->index);
}

static void submit(struct queue *q, uint16_t head) { q->avail.ring[q->submitted++ % q->size] = head; }

/* Every completion: calls resubmit(head) (which may submit it again), then publishes once per batch. */
typedef int (*completion_fn)(uint16_t head, uint32_t len);

static uint64_t run_queue(uint64_t base, struct queue *q, uint64_t count, completion_fn done, uint64_t *errors)
{
    uint64_t completed = 0;
    uint64_t spins = 0;
    while (completed < count) {
        uint16_t u = __atomic_load_n(&q->used.idx, __ATOMIC_ACQUIRE);
        if (u == q->seen) {
            pause();
            if (++spins == 4000000000ull)
                fail("no completion for a long time");
            continue;
        }
        spins = 0;
        uint16_t before = q->submitted;
        while (q->seen != u) {
            struct used_elem e = q->used.ring[q->seen++ % q->size];
            if (e.id >= q->size)
                fail("used ring id out of range");
            completed++;
            *errors += (uint64_t)done((uint16_t)e.id, e.len);
        }
        q->avail.ring[q->size] = (uint16_t)(q->seen + 0x8000); /* used_event: keep interrupts off */
        if (q->submitted != before)
            publish(base, q);
    }
    return completed;
}

static void begin(const char *test)
{
    print("BENCH ");
    print(test);
    print(" begin\n");
}

static void end(const char *test, uint64_t count, uint64_t errors)
{
    print("BENCH ");
    print(test);
    print(" end count=");
    print_dec(count);
    print(" errors=");
    print_dec(errors);
    print("\n");
}

/* ---- virtio-blk ---- */

struct blk_header {
    uint32_t type, reserved;
    uint64_t sector;
};

static struct queue blkq;
static struct desc blk_tables[QMAX][3] __attribute__((aligned(16)));
static struct blk_header blk_headers[QMAX];
static volatile uint8_t blk_status[QMAX];
static uint8_t blk_data[QMAX][4096] __attribute__((aligned(4096)));

static uint64_t blk_blocks;   /* 4 KiB blocks on the disk */
static uint64_t blk_next;     /* the next sequential block */
static uint64_t blk_rng = 88172645463325252ull;
static int blk_random;
static uint64_t blk_left;     /* requests still to submit */

static uint64_t next_block(void)
{
    if (!blk_random) {
        uint64_t b = blk_next;
        blk_next = b + 1 == blk_blocks ? 0 : b + 1;
        return b;
    }
    blk_rng ^= blk_rng << 13;
    blk_rng ^= blk_rng >> 7;
    blk_rng ^= blk_rng << 17;
    return blk_rng % blk_blocks;
}

static int blk_done(uint16_t head, uint32_t len)
{
    int bad = blk_status[head] != 0 || len == 0;
    if (blk_left) {
        blk_left--;
        blk_status[head] = 0xff;
        blk_headers[head].sector = next_block() * 8;
        submit(&blkq, head);
    }
    return bad;
}

static void blk_phase(uint64_t base, const char *test, int write, int random, uint64_t count)
{
    uint16_t n = blkq.size;
    blk_random = random;
    blk_next = 0;
    for (uint16_t i = 0; i < n; i++) {
        blk_headers[i].type = write ? 1 : 0; /* VIRTIO_BLK_T_OUT : T_IN */
        blk_tables[i][1].flags = (uint16_t)(D_NEXT | (write ? 0 : D_WRITE));
    }
    uint64_t first = count < n ? count : n;
    blk_left = count - first;
    begin(test);
    for (uint16_t i = 0; i < first; i++) {
        blk_status[i] = 0xff;
        blk_headers[i].sector = next_block() * 8;
        submit(&blkq, i);
    }
    publish(base, &blkq);
    uint64_t errors = 0;
    uint64_t done = run_queue(base, &blkq, count, blk_done, &errors);
    end(test, done, errors);
}

static void bench_blk(uint64_t count)
{
    uint64_t base = find_device(2);
    if (!base)
        fail("no virtio-blk device");
    device_start(base, F_VERSION_1 | F_INDIRECT_DESC | F_BLK_FLUSH);
    uint64_t sectors = (uint64_t)rd(base, R_CONFIG) | (uint64_t)rd(base, R_CONFIG + 4) << 32;
    blk_blocks = sectors / 8;
    if (blk_blocks < QMAX)
        fail("the disk is smaller than 1 MiB");
    queue_setup(base, &blkq, 0);
    for (uint16_t i = 0; i < blkq.size; i++) {
        blk_tables[i][0] = (struct desc){(uintptr_t)&blk_headers[i], sizeof(struct blk_header), D_NEXT, 1};
        blk_tables[i][1] = (struct desc){(uintptr_t)blk_data[i], 4096, D_NEXT, 2};
        blk_tables[i][2] = (struct desc){(uintptr_t)&blk_status[i], 1, D_WRITE, 0};
        blkq.desc[i] = (struct desc){(uintptr_t)blk_tables[i], sizeof blk_tables[i], D_INDIRECT, 0};
        for (int k = 0; k < 4096; k += 8)
            *(uint64_t *)&blk_data[i][k] = 0x5a5a5a5a00000000ull | (uint64_t)(i * 4096 + k);
    }
    device_ready(base);
    print("BENCH blk blocks=");
    print_dec(blk_blocks);
    print(" queue=");
    print_dec(blkq.size);
    print(" at ");
    print_hex(base);
    print("\n");
    blk_phase(base, "seqread", 0, 0, count);
    blk_phase(base, "randread", 0, 1, count);
    blk_phase(base, "seqwrite", 1, 0, count);
    blk_phase(base, "randwrite", 1, 1, count);
}

/* ---- virtio-net ---- */

#define NET_HDR 12 /* virtio_net_hdr_v1 (VERSION_1, no MRG_RXBUF) */
#define FRAME 60
#define RX_BUF 1536

static struct queue rxq, txq;
static uint8_t tx_bufs[QMAX][128] __attribute__((aligned(64)));
static uint8_t rx_bufs[QMAX][RX_BUF] __attribute__((aligned(64)));
static uint64_t tx_left, rx_left;

static int tx_done(uint16_t head, uint32_t len)
{
    (void)len;
    if (tx_left) {
        tx_left--;
        submit(&txq, head);
    }
    return 0;
}

static int rx_done(uint16_t head, uint32_t len)
{
    int bad = len < NET_HDR + 14;
    if (rx_left) {
        rx_left--;
        submit(&rxq, head);
    }
    return bad;
}

static void bench_net(uint64_t count)
{
    uint64_t base = find_device(1);
    if (!base)
        fail("no virtio-net device");
    device_start(base, F_VERSION_1);
    queue_setup(base, &rxq, 0);
    queue_setup(base, &txq, 1);
    for (uint16_t i = 0; i < rxq.size; i++)
        rxq.desc[i] = (struct desc){(uintptr_t)rx_bufs[i], RX_BUF, D_WRITE, 0};
    for (uint16_t i = 0; i < txq.size; i++) {
        uint8_t *f = tx_bufs[i] + NET_HDR; /* the header stays zero: no offloads */
        for (int k = 0; k < 6; k++)
            f[k] = 0xff;                                   /* broadcast */
        const uint8_t src[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
        memcpy(f + 6, src, 6);
        f[12] = 0x88, f[13] = 0xb5;                        /* local experimental ethertype */
        for (int k = 14; k < FRAME; k++)
            f[k] = (uint8_t)(i + k);
        txq.desc[i] = (struct desc){(uintptr_t)tx_bufs[i], NET_HDR + FRAME, 0, 0};
    }
    device_ready(base);
    print("BENCH net queue=");
    print_dec(txq.size);
    print(" at ");
    print_hex(base);
    print("\n");

    uint64_t errors = 0;
    uint64_t first = count < txq.size ? count : txq.size;
    tx_left = count - first;
    begin("tx");
    for (uint16_t i = 0; i < first; i++)
        submit(&txq, i);
    publish(base, &txq);
    uint64_t done = run_queue(base, &txq, count, tx_done, &errors);
    end("tx", done, errors);

    rx_left = count > rxq.size ? count - rxq.size : 0;
    for (uint16_t i = 0; i < rxq.size; i++)
        submit(&rxq, i);
    publish(base, &rxq);
    print("BENCH rx ready\n");
    /* Time from the first frame: the host starts sending when it sees "ready". */
    while (__atomic_load_n(&rxq.used.idx, __ATOMIC_ACQUIRE) == 0)
        pause();
    begin("rx");
    errors = 0;
    done = run_queue(base, &rxq, count, rx_done, &errors);
    end("rx", done, errors);
}

/* ---- entry (from entry.S, at CPL3) ---- */

struct hvm_start_info {
    uint32_t magic, version, flags, nr_modules;
    uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
    uint32_t memmap_entries, reserved;
};

__attribute__((noreturn)) void bench_main(uint64_t start_info);

__attribute__((noreturn)) void bench_main(uint64_t start_info)
{
    const struct hvm_start_info *si = (const struct hvm_start_info *)(uintptr_t)start_info;
    if (si->magic != 0x336ec578)
        fail("PVH start_info magic");
    if (si->cmdline_paddr)
        cmdline = (const char *)(uintptr_t)si->cmdline_paddr;
    print("BENCH cmdline=");
    print(cmdline);
    print("\n");
    uint64_t count = option("count=", 50000);
    if (option_is("bench=", "blk"))
        bench_blk(count);
    else if (option_is("bench=", "net"))
        bench_net(count);
    else
        fail("no bench=blk|net on the command line");
    print("BENCH done\n");
    finish(0);
}

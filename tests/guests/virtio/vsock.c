/* virtio-vsock test (§5.10, stream sockets): receive queue 0, transmit 1, event 2. One connection each way with the
 * host (cid 2): the guest connects from port 1234 to host port 5000, sends VMMSHARP-VSOCK-OUT, prints the answer
 * and shuts down; then it accepts the host's connection to its port 5001, prints what the host sent and answers
 * VMMSHARP-VSOCK-IN (vsock=out or vsock=in: only one of the two). Credit: the guest advertises buf_alloc 64 KiB and counts what it consumed (fwd_cnt). */
#include "dma.h"
#include "guest.h"
#include "virtq.h"

#define VSOCK_HOST_CID 2u
#define VSOCK_TYPE_STREAM 1u
#define OP_REQUEST 1u
#define OP_RESPONSE 2u
#define OP_RST 3u
#define OP_SHUTDOWN 4u
#define OP_RW 5u
#define OP_CREDIT_UPDATE 6u
#define OP_CREDIT_REQUEST 7u
#define SHUTDOWN_BOTH 3u
#define BUF_ALLOC 65536u

#define RX_COUNT 8u
#define RX_SIZE 4096u
#define OUT_LOCAL 1234u
#define OUT_PEER 5000u
#define IN_LOCAL 5001u

struct vsock_hdr {
    uint64_t src_cid, dst_cid;
    uint32_t src_port, dst_port, len;
    uint16_t type, op;
    uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));
_Static_assert(sizeof(struct vsock_hdr) == 44, "virtio_vsock_hdr layout");

enum { IDLE, CONNECTING, CONNECTED, CLOSED };

struct conn {
    uint32_t local, peer;
    int state;
    int got_rst, got_shutdown;
    uint32_t fwd_cnt; /* payload bytes the guest consumed */
    char data[64];
    uint32_t data_len;
};

static struct vmmio_dev *dev;
static struct virtq rxq, txq, evq;
static uint8_t *rxbuf, *evbuf;
static struct vsock_hdr *txhdr;
static uint8_t *txdata;
static uint64_t cid;
static struct conn out = {OUT_LOCAL, OUT_PEER, IDLE, 0, 0, 0, {0}, 0}, in = {IN_LOCAL, 0, IDLE, 0, 0, 0, {0}, 0};

static void copy(void *d, const void *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        ((uint8_t *)d)[i] = ((const uint8_t *)s)[i];
}

static int send_packet(struct conn *c, uint32_t op, uint32_t flags, const char *text)
{
    uint32_t n = 0;
    while (text && text[n])
        n++;
    txhdr->src_cid = cid;
    txhdr->dst_cid = VSOCK_HOST_CID;
    txhdr->src_port = c->local;
    txhdr->dst_port = c->peer;
    txhdr->len = n;
    txhdr->type = VSOCK_TYPE_STREAM;
    txhdr->op = (uint16_t)op;
    txhdr->flags = flags;
    txhdr->buf_alloc = BUF_ALLOC;
    txhdr->fwd_cnt = c->fwd_cnt;
    if (n)
        copy(txdata, text, n);
    struct virtq_buf b[2] = {{(uintptr_t)txhdr, sizeof *txhdr}, {(uintptr_t)txdata, n}};
    if (virtq_add(&txq, b, n ? 2 : 1, 0) < 0)
        return -1;
    vmmio_kick(dev, 1, &txq);
    return virtq_wait_used(&txq, 0, SPINS_LONG) < 0 ? -1 : 0;
}

static void post_rx(uint32_t i)
{
    struct virtq_buf b = {(uintptr_t)(rxbuf + i * RX_SIZE), RX_SIZE};
    virtq_add(&rxq, &b, 0, 1);
}

static void handle(const struct vsock_hdr *h, const uint8_t *payload, uint32_t avail)
{
    if (h->op == OP_REQUEST && h->dst_port == IN_LOCAL && in.state == IDLE) {
        in.peer = h->src_port;
        in.state = CONNECTED;
        send_packet(&in, OP_RESPONSE, 0, 0);
        return;
    }
    struct conn *c = h->dst_port == out.local && h->src_port == out.peer ? &out
                     : h->dst_port == in.local && h->src_port == in.peer && in.state != IDLE ? &in
                                                                                            : 0;
    if (!c) {
        print("VSOCK stray op=");
        print_dec(h->op);
        print(" port=");
        print_dec(h->dst_port);
        print(" from=");
        print_dec(h->src_port);
        print("\n");
        if (h->op != OP_RST) { /* refuse it, so the peer does not wait */
            struct conn stray = {h->dst_port, h->src_port, CLOSED, 0, 0, 0, {0}, 0};
            send_packet(&stray, OP_RST, 0, 0);
        }
        return;
    }
    switch (h->op) {
    case OP_RESPONSE:
        if (c->state == CONNECTING)
            c->state = CONNECTED;
        break;
    case OP_RW: {
        uint32_t n = h->len <= avail ? h->len : avail;
        for (uint32_t i = 0; i < n && c->data_len + 1 < sizeof c->data; i++)
            c->data[c->data_len++] = (char)payload[i];
        c->fwd_cnt += n;
        break;
    }
    case OP_CREDIT_REQUEST:
        send_packet(c, OP_CREDIT_UPDATE, 0, 0);
        break;
    case OP_SHUTDOWN:
        c->got_shutdown = 1;
        break;
    case OP_RST:
        c->got_rst = 1;
        c->state = CLOSED;
        break;
    default:
        break;
    }
}

/* Serves the receive queue until *until(c) holds or spins run out. */
static int poll(int (*until)(const struct conn *), const struct conn *c, uint32_t spins)
{
    for (uint32_t i = 0; i < spins && !until(c); i++) {
        uint32_t len;
        int h = virtq_get_used(&rxq, &len);
        if (h < 0) {
            __asm__ volatile("pause" ::: "memory");
            continue;
        }
        const uint8_t *b = rxbuf + (uint32_t)h * RX_SIZE;
        if (len >= sizeof(struct vsock_hdr))
            handle((const struct vsock_hdr *)b, b + sizeof(struct vsock_hdr), len - sizeof(struct vsock_hdr));
        post_rx((uint32_t)h);
        vmmio_kick(dev, 0, &rxq);
    }
    return until(c) ? 0 : -1;
}

static int not_connecting(const struct conn *c) { return c->state != CONNECTING; }
static int connected(const struct conn *c) { return c->state == CONNECTED; }
static int has_line(const struct conn *c) { return (c->data_len > 0 && c->data[c->data_len - 1] == '\n') || c->state == CLOSED; }
static int closed(const struct conn *c) { return c->got_rst || c->got_shutdown; }

static void connect_to_host(void);
static void accept_from_host(void);

static void print_data(const char *what, const struct conn *c)
{
    uint32_t n = c->data_len;
    if (n && c->data[n - 1] == '\n')
        n--;
    print("VSOCK ");
    print(what);
    print(" rx len=");
    print_dec(c->data_len);
    print(" payload=");
    for (uint32_t i = 0; i < n; i++)
        serial_putc(c->data[i] >= 0x20 && c->data[i] < 0x7f ? c->data[i] : '.');
    print("\n");
}

void test_vsock(struct guest *g, int to_host, int from_host)
{
    dev = find_device(g, VIRTIO_ID_VSOCK, 0);
    if (!dev || vmmio_negotiate(dev, 0) != 0) {
        fail("vsock device missing or refused");
        return;
    }
    rxbuf = dma_alloc(RX_COUNT * RX_SIZE, 4096);
    evbuf = dma_alloc(64, 16);
    txhdr = dma_alloc(sizeof *txhdr + 256, 16);
    if (!rxbuf || !evbuf || !txhdr || virtq_init(&rxq, RX_COUNT) != 0 || virtq_init(&txq, 8) != 0 ||
        virtq_init(&evq, 4) != 0 || vmmio_queue_setup(dev, 0, &rxq) != 0 || vmmio_queue_setup(dev, 1, &txq) != 0 ||
        vmmio_queue_setup(dev, 2, &evq) != 0) {
        fail("vsock queues");
        return;
    }
    txdata = (uint8_t *)txhdr + 64;
    cid = vmmio_config64(dev, 0);
    vmmio_driver_ok(dev);
    for (uint32_t i = 0; i < RX_COUNT; i++)
        post_rx(i);
    vmmio_kick(dev, 0, &rxq);
    struct virtq_buf ev = {(uintptr_t)evbuf, 8};
    virtq_add(&evq, &ev, 0, 1);
    vmmio_kick(dev, 2, &evq);
    print("VSOCK cid=");
    print_dec((uint32_t)cid);
    print(" features=");
    print_hex(dev->features);
    print("\n");

    if (to_host)
        connect_to_host();
    if (from_host)
        accept_from_host();
}

/* Guest to host. */
static void connect_to_host(void)
{
    out.state = CONNECTING;
    if (send_packet(&out, OP_REQUEST, 0, 0) != 0 || poll(not_connecting, &out, SPINS_LONG) != 0) {
        fail("vsock no answer to the guest's REQUEST");
        return;
    }
    print("VSOCK out connect port=5000 ");
    print(out.state == CONNECTED ? "connected" : "refused");
    print("\n");
    if (out.state == CONNECTED) {
        send_packet(&out, OP_RW, 0, "VMMSHARP-VSOCK-OUT\n");
        if (poll(has_line, &out, SPINS_LONG) != 0)
            fail("vsock no data on the guest's connection");
        print_data("out", &out);
        send_packet(&out, OP_SHUTDOWN, SHUTDOWN_BOTH, 0);
        poll(closed, &out, SPINS_LONG);
        print("VSOCK out closed rst=");
        print_dec((uint32_t)out.got_rst);
        print("\n");
    }
}

/* Host to guest. */
static void accept_from_host(void)
{
    if (poll(connected, &in, SPINS_LONG) != 0) {
        fail("vsock no connection from the host to port 5001");
        return;
    }
    print("VSOCK in connect port=5001 from=");
    print_dec(in.peer);
    print("\n");
    if (poll(has_line, &in, SPINS_LONG) != 0)
        fail("vsock no data on the host's connection");
    print_data("in", &in);
    send_packet(&in, OP_RW, 0, "VMMSHARP-VSOCK-IN\n");
    poll(closed, &in, SPINS_LONG);
    if (in.got_shutdown && !in.got_rst)
        send_packet(&in, OP_RST, 0, 0);
    print("VSOCK in closed shutdown=");
    print_dec((uint32_t)in.got_shutdown);
    print(" rst=");
    print_dec((uint32_t)in.got_rst);
    print("\n");
}

/* virtio-net test (§5.1): receive buffers posted on queue 0, frames sent on queue 1, each behind the 12-byte
 * virtio_net_hdr_v1 (no offloads). The guest is 10.77.0.2, the host end of the TAP 10.77.0.1: it asks the host's
 * MAC with ARP, answers the host's ARP requests, sends a UDP datagram from port 7778 to 7777 and waits for one to
 * port 7778, printing what it got. */
#include "dma.h"
#include "guest.h"
#include "virtq.h"

#define VIRTIO_NET_F_MAC (1ull << 5)
#define NET_HDR 12u
#define RX_COUNT 8u
#define BUF_SIZE 2048u
#define GUEST_PORT 7778u
#define HOST_PORT 7777u

static const uint8_t guest_ip[4] = {10, 77, 0, 2}, host_ip[4] = {10, 77, 0, 1};
static struct vmmio_dev *netdev;
static struct virtq rxq, txq;
static uint8_t *rxbuf, *txbuf;
static uint8_t mac[6], host_mac[6];
static int have_host_mac;
static uint32_t frames, ignored;
static char payload[64];
static uint32_t payload_len;
static int have_payload;

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static uint32_t get16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static void copy(uint8_t *d, const uint8_t *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        d[i] = s[i];
}
static int equal(const uint8_t *a, const uint8_t *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static void print_mac(const uint8_t *m)
{
    for (int i = 0; i < 6; i++) {
        if (i)
            serial_putc(':');
        print_bytes_hex(m + i, 1);
    }
}

static void post_rx(uint32_t i)
{
    struct virtq_buf b = {(uintptr_t)(rxbuf + i * BUF_SIZE), BUF_SIZE};
    virtq_add(&rxq, &b, 0, 1);
}

/* Sends the frame at txbuf + NET_HDR of len bytes (the header before it is all zero: no offload) and waits. */
static int send_frame(uint32_t len)
{
    for (uint32_t i = 0; i < NET_HDR; i++)
        txbuf[i] = 0;
    struct virtq_buf b = {(uintptr_t)txbuf, NET_HDR + len};
    if (virtq_add(&txq, &b, 1, 0) < 0)
        return -1;
    vmmio_kick(netdev, 1, &txq);
    return virtq_wait_used(&txq, 0, SPINS_LONG) < 0 ? -1 : 0;
}

static uint32_t arp(uint32_t op, const uint8_t *to_mac, const uint8_t *to_ip)
{
    uint8_t *e = txbuf + NET_HDR;
    static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, zero[6] = {0};
    copy(e, op == 1 ? broadcast : to_mac, 6);
    copy(e + 6, mac, 6);
    put16(e + 12, 0x0806);
    put16(e + 14, 1);      /* Ethernet */
    put16(e + 16, 0x0800); /* IPv4 */
    e[18] = 6;
    e[19] = 4;
    put16(e + 20, op);
    copy(e + 22, mac, 6);
    copy(e + 28, guest_ip, 4);
    copy(e + 32, op == 1 ? zero : to_mac, 6);
    copy(e + 38, to_ip, 4);
    return 42;
}

static uint32_t udp(const char *text)
{
    uint8_t *e = txbuf + NET_HDR, *ip = e + 14, *u = ip + 20;
    uint32_t n = 0;
    while (text[n])
        n++;
    copy(e, host_mac, 6);
    copy(e + 6, mac, 6);
    put16(e + 12, 0x0800);
    ip[0] = 0x45;
    ip[1] = 0;
    put16(ip + 2, 20 + 8 + n);
    put16(ip + 4, 1);
    put16(ip + 6, 0x4000); /* don't fragment */
    ip[8] = 64;
    ip[9] = 17;
    put16(ip + 10, 0);
    copy(ip + 12, guest_ip, 4);
    copy(ip + 16, host_ip, 4);
    uint32_t sum = 0;
    for (uint32_t i = 0; i < 20; i += 2)
        sum += get16(ip + i);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    put16(ip + 10, ~sum & 0xffff);
    put16(u, GUEST_PORT);
    put16(u + 2, HOST_PORT);
    put16(u + 4, 8 + n);
    put16(u + 6, 0); /* no UDP checksum (allowed over IPv4) */
    copy(u + 8, (const uint8_t *)text, n);
    return 14 + 20 + 8 + n;
}

/* Looks at one received frame: learns the host's MAC, answers ARP for us, takes a UDP datagram to our port. */
static void receive(const uint8_t *e, uint32_t len)
{
    frames++;
    if (len >= 42 && get16(e + 12) == 0x0806 && get16(e + 20) == 2 && equal(e + 28, host_ip, 4)) {
        if (!have_host_mac) {
            copy(host_mac, e + 22, 6);
            have_host_mac = 1;
            print("NET arp reply from=10.77.0.1 mac=");
            print_mac(host_mac);
            print("\n");
        }
        return;
    }
    if (len >= 42 && get16(e + 12) == 0x0806 && get16(e + 20) == 1 && equal(e + 38, guest_ip, 4)) {
        uint8_t who[6], ip[4];
        copy(who, e + 22, 6);
        copy(ip, e + 28, 4);
        send_frame(arp(2, who, ip));
        return;
    }
    const uint8_t *ip = e + 14;
    if (len >= 42 && get16(e + 12) == 0x0800 && (ip[0] >> 4) == 4 && ip[9] == 17 && equal(ip + 16, guest_ip, 4)) {
        const uint8_t *u = ip + (ip[0] & 15u) * 4u;
        uint32_t ulen = get16(u + 4);
        if (get16(u + 2) == GUEST_PORT && ulen >= 8 && u + ulen <= e + len && !have_payload) {
            payload_len = ulen - 8 < sizeof payload - 1 ? ulen - 8 : sizeof payload - 1;
            copy((uint8_t *)payload, u + 8, payload_len);
            payload[payload_len] = 0;
            have_payload = 1;
            print("NET udp rx from=");
            for (int i = 0; i < 4; i++) {
                if (i)
                    serial_putc('.');
                print_dec(ip[12 + i]);
            }
            print(":");
            print_dec(get16(u));
            print(" len=");
            print_dec(payload_len);
            print(" payload=");
            print_first_bytes((const uint8_t *)payload, payload_len);
            print("\n");
            return;
        }
    }
    ignored++;
}

/* Serves the receive queue until *flag is set or spins run out. */
static int poll_rx(const int *flag, uint32_t spins)
{
    for (uint32_t i = 0; i < spins && !*flag; i++) {
        uint32_t len;
        int h = virtq_get_used(&rxq, &len);
        if (h < 0) {
            __asm__ volatile("pause" ::: "memory");
            continue;
        }
        /* One descriptor per buffer: its index is the buffer's. */
        uint32_t k = (uint32_t)h;
        if (len > NET_HDR && len <= BUF_SIZE)
            receive(rxbuf + k * BUF_SIZE + NET_HDR, len - NET_HDR);
        post_rx(k);
        vmmio_kick(netdev, 0, &rxq);
    }
    return *flag ? 0 : -1;
}

void test_net(struct guest *g)
{
    netdev = find_device(g, VIRTIO_ID_NET, 0);
    if (!netdev || vmmio_negotiate(netdev, VIRTIO_NET_F_MAC) != 0) {
        fail("net device missing or refused");
        return;
    }
    rxbuf = dma_alloc(RX_COUNT * BUF_SIZE, 4096);
    txbuf = dma_alloc(BUF_SIZE, 4096);
    if (!rxbuf || !txbuf || virtq_init(&rxq, RX_COUNT) != 0 || virtq_init(&txq, 8) != 0 ||
        vmmio_queue_setup(netdev, 0, &rxq) != 0 || vmmio_queue_setup(netdev, 1, &txq) != 0) {
        fail("net queues");
        return;
    }
    for (int i = 0; i < 6; i++)
        mac[i] = vmmio_config8(netdev, (uint32_t)i);
    vmmio_driver_ok(netdev);
    print("NET mac=");
    print_mac(mac);
    print(" features=");
    print_hex(netdev->features);
    print("\n");
    /* Fresh descriptors 0..RX_COUNT-1 in order: buffer i is descriptor i. */
    for (uint32_t i = 0; i < RX_COUNT; i++)
        post_rx(i);
    vmmio_kick(netdev, 0, &rxq);

    for (int tries = 0; tries < 5 && !have_host_mac; tries++) {
        if (send_frame(arp(1, 0, host_ip)) != 0) {
            fail("net transmit did not complete");
            return;
        }
        poll_rx(&have_host_mac, SPINS_SHORT * 5);
    }
    if (!have_host_mac) {
        fail("net no ARP reply from 10.77.0.1");
        return;
    }
    static const char ping[] = "VMMSHARP-NET-PING";
    if (send_frame(udp(ping)) != 0) {
        fail("net transmit did not complete");
        return;
    }
    print("NET udp sent to=10.77.0.1:7777 len=");
    print_dec(sizeof ping - 1);
    print("\n");
    if (poll_rx(&have_payload, SPINS_LONG) != 0)
        fail("net no UDP datagram to port 7778");
    print("NET frames rx=");
    print_dec(frames);
    print(" ignored=");
    print_dec(ignored);
    print("\n");
}

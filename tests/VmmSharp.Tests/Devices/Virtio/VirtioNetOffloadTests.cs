using System.Net;
using System.Net.Sockets;
using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Mmio;
using VmmSharp.Devices.Virtio.Net;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>
/// Checksum and segmentation offloads only as negotiated: the TAP is told (TUNSETOFFLOAD) what the driver accepted to
/// receive, the vnet header passes through both ways, and a transmitted header asking for an offload the driver did
/// not negotiate is dropped.
/// </summary>
public sealed class VirtioNetOffloadTests
{
    private const ulong Base = VirtioFeatures.Version1 | VirtioNetFeatures.Mac;
    private const ulong GuestOffloads = VirtioNetFeatures.GuestCsum | VirtioNetFeatures.GuestTso4 | VirtioNetFeatures.GuestTso6;

    [Fact]
    public void Without_guest_csum_the_tap_gets_no_offloads_and_hands_over_whole_checksummed_frames()
    {
        using var h = new NetHarness(Base);
        Assert.Equal(0u, h.Net.TapOffloads);

        byte[] header = ReceiveOneUdpFrameFromHost(h);

        Assert.Equal(0, header[0] & 1); // no NEEDS_CSUM: the host finished the checksum
    }

    [Fact]
    public void With_guest_csum_and_tso_the_tap_hands_over_frames_marked_needs_csum()
    {
        using var h = new NetHarness(Base | GuestOffloads | VirtioNetFeatures.MrgRxBuf);
        Assert.Equal(7u, h.Net.TapOffloads); // TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6

        byte[] header = ReceiveOneUdpFrameFromHost(h, buffers: 48);

        Assert.Equal(1, header[0] & 1); // NEEDS_CSUM: the host left the checksum to the guest, as negotiated
    }

    [Fact]
    public void A_reset_takes_the_offloads_back_from_the_tap()
    {
        using var h = new NetHarness(Base | GuestOffloads);
        Assert.Equal(7u, h.Net.TapOffloads);

        h.Driver.Write(VirtioMmioRegisters.Status, 0);

        Assert.Equal(0u, h.Net.TapOffloads);
    }

    [Fact]
    public void A_partial_checksum_from_a_driver_with_csum_reaches_the_host_socket_completed()
    {
        using var h = new NetHarness(Base | VirtioNetFeatures.Csum);
        using Socket host = h.HostUdp(7001);

        h.Transmit(NetHarness.UdpFrame("finish my checksum"u8, 7001, partialChecksum: true));

        Assert.Equal(1, h.Net.FramesSent);
        byte[] got = new byte[64];
        int n = host.Receive(got); // a wrong UDP checksum would be dropped by the host kernel: this times out then
        Assert.Equal("finish my checksum"u8.ToArray(), got[..n]);
    }

    [Fact]
    public void A_partial_checksum_without_the_flag_is_dropped_by_the_host_so_the_test_above_can_fail()
    {
        using var h = new NetHarness(Base | VirtioNetFeatures.Csum);
        using Socket host = h.HostUdp(7002);
        byte[] frame = NetHarness.UdpFrame("partial sum only"u8, 7002, partialChecksum: true);
        frame[0] = 0; // NEEDS_CSUM cleared: the checksum field is now simply wrong

        h.Transmit(frame);

        host.ReceiveTimeout = 500;
        Assert.Throws<SocketException>(() => host.Receive(new byte[64]));
    }

    [Fact]
    public void A_partial_checksum_from_a_driver_without_csum_is_dropped()
    {
        using var h = new NetHarness(Base);

        h.Transmit(NetHarness.UdpFrame("not negotiated"u8, 7003, partialChecksum: true));

        Assert.Equal(1, h.Tx.UsedIdx); // the chain comes back: dropped, not stuck
        Assert.Equal(0, h.Net.FramesSent);
        Assert.Equal(1, h.Net.FramesDropped);
    }

    [Fact]
    public void A_segmentation_request_from_a_driver_without_host_tso_is_dropped()
    {
        using var h = new NetHarness(Base | VirtioNetFeatures.Csum);
        byte[] frame = NetHarness.UdpFrame(new byte[3000], 7004, partialChecksum: true);
        frame[1] = 1; // VIRTIO_NET_HDR_GSO_TCPV4 without HOST_TSO4

        h.Transmit(frame);

        Assert.Equal(0, h.Net.FramesSent);
        Assert.Equal(1, h.Net.FramesDropped);
    }

    /// <summary>The host sends a UDP datagram to the guest; returns the virtio_net_hdr of the frame that arrived.</summary>
    private static byte[] ReceiveOneUdpFrameFromHost(NetHarness h, int buffers = 8)
    {
        using Socket host = h.HostUdp(7000);
        h.PostRx(buffers);
        host.SendTo("to the guest"u8, new IPEndPoint(NetHarness.GuestIp, 7100));
        byte[]? header = null;
        Assert.True(h.PumpUntil(() =>
        {
            foreach ((int slot, uint length) in h.TakeUsedRx())
            {
                byte[] b = h.RxBytes(slot, Math.Min(length, 64u));
                if (length > VirtioNet.HeaderSize + 34 && b[VirtioNet.HeaderSize + 12] == 0x08 && b[VirtioNet.HeaderSize + 23] == 17)
                {
                    header = b[..VirtioNet.HeaderSize];
                }
            }
            return header is not null;
        }), "the host's UDP datagram never reached the guest's receive queue");
        return header!;
    }
}

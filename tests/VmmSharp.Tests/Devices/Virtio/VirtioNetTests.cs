using System.Buffers.Binary;
using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Mmio;
using VmmSharp.Devices.Virtio.Net;
using D = VmmSharp.Devices.Virtio.Queues.VirtqDescriptor;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>
/// virtio-net on a real TAP in a network namespace of the test's own: what the device offers, and an ARP request for
/// the namespace's address that leaves through the TAP and whose answer from the host kernel comes back.
/// </summary>
public sealed class VirtioNetTests
{
    [Fact]
    public void The_device_offers_mac_status_mergeable_buffers_and_the_offloads_and_says_the_link_is_up()
    {
        using var h = new NetHarness(VirtioFeatures.Version1 | VirtioNetFeatures.Mac | VirtioNetFeatures.Status);

        ulong offered = h.Driver.DeviceFeatures();
        Assert.Equal(VirtioNetFeatures.Offered | VirtioFeatures.Common, offered);
        Span<byte> config = stackalloc byte[8];
        h.Transport.Read(VirtioMmioRegisters.Config, config);
        Assert.Equal(NetHarness.GuestMac, config[..6].ToArray());
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(config[6..])); // VIRTIO_NET_S_LINK_UP
    }

    [Fact]
    public void An_arp_request_leaves_through_the_tap_and_the_hosts_reply_comes_back()
    {
        using var h = new NetHarness(VirtioFeatures.Version1 | VirtioNetFeatures.Mac);
        h.PostRx(8);

        h.Transmit(ArpRequest());
        Assert.Equal(1, h.Tx.UsedIdx);
        Assert.Equal(1, h.Net.FramesSent);

        // The namespace's kernel answers; the event loop would call the handler when the TAP turns readable.
        byte[]? reply = null;
        Assert.True(h.PumpUntil(() =>
        {
            foreach ((int slot, uint length) in h.TakeUsedRx())
            {
                byte[] b = h.RxBytes(slot, length);
                Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(10))); // num_buffers
                int eth = VirtioNet.HeaderSize;
                if (length >= eth + 42 && b[eth + 12] == 0x08 && b[eth + 13] == 0x06 && b[eth + 21] == 2)
                {
                    reply = b;
                }
            }
            return reply is not null;
        }), $"no ARP reply came back through the TAP: {h.Net.FramesReceived} frames received, rx queue: {h.Net.Failure}, used {h.Memory.Read<ushort>(NetHarness.RxUsed + 2)} next {h.Net.Queues[0].NextAvail}");
        Assert.Equal(NetHarness.GuestMac, reply!.AsSpan(VirtioNet.HeaderSize, 6).ToArray()); // to the guest
        Assert.Equal(new byte[] { 10, 77, 0, 1 }, reply.AsSpan(VirtioNet.HeaderSize + 28, 4).ToArray()); // from 10.77.0.1
    }

    /// <summary>virtio_net_hdr_v1 (all zero: no offload) + who-has 10.77.0.1 tell 10.77.0.2.</summary>
    private static byte[] ArpRequest()
    {
        byte[] f = new byte[VirtioNet.HeaderSize + 42];
        Span<byte> e = f.AsSpan(VirtioNet.HeaderSize);
        e[..6].Fill(0xff);
        NetHarness.GuestMac.CopyTo(e[6..]);
        e[12] = 0x08;
        e[13] = 0x06;
        byte[] arp = [0, 1, 8, 0, 6, 4, 0, 1];
        arp.CopyTo(e[14..]);
        NetHarness.GuestMac.CopyTo(e[22..]);
        new byte[] { 10, 77, 0, 2 }.CopyTo(e[28..]);
        new byte[] { 10, 77, 0, 1 }.CopyTo(e[38..]);
        return f;
    }
}

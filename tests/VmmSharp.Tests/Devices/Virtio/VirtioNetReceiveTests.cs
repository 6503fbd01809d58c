using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Net;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>
/// The receive path: a frame over several chains with MRG_RXBUF (num_buffers), no read until the posted buffers can
/// hold the largest frame, and a guest that posts no buffers leaves frames to the TAP's bounded queue.
/// </summary>
public sealed class VirtioNetReceiveTests
{
    private const ulong Mergeable = VirtioFeatures.Version1 | VirtioNetFeatures.Mac | VirtioNetFeatures.MrgRxBuf;

    [Fact]
    public void With_mrg_rxbuf_a_frame_larger_than_one_buffer_fills_several_and_num_buffers_counts_them()
    {
        using var h = new NetHarness(Mergeable);
        using Socket host = h.HostUdp(7010);
        h.PostRx(8, size: 256); // 2048 bytes: room for the largest frame (1530)
        byte[] payload = new byte[1000];
        Random.Shared.NextBytes(payload);

        host.SendTo(payload, new IPEndPoint(NetHarness.GuestIp, 7110));

        List<(int Slot, uint Length)> used = [];
        Assert.True(h.PumpUntil(() =>
        {
            used.AddRange(h.TakeUsedRx());
            return used.Count >= 5;
        }), $"expected 5 used chains, got {used.Count}");
        uint frame = (uint)(VirtioNet.HeaderSize + 14 + 20 + 8 + payload.Length); // 1054
        Assert.Equal([256u, 256u, 256u, 256u, frame - 1024], used.Select(u => u.Length));
        byte[] all = [.. used.SelectMany(u => h.RxBytes(u.Slot, u.Length))];
        Assert.Equal(5, BinaryPrimitives.ReadUInt16LittleEndian(all.AsSpan(10))); // num_buffers
        Assert.Equal(payload, all[(VirtioNet.HeaderSize + 42)..]);
        Assert.Equal(1, h.Net.FramesReceived);
    }

    [Fact]
    public void With_mrg_rxbuf_a_frame_waits_in_the_tap_until_the_buffers_can_hold_the_largest_frame()
    {
        using var h = new NetHarness(Mergeable);
        using Socket host = h.HostUdp(7011);
        h.PostRx(2, size: 256); // 512 bytes: a full-sized frame would not fit

        host.SendTo(new byte[100], new IPEndPoint(NetHarness.GuestIp, 7111));

        Assert.False(h.PumpUntil(() => h.Net.FramesReceived > 0, TimeSpan.FromMilliseconds(500)), "a frame was read into too little room");
        h.PostRx(4, size: 256); // now 1536: the notification lets the waiting frame in
        Assert.True(h.PumpUntil(() => h.Net.FramesReceived == 1), "the waiting frame did not come in once there was room");
        Assert.Single(h.TakeUsedRx()); // 154 bytes: one chain filled, the others stay posted
    }

    [Fact]
    public void A_guest_that_posts_no_receive_buffers_leaves_frames_to_the_taps_bounded_queue_and_receiving_allocates_nothing()
    {
        using var h = new NetHarness(VirtioFeatures.Version1 | VirtioNetFeatures.Mac);
        using Socket host = h.HostUdp(7012);
        var guest = new IPEndPoint(NetHarness.GuestIp, 7112);
        for (int i = 0; i < 3000; i++)
        {
            host.SendTo(new byte[64], guest);
        }

        for (int i = 0; i < 20; i++)
        {
            h.Net.OnBackendReadable();
        }
        Assert.Equal(0, h.Net.FramesReceived);
        // The TAP's own queue (txqueuelen 1000 by default) took what it could and the host kernel dropped the rest.
        string stats = h.Namespace.Ip($"-s link show {NetHarness.Tap}");
        Assert.Matches(@"TX:\s+bytes\s+packets\s+errors\s+dropped[^\n]*\n\s*\d+\s+\d+\s+\d+\s+[1-9]\d*", stats);

        h.PostRx(16);
        h.PostRx(16); // warm: JIT and first-call paths
        Assert.Equal(32, h.Net.FramesReceived);
        h.TakeUsedRx();
        long before = GC.GetAllocatedBytesForCurrentThread();
        h.PostRx(32);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(64, h.Net.FramesReceived);
        Assert.Equal(0, allocated);
    }
}

using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Net;
using D = VmmSharp.Devices.Virtio.Queues.VirtqDescriptor;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>
/// virtio-net against a driver that breaks the rules (the test as the driver, on a real TAP): a broken chain makes the
/// device need a reset and send nothing; a frame too short to carry its header is dropped and the device keeps serving.
/// </summary>
public sealed class VirtioNetHostileTests
{
    private const ulong Features = VirtioFeatures.Version1 | VirtioNetFeatures.Mac;

    [Fact]
    public void A_transmit_chain_that_loops_makes_the_device_need_a_reset_and_nothing_reaches_the_tap()
    {
        using var h = new NetHarness(Features);
        h.Tx.SetDescriptor(0, NetHarness.Frame, 64, D.FlagNext, next: 1);
        h.Tx.SetDescriptor(1, NetHarness.Frame + 64, 64, D.FlagNext, next: 0);

        h.Tx.Offer(0);
        h.Transport.OnNotifyEvent();

        Assert.True(h.Net.NeedsReset);
        Assert.Contains("loop", h.Net.Failure, StringComparison.Ordinal);
        Assert.True(h.Transport.Status.HasFlag(VirtioStatus.DeviceNeedsReset));
        Assert.Equal(0, h.Net.FramesSent);
        Assert.Equal(0, h.Tx.UsedIdx);
    }

    [Fact]
    public void A_transmit_head_past_the_queues_end_makes_the_device_need_a_reset()
    {
        using var h = new NetHarness(Features);

        h.Tx.Offer(200); // the transmit queue has 16 entries
        h.Transport.OnNotifyEvent();

        Assert.True(h.Net.NeedsReset);
        Assert.Contains("out of range", h.Net.Failure, StringComparison.Ordinal);
        Assert.Equal(0, h.Net.FramesSent);
    }

    [Fact]
    public void A_transmitted_frame_no_longer_than_its_header_is_dropped_and_the_device_keeps_serving()
    {
        using var h = new NetHarness(Features);

        h.Transmit(new byte[VirtioNet.HeaderSize]); // a header and no frame
        Assert.Equal(1, h.Net.FramesDropped);
        Assert.Equal(1, h.Tx.UsedIdx); // the chain comes back
        Assert.False(h.Net.NeedsReset);

        h.Transmit(NetHarness.UdpFrame(new byte[16], 7020, partialChecksum: false));
        Assert.Equal(1, h.Net.FramesSent);
        Assert.Equal(2, h.Tx.UsedIdx);
    }

    [Fact]
    public void A_receive_buffer_without_room_for_the_header_makes_the_device_need_a_reset()
    {
        using var h = new NetHarness(Features);

        h.PostRx(1, size: VirtioNet.HeaderSize - 4);

        Assert.True(h.Net.NeedsReset);
        Assert.Contains("header", h.Net.Failure, StringComparison.Ordinal);
        Assert.Equal(0, h.Net.FramesReceived);
    }

    [Fact]
    public void A_receive_buffer_outside_guest_memory_makes_the_device_need_a_reset_and_nothing_is_read_into_it()
    {
        using var h = new NetHarness(Features);
        h.Memory.Write(NetHarness.RxDesc, new D { Address = 256UL << 30, Length = 2048, Flags = D.FlagWrite });
        h.Memory.Write(NetHarness.RxAvail + 4, (ushort)0);
        h.Memory.Write(NetHarness.RxAvail + 2, (ushort)1);

        h.Transport.OnNotifyEvent();

        Assert.True(h.Net.NeedsReset);
        Assert.Contains("outside guest memory", h.Net.Failure, StringComparison.Ordinal);
        Assert.Equal(0, h.Net.FramesReceived);
    }
}

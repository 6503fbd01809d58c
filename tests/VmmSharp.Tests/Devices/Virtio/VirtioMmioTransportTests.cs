using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Mmio;
using VmmSharp.Devices.Virtio.Rng;
using VmmSharp.Memory;
using D = VmmSharp.Devices.Virtio.Queues.VirtqDescriptor;
using R = VmmSharp.Devices.Virtio.Mmio.VirtioMmioRegisters;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>The virtio-mmio register window (version 2) in front of a real device over real guest memory.</summary>
public sealed class VirtioMmioTransportTests : IDisposable
{
    private readonly GuestMemory _memory = TestRing.MemoryWithHole();
    private readonly RecordingIrqLine _irq = new();
    private readonly VirtioRng _rng = new();
    private readonly VirtioMmioTransport _transport;
    private readonly MmioDriver _driver;

    public VirtioMmioTransportTests()
    {
        _transport = new VirtioMmioTransport(_rng, _memory, 0xd000_0000, _irq);
        _driver = new MmioDriver(_transport);
    }

    public void Dispose()
    {
        _transport.Dispose();
        _memory.Dispose();
    }

    [Fact]
    public void The_identity_registers_say_virtio_version_2_and_the_device_type()
    {
        Assert.Equal(0x74726976u, _driver.Read(R.Magic));
        Assert.Equal(2u, _driver.Read(R.Version));
        Assert.Equal((uint)VirtioDeviceType.Rng, _driver.Read(R.DeviceId));
        Assert.Equal(R.VendorIdValue, _driver.Read(R.VendorId));
    }

    [Fact]
    public void Device_features_read_in_two_halves_and_offer_version_1_event_idx_and_indirect()
        => Assert.Equal(VirtioFeatures.Common, _driver.DeviceFeatures());

    [Fact]
    public void A_register_read_that_is_not_32_bits_wide_reads_zero()
    {
        Span<byte> two = stackalloc byte[2];
        _transport.Read(R.Magic, two);
        Assert.Equal(0, two[0] | two[1]);
    }

    [Fact]
    public void Features_ok_is_refused_without_version_1()
        => Assert.False(_driver.Negotiate(VirtioFeatures.RingEventIdx));

    [Fact]
    public void Features_ok_is_refused_for_a_feature_not_offered()
        => Assert.False(_driver.Negotiate(VirtioFeatures.Version1 | (1UL << 40)));

    [Fact]
    public void Queue_registers_read_back_and_queue_num_max_is_the_devices()
    {
        _driver.Negotiate(VirtioFeatures.Common);
        _driver.SetUpQueue(0, 64, 0x1_2345_6000, 0x7000, 0x8000);
        Assert.Equal((uint)VirtioRng.QueueSize, _driver.Read(R.QueueNumMax));
        Assert.Equal(64u, _driver.Read(R.QueueNum));
        Assert.Equal(0x2345_6000u, _driver.Read(R.QueueDescLow));
        Assert.Equal(1u, _driver.Read(R.QueueDescHigh));
        Assert.Equal(1u, _driver.Read(R.QueueReady));
    }

    [Fact]
    public void A_queue_that_does_not_exist_has_queue_num_max_zero()
    {
        _driver.Write(R.QueueSel, 1);
        Assert.Equal(0u, _driver.Read(R.QueueNumMax));
    }

    [Fact]
    public void Queue_addresses_cannot_change_once_the_queue_is_ready()
    {
        _driver.Negotiate(VirtioFeatures.Common);
        _driver.SetUpQueue(0, 16, TestRing.Desc, TestRing.Avail, TestRing.Used);
        _driver.Write(R.QueueDescLow, 0x5000);
        Assert.Equal((uint)TestRing.Desc, _driver.Read(R.QueueDescLow));
    }

    [Fact]
    public void Driver_ok_activates_the_device_and_a_notification_fills_the_request()
    {
        _driver.Start();
        var ring = new TestRing(_memory, _rng.Queues[0], activate: false);
        ring.SetDescriptor(0, TestRing.Data, 64, D.FlagWrite);
        ring.Offer(0);

        _transport.OnNotifyEvent();

        Assert.Equal(1, ring.UsedIdx);
        Assert.Equal((0u, 64u), ring.UsedElement(0));
        byte[] random = new byte[64];
        _memory.Read(TestRing.Data, random);
        Assert.Contains(random, b => b != 0);
        Assert.Equal(R.InterruptUsedBuffer, _driver.Read(R.InterruptStatus));
        Assert.True(_irq.Level);
    }

    [Fact]
    public void Interrupt_ack_clears_the_status_and_lowers_the_line()
    {
        _driver.Start();
        var ring = new TestRing(_memory, _rng.Queues[0], activate: false);
        ring.SetDescriptor(0, TestRing.Data, 8, D.FlagWrite);
        ring.Offer(0);
        _transport.OnNotifyEvent();

        _driver.Write(R.InterruptAck, R.InterruptUsedBuffer);
        Assert.Equal(0u, _driver.Read(R.InterruptStatus));
        Assert.False(_irq.Level);
    }

    [Fact]
    public void A_queue_notify_write_that_reaches_the_transport_signals_the_notify_eventfd()
    {
        _driver.Start();
        _transport.NotifyEvent.Consume(); // the look DRIVER_OK asks for
        _driver.Write(R.QueueNotify, 0);
        Assert.Equal(1UL, _transport.NotifyEvent.Consume());
        Assert.Equal(1, _transport.NotifyExits);
    }

    [Fact]
    public void A_malformed_chain_sets_needs_reset_and_raises_a_config_interrupt()
    {
        _driver.Start();
        var ring = new TestRing(_memory, _rng.Queues[0], activate: false);
        ring.SetDescriptor(0, 0x100000, 64, D.FlagWrite); // in the hole
        ring.Offer(0);

        _transport.OnNotifyEvent();

        Assert.NotEqual(0u, _driver.Read(R.Status) & (uint)VirtioStatus.DeviceNeedsReset);
        Assert.Equal(R.InterruptConfigChange, _driver.Read(R.InterruptStatus) & R.InterruptConfigChange);
        Assert.Equal(0, ring.UsedIdx);
        Assert.Contains("outside guest memory", _rng.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public void Writing_status_zero_resets_the_device_and_clears_needs_reset()
    {
        _driver.Start();
        var ring = new TestRing(_memory, _rng.Queues[0], activate: false);
        ring.Offer(40);
        _transport.OnNotifyEvent();
        Assert.True(_rng.NeedsReset);

        _driver.Write(R.Status, 0);

        Assert.Equal(0u, _driver.Read(R.Status));
        Assert.Equal(0u, _driver.Read(R.InterruptStatus));
        Assert.False(_rng.NeedsReset);
        Assert.False(_rng.IsActive);
        Assert.Equal(0u, _driver.Read(R.QueueReady));
    }

    [Fact]
    public void Driver_ok_with_a_ring_outside_memory_sets_needs_reset()
    {
        _driver.Negotiate(VirtioFeatures.Common);
        _driver.SetUpQueue(0, 16, 0x100000, TestRing.Avail, TestRing.Used);
        _driver.DriverOk();
        Assert.NotEqual(0u, _driver.Read(R.Status) & (uint)VirtioStatus.DeviceNeedsReset);
        Assert.False(_rng.IsActive);
    }

    [Fact]
    public void Another_device_keeps_serving_when_one_needs_a_reset()
    {
        using var other = new VirtioRng();
        using var memory2 = GuestMemory.WithRam(1 << 20);
        using var transport2 = new VirtioMmioTransport(other, memory2, 0xd000_1000, new RecordingIrqLine());
        new MmioDriver(transport2).Start();
        _driver.Start();
        var bad = new TestRing(_memory, _rng.Queues[0], activate: false);
        bad.Offer(99);
        _transport.OnNotifyEvent();

        var good = new TestRing(memory2, other.Queues[0], activate: false);
        good.SetDescriptor(0, TestRing.Data, 32, D.FlagWrite);
        good.Offer(0);
        transport2.OnNotifyEvent();

        Assert.True(_rng.NeedsReset);
        Assert.Equal(1, good.UsedIdx);
    }

    [Fact]
    public void A_request_gets_at_most_64_KiB_of_random_bytes()
    {
        _driver.Start();
        var ring = new TestRing(_memory, _rng.Queues[0], activate: false);
        ring.SetDescriptor(0, TestRing.Data, 512 * 1024, D.FlagWrite);
        ring.Offer(0);
        _transport.OnNotifyEvent();
        Assert.Equal((0u, VirtioRng.MaxBytesPerRequest), ring.UsedElement(0));
    }
}

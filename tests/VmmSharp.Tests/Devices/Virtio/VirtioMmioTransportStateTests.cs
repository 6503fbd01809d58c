using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Console;
using VmmSharp.Devices.Virtio.Mmio;
using VmmSharp.Devices.Virtio.Rng;
using VmmSharp.Memory;
using VmmSharp.Tests.Support;
using D = VmmSharp.Devices.Virtio.Queues.VirtqDescriptor;
using R = VmmSharp.Devices.Virtio.Mmio.VirtioMmioRegisters;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>The virtio-mmio transport with its device (virtio-rng) saved and restored into fresh instances.</summary>
public sealed class VirtioMmioTransportStateTests : IDisposable
{
    private const ulong Features = VirtioFeatures.Version1 | VirtioFeatures.RingEventIdx;

    private readonly GuestMemory _memory = GuestMemory.WithRam(1 << 20);
    private readonly VirtioRng _rng = new();
    private readonly RecordingIrqLine _irq = new();
    private readonly VirtioMmioTransport _transport;
    private readonly VirtioRng _freshRng = new();
    private readonly RecordingIrqLine _freshIrq = new();
    private readonly VirtioMmioTransport _fresh;

    public VirtioMmioTransportStateTests()
    {
        _transport = new VirtioMmioTransport(_rng, _memory, 0xd000_0000, _irq);
        _fresh = new VirtioMmioTransport(_freshRng, _memory, 0xd000_0000, _freshIrq);
    }

    public void Dispose()
    {
        _transport.Dispose();
        _fresh.Dispose();
        _rng.Dispose();
        _freshRng.Dispose();
        _memory.Dispose();
    }

    [Fact]
    public void Registers_read_back_the_same_after_restore()
    {
        var driver = new MmioDriver(_transport);
        driver.Start(Features);
        driver.Write(R.QueueSel, 0);
        driver.Write(R.DeviceFeaturesSel, 1);

        StateRoundTrip.Copy(_transport, _fresh);

        var after = new MmioDriver(_fresh);
        foreach (uint register in (uint[])[R.Status, R.DeviceFeatures, R.QueueNum, R.QueueReady, R.QueueDescLow, R.QueueDriverLow, R.QueueDeviceLow, R.ConfigGeneration, R.InterruptStatus])
        {
            Assert.Equal(driver.Read(register), after.Read(register));
        }
        Assert.True(_freshRng.IsActive);
        Assert.Equal(Features, _freshRng.DriverFeatures);
    }

    [Fact]
    public void The_restored_device_serves_the_next_request_and_raises_its_interrupt()
    {
        new MmioDriver(_transport).Start(Features);
        var ring = new TestRing(_memory, _rng.Queues[0], Features, activate: false);
        ring.SetDescriptor(0, TestRing.Data, 32, D.FlagWrite);
        ring.Offer(0);
        _transport.OnNotifyEvent();
        Assert.Equal(1, ring.UsedIdx);
        ring.SetDescriptor(1, TestRing.Data + 0x100, 16, D.FlagWrite);
        ring.Offer(1); // available, not yet notified: the snapshot is taken now

        StateRoundTrip.Copy(_transport, _fresh);
        Assert.True(_freshIrq.Level, "the pending used-buffer interrupt was not raised again");
        Assert.True(_fresh.NotifyEvent.Consume() > 0, "the restored transport did not re-arm its notification");
        _fresh.OnNotifyEvent();

        Assert.Equal(2, ring.UsedIdx);
        Assert.Equal((1u, 16u), ring.UsedElement(1));
    }

    [Fact]
    public void A_device_that_needs_a_reset_still_needs_it_after_restore()
    {
        new MmioDriver(_transport).Start(Features);
        var ring = new TestRing(_memory, _rng.Queues[0], Features, activate: false);
        ring.SetDescriptor(0, TestRing.Data, 32, D.FlagWrite | D.FlagNext, 0); // a loop
        ring.Offer(0);
        _transport.OnNotifyEvent();
        Assert.True(_rng.NeedsReset);

        StateRoundTrip.Copy(_transport, _fresh);

        Assert.True(_freshRng.NeedsReset);
        Assert.Equal(_rng.Failure, _freshRng.Failure);
        Assert.NotEqual(0u, new MmioDriver(_fresh).Read(R.Status) & (uint)VirtioStatus.DeviceNeedsReset);
    }

    [Fact]
    public void A_state_for_another_device_type_is_refused()
    {
        new MmioDriver(_transport).Start(Features);
        using var console = new VirtioConsole(new CapturedConsole().Output);
        using var transport = new VirtioMmioTransport(console, _memory, 0xd000_0000, new RecordingIrqLine());
        string message = StateRoundTrip.Refused(transport, StateRoundTrip.Save(_transport));
        Assert.Contains("device: device type 4", message, StringComparison.Ordinal);
        Assert.False(console.IsActive);
    }

    [Fact]
    public void An_interrupt_status_with_unknown_bits_is_refused()
    {
        byte[] state = StateRoundTrip.Save(_transport);
        state[6 + 24] = 0x04; // status, 2 selects, driver features, queue select: interrupt status at 24
        Assert.Contains("interrupt status 0x4", StateRoundTrip.Refused(_fresh, state), StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_status_bit_is_refused()
    {
        byte[] state = StateRoundTrip.Save(_transport);
        state[6] = 0x10;
        Assert.Contains("status 0x10", StateRoundTrip.Refused(_fresh, state), StringComparison.Ordinal);
    }

    [Fact]
    public void A_ring_outside_guest_memory_leaves_the_fresh_device_reset()
    {
        var driver = new MmioDriver(_transport);
        Assert.True(driver.Negotiate(Features));
        driver.SetUpQueue(0, 16, TestRing.Desc, TestRing.Avail, TestRing.Used);
        driver.DriverOk();
        using var small = GuestMemory.WithRam(0x2000); // the used ring at 0x3000 is outside it
        using var rng = new VirtioRng();
        using var transport = new VirtioMmioTransport(rng, small, 0xd000_0000, new RecordingIrqLine());

        string message = StateRoundTrip.Refused(transport, StateRoundTrip.Save(_transport));

        Assert.Contains("queue 0: available ring at 0x2000", message, StringComparison.Ordinal);
        Assert.False(rng.IsActive);
        Assert.Equal(0u, new MmioDriver(transport).Read(R.Status));
    }

    [Fact]
    public void An_unknown_device_version_is_refused()
    {
        byte[] state = StateRoundTrip.Save(_transport);
        // The device's section follows the transport's 32 bytes of registers: its version comes first.
        state[6 + 32] = 7;
        Assert.Contains("version 7", StateRoundTrip.Refused(_fresh, state), StringComparison.Ordinal);
    }
}

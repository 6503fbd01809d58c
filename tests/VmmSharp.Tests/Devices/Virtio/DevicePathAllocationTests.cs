using VmmSharp.Devices.Virtio.Mmio;
using VmmSharp.Devices.Virtio.Rng;
using VmmSharp.Memory;
using D = VmmSharp.Devices.Virtio.Queues.VirtqDescriptor;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>The device path (notification, pop, fill, push, interrupt) allocates nothing per request.</summary>
public sealed class DevicePathAllocationTests
{
    [Fact]
    public void Serving_a_thousand_rng_requests_allocates_nothing()
    {
        using var memory = GuestMemory.WithRam(1 << 20);
        using var rng = new VirtioRng();
        using var transport = new VirtioMmioTransport(rng, memory, 0xd000_0000, new NullLine());
        new MmioDriver(transport).Start();
        var ring = new TestRing(memory, rng.Queues[0], activate: false);
        for (int i = 0; i < 16; i++)
        {
            ring.SetDescriptor(i, TestRing.Data + ((ulong)i * 64), 64, D.FlagWrite);
        }
        void Round()
        {
            for (ushort i = 0; i < 16; i++)
            {
                ring.Offer(i);
            }
            transport.OnNotifyEvent();
        }
        Round(); // warm up: JIT, first-call paths

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int r = 0; r < 64; r++)
        {
            Round();
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(65 * 16, ring.UsedIdx);
        Assert.Equal(0, allocated);
    }

    private sealed class NullLine : VmmSharp.Devices.IIrqLine
    {
        public void Set(bool level)
        {
        }
    }
}

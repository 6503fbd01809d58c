using VmmSharp.Devices.Virtio.Block;
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

    [Fact]
    public void Serving_a_thousand_disk_reads_and_writes_allocates_nothing_on_the_disk_worker()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vmmsharp-blk-alloc-{Guid.NewGuid():N}.img");
        File.WriteAllBytes(path, new byte[1 << 20]);
        try
        {
            using var memory = GuestMemory.WithRam(4 << 20);
            using var disk = new VirtioBlock(path);
            using var transport = new VirtioMmioTransport(disk, memory, 0xd000_0000, new NullLine());
            new MmioDriver(transport).Start();
            var ring = new TestRing(memory, disk.Queues[0], activate: false);
            // 5 requests of 4 KiB in the 16-entry ring, 3 descriptors each (header, data, status), alternately reads and writes.
            const int PerRound = 5;
            const ulong Headers = 0x20000, Statuses = 0x21000, Buffers = 0x30000;
            for (int r = 0; r < PerRound; r++)
            {
                ulong header = Headers + ((ulong)r * 16);
                memory.Write(header, (uint)(r % 2)); // VIRTIO_BLK_T_IN, T_OUT
                memory.Write(header + 8, (ulong)r * 8);
                ushort d = (ushort)(r * 3);
                ushort dataFlags = (ushort)(D.FlagNext | (r % 2 == 0 ? D.FlagWrite : 0));
                ring.SetDescriptor(d, header, 16, D.FlagNext, (ushort)(d + 1));
                ring.SetDescriptor(d + 1, Buffers + ((ulong)r * 4096), 4096, dataFlags, (ushort)(d + 2));
                ring.SetDescriptor(d + 2, Statuses + (ulong)r, 1, D.FlagWrite);
            }
            int rounds = 0;
            void Round()
            {
                for (ushort r = 0; r < PerRound; r++)
                {
                    ring.Offer((ushort)(r * 3));
                }
                rounds++;
                transport.OnNotifyEvent();
                Assert.True(SpinWait.SpinUntil(() => (ushort)(rounds * PerRound) == ring.UsedIdx && disk.Completed == rounds * PerRound, TimeSpan.FromSeconds(10)),
                    "the disk's worker did not complete the requests");
            }
            Round(); // warm up: JIT, first-call paths
            Round();
            Assert.True(SpinWait.SpinUntil(() => disk.WorkerAllocatedBytes != 0, TimeSpan.FromSeconds(5)));
            long before = disk.WorkerAllocatedBytes;
            for (int i = 0; i < 200; i++)
            {
                Round();
            }
            Thread.Sleep(50); // the worker records its count after the batch's completion
            long allocated = disk.WorkerAllocatedBytes - before;

            Assert.Equal(202 * PerRound, disk.Completed);
            Assert.All(Enumerable.Range(0, PerRound), r => Assert.Equal(0, memory.Read<byte>(Statuses + (ulong)r)));
            Assert.Equal(0, allocated);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private sealed class NullLine : VmmSharp.Devices.IIrqLine
    {
        public void Set(bool level)
        {
        }
    }
}

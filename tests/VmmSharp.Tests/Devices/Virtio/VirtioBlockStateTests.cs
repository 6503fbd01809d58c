using VmmSharp.Devices.Virtio.Block;
using VmmSharp.Devices.Virtio.Mmio;
using VmmSharp.Memory;
using D = VmmSharp.Devices.Virtio.Queues.VirtqDescriptor;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>virtio-blk paused with requests in flight, and its state checked against the disk it is restored onto.</summary>
public sealed class VirtioBlockStateTests : IDisposable
{
    private const ulong Headers = 0x20000, Data = 0x100000, Statuses = 0x40000;
    private const int Requests = 64, SectorsPerRequest = 64;

    private readonly string _path = Path.Combine(Path.GetTempPath(), $"vmmsharp-blkstate-{Guid.NewGuid():N}.img");
    private readonly GuestMemory _memory = GuestMemory.WithRam(8 << 20);
    private readonly VirtioBlock _disk;
    private readonly VirtioMmioTransport _transport;
    private readonly TestRing _ring;

    public VirtioBlockStateTests()
    {
        File.WriteAllBytes(_path, new byte[Requests * SectorsPerRequest * 512]);
        _disk = new VirtioBlock(_path);
        _transport = new VirtioMmioTransport(_disk, _memory, 0xd000_0000, new RecordingIrqLine());
        new MmioDriver(_transport).Start(queueSize: 256);
        _ring = new TestRing(_memory, _disk.Queues[0], activate: false);
    }

    public void Dispose()
    {
        _transport.Dispose();
        _disk.Dispose();
        _memory.Dispose();
        File.Delete(_path);
    }

    [Fact]
    public void Pause_returns_with_every_request_the_worker_took_completed()
    {
        for (int i = 0; i < Requests; i++)
        {
            OfferWrite(i);
        }
        _transport.OnNotifyEvent();
        Assert.True(SpinWait.SpinUntil(() => _disk.Queues[0].NextAvail > 0, TimeSpan.FromSeconds(10)), "the worker took nothing");

        _disk.Pause();

        // Nothing in flight: every chain taken is in the used ring, with its status written.
        ushort taken = _disk.Queues[0].NextAvail;
        Assert.Equal(taken, _disk.Queues[0].NextUsed);
        Assert.Equal(taken, _ring.UsedIdx);
        for (int i = 0; i < taken; i++)
        {
            Assert.Equal(0, _memory.Read<byte>(Statuses + (ulong)i));
        }
        _disk.Resume();
    }

    [Fact]
    public void A_paused_disk_serves_nothing_until_resumed()
    {
        _disk.Pause();
        OfferWrite(0);
        _transport.OnNotifyEvent();
        Thread.Sleep(200);
        Assert.Equal(0, _ring.UsedIdx);

        _disk.Resume();

        Assert.True(SpinWait.SpinUntil(() => _ring.UsedIdx == 1, TimeSpan.FromSeconds(10)), "the notification held during the pause was not served");
    }

    [Fact]
    public void A_disk_of_another_size_refuses_the_state()
    {
        string other = _path + ".other";
        File.WriteAllBytes(other, new byte[4096]);
        try
        {
            using var disk = new VirtioBlock(other);
            using var transport = new VirtioMmioTransport(disk, _memory, 0xd000_0000, new RecordingIrqLine());
            string message = StateRoundTrip.Refused(transport, StateRoundTrip.Save(_transport));
            Assert.Contains($"capacity {Requests * SectorsPerRequest}", message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(other);
        }
    }

    [Fact]
    public void A_read_only_disk_refuses_the_state_of_a_writable_one()
    {
        using var disk = new VirtioBlock(_path, readOnly: true);
        using var transport = new VirtioMmioTransport(disk, _memory, 0xd000_0000, new RecordingIrqLine());
        Assert.Contains("device features", StateRoundTrip.Refused(transport, StateRoundTrip.Save(_transport)), StringComparison.Ordinal);
    }

    /// <summary>Request <paramref name="i"/>: a write of <see cref="SectorsPerRequest"/> sectors with descriptors 3i..3i+2.</summary>
    private void OfferWrite(int i)
    {
        ulong header = Headers + ((ulong)i * 16);
        _memory.Write(header, 1u); // VIRTIO_BLK_T_OUT
        _memory.Write(header + 8, (ulong)(i * SectorsPerRequest));
        _memory.Write(Statuses + (ulong)i, (byte)0xff);
        int d = i * 3;
        _ring.SetDescriptor(d, header, 16, D.FlagNext, (ushort)(d + 1));
        _ring.SetDescriptor(d + 1, Data, SectorsPerRequest * 512, D.FlagNext, (ushort)(d + 2));
        _ring.SetDescriptor(d + 2, Statuses + (ulong)i, 1, D.FlagWrite);
        _ring.Offer((ushort)d);
    }
}

using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using VmmSharp.Machine;
using VmmSharp.Tests.Guests;
using VmmSharp.Tests.Machine;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>
/// The C virtio test guest's hostile variants (<c>hostile=CASE</c>, tests/guests/virtio/hostile.c): each submits one
/// malformed request on the disk. The device answers it (an error status, or DEVICE_NEEDS_RESET with a
/// configuration-change interrupt and one warning in the log), the other device (rng) still answers, the disk works
/// again after the driver resets it, no image file changes, and the run ends with the guest's own debug exit.
/// </summary>
public sealed class VirtioHostileGuestTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);
    private readonly string _disk = NewFile(1 << 20);
    private readonly string _readOnlyDisk = NewFile(64 * 1024);

    public void Dispose()
    {
        File.Delete(_disk);
        File.Delete(_readOnlyDisk);
    }

    [Theory]
    [InlineData("long", "indirect table of 300 descriptors is longer than the 256 the chain has room for")]
    [InlineData("loop", "chain from head 0 is longer than the queue size 16 (a loop?)")]
    [InlineData("indirect-loop", "indirect chain is longer than its table of 3 descriptors (a loop?)")]
    [InlineData("nested", "indirect descriptor inside an indirect table")]
    [InlineData("overflow", "buffer at 0xfffffffffffff000 of 8192 bytes is outside guest memory")]
    [InlineData("avail", "available index 18 is 17 entries ahead of the device's 1, more than the queue size 16")]
    [InlineData("head", "descriptor index 200 is out of range (queue size 16)")]
    [InlineData("outside-read", "of 8192 bytes is outside guest memory")]
    [InlineData("outside-write", "buffer at 0x4000000000 of 4096 bytes is outside guest memory")]
    [InlineData("nostatus", "has no status byte to answer in")]
    [InlineData("ring", "used ring at 0x4010000 of 16 entries is outside guest memory")]
    public void A_malformed_chain_makes_the_disk_need_a_reset_and_the_vmm_carries_on(string name, string reason)
    {
        KvmRequirement.Ensure();
        var logger = new RecordingLogger();
        MachineRun run = Run(name, logger, out bool unchanged);

        run.AssertLine($"HOSTILE case={name} device_status=0x4f needs_reset=1 used=0 blk_status=255 interrupt=0x2");
        string[] warnings = [.. logger.Entries.Where(e => e.Level >= LogLevel.Warning && e.Message.Contains("virtio-blk", StringComparison.Ordinal)).Select(e => e.Message)];
        string warning = Assert.Single(warnings); // logged once
        Assert.Contains(reason, warning, StringComparison.Ordinal);
        AssertStillServing(run, unchanged);
    }

    [Theory]
    [InlineData("header")]          // an 8-byte request header
    [InlineData("sector-overflow")] // sector * 512 past 2^64
    [InlineData("rodisk")]          // a write to the read-only disk
    public void A_bad_request_gets_ioerr_and_the_disk_keeps_working(string name)
    {
        KvmRequirement.Ensure();
        var logger = new RecordingLogger();
        MachineRun run = Run(name, logger, out bool unchanged);

        run.AssertLine($"HOSTILE case={name} device_status=0xf needs_reset=0 used=1 blk_status=1 interrupt=0x1");
        Assert.DoesNotContain(logger.Entries, e => e.Level >= LogLevel.Warning && e.Message.Contains("virtio-blk", StringComparison.Ordinal));
        AssertStillServing(run, unchanged);
    }

    [Fact]
    public void Buffers_whose_lengths_add_up_past_4_GiB_make_the_disk_need_a_reset()
    {
        KvmRequirement.Ensure();
        var logger = new RecordingLogger();
        // Five 1 GiB buffers, each inside RAM: the guest gets 2 GiB (mapped, never touched).
        MachineRun run = Run("sum-overflow", logger, out bool unchanged, memory: 2UL << 30);

        run.AssertLine("HOSTILE case=sum-overflow device_status=0x4f needs_reset=1 used=0 blk_status=255 interrupt=0x2");
        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("the chain's buffers add up to more than 4 GiB", StringComparison.Ordinal));
        AssertStillServing(run, unchanged);
    }

    [Fact]
    public void A_read_into_a_buffer_past_the_end_of_ram_writes_nothing_into_the_part_inside()
    {
        KvmRequirement.Ensure();
        MachineRun run = Run("outside-read", new RecordingLogger(), out bool unchanged);

        run.AssertLine("HOSTILE canary intact=1");
        AssertStillServing(run, unchanged);
    }

    private MachineRun Run(string name, RecordingLogger logger, out bool unchanged, ulong memory = 64UL << 20)
    {
        byte[] disk = SHA256.HashData(File.ReadAllBytes(_disk)), readOnly = SHA256.HashData(File.ReadAllBytes(_readOnlyDisk));
        MachineRun run = MachineRun.Start(new MachineOptions(TestGuests.VirtioKernel)
        {
            CommandLine = $"hostile={name}",
            MemorySize = memory,
            Disks = [new DiskOptions(_disk), new DiskOptions(_readOnlyDisk) { ReadOnly = true }],
            Rng = true,
            Logger = logger,
        }, Deadline);
        unchanged = disk.AsSpan().SequenceEqual(SHA256.HashData(File.ReadAllBytes(_disk)))
            && readOnly.AsSpan().SequenceEqual(SHA256.HashData(File.ReadAllBytes(_readOnlyDisk)));
        return run;
    }

    /// <summary>rng answered after the failure, the disk answered again after a reset, the files are as they were, the guest ended the run.</summary>
    private static void AssertStillServing(MachineRun run, bool unchanged)
    {
        run.AssertLineStartsWith("RNG bytes=16 asked=16 ");
        run.AssertLine("HOSTILE reset status=0x0");
        run.AssertLine("HOSTILE recovered read status=0 device_status=0xf");
        run.AssertDone();
        Assert.True(unchanged, "an image file changed");
    }

    private static string NewFile(int size)
    {
        string path = Path.Combine(Path.GetTempPath(), $"vmmsharp-hostile-{Guid.NewGuid():N}.img");
        byte[] bytes = new byte[size];
        for (int i = 0; i < size; i++)
        {
            bytes[i] = (byte)(i * 7 % 251);
        }
        File.WriteAllBytes(path, bytes);
        return path;
    }
}

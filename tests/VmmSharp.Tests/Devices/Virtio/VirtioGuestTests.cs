using System.Buffers.Binary;
using System.Security.Cryptography;
using VmmSharp.Devices.Virtio;
using VmmSharp.Machine;
using VmmSharp.Tests.Guests;
using VmmSharp.Tests.Machine;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>
/// The freestanding C virtio test guest (tests/guests/virtio, <see cref="TestGuests.VirtioKernel"/>) drives the PC
/// machine's virtio-blk and virtio-rng devices with its own virtio-mmio driver, found through the ACPI DSDT (or the
/// command line); the host checks what reached the image files.
/// </summary>
public sealed class VirtioGuestTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(180);
    private const int DiskSectors = 8192; // 4 MiB: the guest's pattern loop is emulated CPL0 code
    private const int TailBytes = 100;    // past the last whole sector: not part of the disk
    private const string Serial = "VMMSHARP-SERIAL-1";

    private readonly List<string> _files = [];

    public void Dispose()
    {
        foreach (string f in _files)
        {
            File.Delete(f);
        }
    }

    [Fact]
    public void The_guest_writes_a_pattern_over_the_whole_disk_with_requests_in_flight_and_the_host_file_holds_it_after_the_flush()
    {
        KvmRequirement.Ensure();
        string disk = NewFile(DiskSectors * 512 + TailBytes, 0xee);
        byte[] tail = File.ReadAllBytes(disk)[^TailBytes..];
        ulong negotiated = 0;
        MachineRun run = MachineRun.Start(new MachineOptions(TestGuests.VirtioKernel)
        {
            CommandLine = "blk",
            MemorySize = 64UL << 20,
            Disks = [new DiskOptions(disk) { Serial = Serial }],
        }, Deadline, afterRun: m => negotiated = m.VirtioDevices[0].Device.DriverFeatures);

        run.AssertLine($"BLK 0 write sectors={DiskSectors} requests=32 inflight=4 errors=0");
        run.AssertLine("BLK 0 flush status=0");
        run.AssertDone();
        byte[] image = File.ReadAllBytes(disk);
        Assert.Equal(DiskSectors * 512 + TailBytes, image.Length);
        Assert.Null(FirstPatternMismatch(image, DiskSectors));
        Assert.Equal(tail, image[^TailBytes..]); // the partial sector past the disk's end was not touched
        Assert.True((negotiated & VirtioFeatures.RingEventIdx) != 0, "the guest negotiates EVENT_IDX");
    }

    [Fact]
    public void The_guest_reads_the_whole_disk_back_through_indirect_descriptors_and_finds_its_pattern()
    {
        KvmRequirement.Ensure();
        string disk = NewFile(DiskSectors * 512, 0);
        MachineRun run = MachineRun.Start(new MachineOptions(TestGuests.VirtioKernel)
        {
            CommandLine = "blk",
            MemorySize = 64UL << 20,
            Disks = [new DiskOptions(disk)],
        }, Deadline);

        // The guest poisons the words it checks before each read: a read that did not happen cannot pass.
        run.AssertLine($"BLK 0 read sectors={DiskSectors} requests=32 inflight=4 indirect=1 errors=0 mismatches=0");
        run.AssertDone();
    }

    [Fact]
    public void The_guest_gets_the_disk_serial_through_get_id()
    {
        KvmRequirement.Ensure();
        string disk = NewFile(DiskSectors * 512, 0);
        MachineRun run = MachineRun.Start(new MachineOptions(TestGuests.VirtioKernel)
        {
            CommandLine = "blk",
            MemorySize = 64UL << 20,
            Disks = [new DiskOptions(disk) { Serial = Serial }],
        }, Deadline);

        run.AssertLine($"BLK 0 id status=0 serial={Serial}");
        run.AssertDone();
    }

    [Fact]
    public void A_read_only_disk_answers_the_guests_write_with_ioerr_and_its_file_is_unchanged()
    {
        KvmRequirement.Ensure();
        string disk = NewFile(64 * 1024, 0x5a);
        File.WriteAllBytes(disk, [.. "READ-ONLY DISK!!"u8, .. File.ReadAllBytes(disk)[16..]]);
        byte[] before = SHA256.HashData(File.ReadAllBytes(disk));
        MachineRun run = MachineRun.Start(new MachineOptions(TestGuests.VirtioKernel)
        {
            CommandLine = "blk",
            MemorySize = 64UL << 20,
            Disks = [new DiskOptions(disk) { ReadOnly = true }],
        }, Deadline);

        run.AssertLineStartsWith("BLK 0 capacity=128 ro=1 ");
        run.AssertLine("BLK 0 ro write status=1"); // VIRTIO_BLK_S_IOERR
        run.AssertLine("BLK 0 ro read status=0 first=READ-ONLY DISK!!");
        run.AssertDone();
        Assert.Equal(before, SHA256.HashData(File.ReadAllBytes(disk)));
    }

    [Fact]
    public void The_guest_finds_every_device_in_the_dsdt_alone()
    {
        KvmRequirement.Ensure();
        string disk = NewFile(64 * 1024, 0);
        MachineRun run = MachineRun.Start(new MachineOptions(TestGuests.VirtioKernel)
        {
            CommandLine = "",
            MemorySize = 64UL << 20,
            VirtioOnCommandLine = false, // nothing on the command line: only the DSDT can tell
            Disks = [new DiskOptions(disk)],
            Rng = true,
        }, Deadline);

        run.AssertLine("VIRTIO discover=acpi found=2");
        run.AssertLine("VIRTIO dev 0 base=0xd0000000 size=0x1000 gsi=5 id=2");
        run.AssertLine("VIRTIO dev 1 base=0xd0001000 size=0x1000 gsi=6 id=4");
        run.AssertDone();
    }

    [Fact]
    public void The_guest_finds_the_devices_on_its_command_line()
    {
        KvmRequirement.Ensure();
        string disk = NewFile(64 * 1024, 0);
        MachineRun run = MachineRun.Start(new MachineOptions(TestGuests.VirtioKernel)
        {
            CommandLine = "discover=cmdline",
            MemorySize = 64UL << 20,
            Disks = [new DiskOptions(disk)],
            Rng = true,
        }, Deadline);

        run.AssertLine("VIRTIO discover=cmdline found=2");
        run.AssertLine("VIRTIO dev 0 base=0xd0000000 size=0x1000 gsi=5 id=2");
        run.AssertLine("VIRTIO dev 1 base=0xd0001000 size=0x1000 gsi=6 id=4");
        run.AssertDone();
    }

    [Fact]
    public void The_guest_reads_random_bytes_of_the_size_it_asked_for()
    {
        KvmRequirement.Ensure();
        long provided = 0;
        MachineRun run = MachineRun.Start(new MachineOptions(TestGuests.VirtioKernel)
        {
            CommandLine = "rng",
            MemorySize = 64UL << 20,
            Rng = true,
        }, Deadline, afterRun: m => provided = ((VmmSharp.Devices.Virtio.Rng.VirtioRng)m.VirtioDevices[0].Device).BytesProvided);

        run.AssertLineStartsWith("RNG bytes=64 asked=64 distinct=");
        run.AssertLineStartsWith("RNG bytes=512 asked=512 distinct=");
        run.AssertLine("RNG ok"); // the guest also checks the bytes are not all the same
        run.AssertDone();
        Assert.Equal(64 + 512, provided);
    }

    /// <summary>
    /// The guest's pattern (tests/guests/virtio/blk.c): dword k of sector s is s, ~s, or
    /// ((s % 256) * 128 + k) * 0x9e3779b1 + 0x7f4a7c15.
    /// </summary>
    internal static uint PatternWord(uint sector, uint k) => k switch
    {
        0 => sector,
        1 => ~sector,
        _ => unchecked((((sector % 256) * 128) + k) * 0x9e3779b1u + 0x7f4a7c15u),
    };

    private static string? FirstPatternMismatch(byte[] image, int sectors)
    {
        for (uint s = 0; s < sectors; s++)
        {
            for (uint k = 0; k < 128; k++)
            {
                uint got = BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan((int)((s * 512) + (k * 4))));
                if (got != PatternWord(s, k))
                {
                    return $"sector {s} dword {k}: 0x{got:x8}, expected 0x{PatternWord(s, k):x8}";
                }
            }
        }
        return null;
    }

    private string NewFile(int size, byte fill)
    {
        string path = Path.Combine(Path.GetTempPath(), $"vmmsharp-vguest-{Guid.NewGuid():N}.img");
        byte[] bytes = new byte[size];
        Array.Fill(bytes, fill);
        File.WriteAllBytes(path, bytes);
        _files.Add(path);
        return path;
    }
}

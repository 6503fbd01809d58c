using System.Buffers.Binary;
using VmmSharp.Machine;
using VmmSharp.Snapshot;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Snapshot;

/// <summary>
/// Every kind of bad snapshot gives one clear error naming the value, and leaves nothing running. Runs alone (with the
/// soak test): one test counts the whole process's descriptors, which other tests running beside it would change.
/// </summary>
[Collection(VmmSharp.Tests.Vm.SoakGroup.Name)]
public sealed class BadSnapshotTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vmmsharp-bad-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(byte[] state)
    {
        string path = Path.Combine(_dir, "state");
        File.WriteAllBytes(path, state);
        return path;
    }

    private static SnapshotFormatException RestoreFails(string state, string memory)
        => Assert.Throws<SnapshotFormatException>(() => PcMachine.Restore(state, memory).Dispose());

    private static int OpenDescriptors() => Directory.GetFiles("/proc/self/fd").Length;

    [Fact]
    public void ATruncatedStateFileIsNamedTruncated()
    {
        KvmRequirement.Ensure();
        byte[] state = BadSnapshots.Good.State;
        string path = Write(state[..(state.Length / 2)]);
        SnapshotFormatException e = RestoreFails(path, BadSnapshots.Good.Memory);
        Assert.Contains($"truncated: {state.Length / 2} of its {state.Length} bytes", e.Message, StringComparison.Ordinal);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AFlippedByteFailsTheChecksum()
    {
        KvmRequirement.Ensure();
        byte[] state = (byte[])BadSnapshots.Good.State.Clone();
        state[state.Length / 2] ^= 0x40;
        SnapshotFormatException e = RestoreFails(Write(state), BadSnapshots.Good.Memory);
        Assert.Contains("is corrupt: CRC64", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnUnknownFormatVersionIsNamed()
    {
        KvmRequirement.Ensure();
        byte[] state = (byte[])BadSnapshots.Good.State.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(state.AsSpan(8), 7);
        SnapshotFormatException e = RestoreFails(Write(BadSnapshots.WithChecksum(state)), BadSnapshots.Good.Memory);
        Assert.Contains("format version 7; this build reads version 1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AFileThatIsNoSnapshotIsNamedByItsMagic()
    {
        KvmRequirement.Ensure();
        SnapshotFormatException e = RestoreFails(Write("#!/bin/sh\necho not a snapshot at all\n"u8.ToArray()), BadSnapshots.Good.Memory);
        Assert.Contains("is not a VmmSharp snapshot (magic 2321", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnUnknownSectionVersionIsNamed()
    {
        KvmRequirement.Ensure();
        SnapshotFile good = SnapshotFile.Parse(BadSnapshots.Good.State);
        var file = new SnapshotFile(good.WriterVersion);
        foreach (SnapshotFile.Section s in good.Sections)
        {
            file.Add(s.Name, s.Name == "kvm" ? (ushort)9 : s.Version, s.Data);
        }
        SnapshotFormatException e = RestoreFails(Write(file.ToBytes()), BadSnapshots.Good.Memory);
        Assert.Contains("kvm: state version 9 is unknown", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AMemoryFileOfTheWrongSizeIsRefusedWithBothSizes()
    {
        KvmRequirement.Ensure();
        string memory = Path.Combine(_dir, "mem");
        File.Copy(BadSnapshots.Good.Memory, memory);
        using (var f = new FileStream(memory, FileMode.Open))
        {
            f.SetLength(8 << 20);
        }
        SnapshotFormatException e = RestoreFails(Write(BadSnapshots.Good.State), memory);
        Assert.Contains($"memory file '{memory}' is {8 << 20} bytes, but snapshot", e.Message, StringComparison.Ordinal);
        Assert.Contains($"{16 << 20} bytes of memory", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AMissingMemoryFileIsNamed()
    {
        KvmRequirement.Ensure();
        string memory = Path.Combine(_dir, "nothing-here");
        SnapshotFormatException e = RestoreFails(Write(BadSnapshots.Good.State), memory);
        Assert.Contains($"memory file '{memory}' does not exist", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CpuidFeaturesTheHostLacksAreRefusedAndNothingIsLeftBehind()
    {
        KvmRequirement.Ensure();
        // Give the saved guest a CPUID bit no host offers: leaf 7.0 EDX bit 1 is reserved.
        SnapshotFile good = SnapshotFile.Parse(BadSnapshots.Good.State);
        var file = new SnapshotFile(good.WriterVersion);
        foreach (SnapshotFile.Section s in good.Sections)
        {
            file.Add(s.Name, s.Version, s.Name == "kvm" ? BadSnapshots.WithReservedCpuidBit(s.Data) : s.Data);
        }
        string state = Write(file.ToBytes());
        _ = PcMachine.HostVirtualization; // warm up what the first machine opens once per process
        int before = OpenDescriptors();
        SnapshotFormatException e = RestoreFails(state, BadSnapshots.Good.Memory);
        Assert.Contains("CPUID features this host lacks: leaf 0x7.0 EDX bits 0x2", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, OpenDescriptors()); // the VM, its vCPUs and the memory file's mapping were all released
    }

    [Fact]
    public void TheParserRefusesSectionCountsAndLengthsBeyondTheFile()
    {
        byte[] state = new SnapshotFile("test").ToBytes();
        // Section count 1 with nothing after it: the count is inside, the section is not.
        int countAt = state.Length - 8 - 4;
        BinaryPrimitives.WriteInt32LittleEndian(state.AsSpan(countAt), 1);
        SnapshotFormatException e = Assert.Throws<SnapshotFormatException>(() => SnapshotFile.Parse(BadSnapshots.WithChecksum(state), "s"));
        Assert.Contains("state ends before section 0 name", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheParserRefusesANonZeroReservedHeaderField()
    {
        // Found by the snapshot-file fuzz target: a parsed file must write back the bytes it was read from.
        byte[] state = new SnapshotFile("test").ToBytes();
        BinaryPrimitives.WriteUInt16LittleEndian(state.AsSpan(10), 0x7f);
        SnapshotFormatException e = Assert.Throws<SnapshotFormatException>(() => SnapshotFile.Parse(BadSnapshots.WithChecksum(state), "s"));
        Assert.Contains("0x007f in its reserved header field", e.Message, StringComparison.Ordinal);
    }
}

using System.Buffers.Binary;
using VmmSharp.Kvm;
using VmmSharp.Machine;
using VmmSharp.Snapshot;
using VmmSharp.State;
using VmmSharp.Tests.Support;
using VmmSharp.Vm;

namespace VmmSharp.Tests.Snapshot;

/// <summary>
/// One good snapshot of a running 16 MiB guest, taken once per test run, and the bad snapshots made from it: each kind
/// the restore must refuse, with the words its one-line error must contain.
/// </summary>
internal static class BadSnapshots
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private static readonly Lazy<(byte[] State, string Memory)> GoodSnapshot = new(Take);

    /// <summary>The kinds <see cref="Make"/> knows.</summary>
    public static readonly string[] Kinds = ["truncated", "checksum", "version", "memory-size", "missing-state", "missing-memory", "cpuid"];

    /// <summary>The good snapshot's state file bytes and its memory file.</summary>
    public static (byte[] State, string Memory) Good => GoodSnapshot.Value;

    /// <summary>Writes a bad snapshot of <paramref name="kind"/> into <paramref name="dir"/>: its files and what its error must say.</summary>
    public static (string State, string Memory, string Expected) Make(string kind, string dir)
    {
        byte[] good = Good.State;
        string state = Path.Combine(dir, $"{kind}.state"), memory = Good.Memory;
        switch (kind)
        {
            case "truncated":
                File.WriteAllBytes(state, good[..(good.Length / 2)]);
                return (state, memory, $"is truncated: {good.Length / 2} of its {good.Length} bytes");
            case "checksum":
                byte[] flipped = (byte[])good.Clone();
                flipped[flipped.Length / 2] ^= 0x40;
                File.WriteAllBytes(state, flipped);
                return (state, memory, "is corrupt: CRC64");
            case "version":
                byte[] versioned = (byte[])good.Clone();
                BinaryPrimitives.WriteUInt16LittleEndian(versioned.AsSpan(8), 7);
                File.WriteAllBytes(state, WithChecksum(versioned));
                return (state, memory, "format version 7; this build reads version 1");
            case "memory-size":
                File.WriteAllBytes(state, good);
                memory = Path.Combine(dir, "short.mem");
                File.Copy(Good.Memory, memory, overwrite: true);
                using (var f = new FileStream(memory, FileMode.Open))
                {
                    f.SetLength(8 << 20);
                }
                return (state, memory, $"memory file '{memory}' is {8 << 20} bytes, but snapshot '{state}' is of a guest with {16 << 20} bytes");
            case "missing-state":
                return (state, memory, $"snapshot '{state}' cannot be read");
            case "missing-memory":
                File.WriteAllBytes(state, good);
                memory = Path.Combine(dir, "nothing-here.mem");
                return (state, memory, $"memory file '{memory}' does not exist");
            case "cpuid":
                SnapshotFile parsed = SnapshotFile.Parse(good);
                var file = new SnapshotFile(parsed.WriterVersion);
                foreach (SnapshotFile.Section s in parsed.Sections)
                {
                    file.Add(s.Name, s.Version, s.Name == "kvm" ? WithReservedCpuidBit(s.Data) : s.Data);
                }
                File.WriteAllBytes(state, file.ToBytes());
                return (state, memory, "CPUID features this host lacks: leaf 0x7.0 EDX bits 0x2");
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "no such bad snapshot");
        }
    }

    /// <summary>The state bytes with their CRC64 recomputed.</summary>
    public static byte[] WithChecksum(byte[] state)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(state.AsSpan(state.Length - 8), System.IO.Hashing.Crc64.HashToUInt64(state.AsSpan(0, state.Length - 8)));
        return state;
    }

    /// <summary>The KVM section with vCPU 0's leaf 7.0 EDX bit 1 set (reserved: no CPU has it).</summary>
    public static byte[] WithReservedCpuidBit(byte[] kvm)
    {
        var reader = new StateReader(kvm, "kvm");
        var vmState = new VmSavedState();
        reader.ReadSection(vmState, "vm");
        int count = reader.ReadInt32("count");
        var vcpus = new VcpuSavedState[count];
        for (int i = 0; i < count; i++)
        {
            vcpus[i] = new VcpuSavedState();
            reader.ReadSection(vcpus[i], "vcpu");
        }
        KvmCpuidEntry[] cpuid = vcpus[0].Cpuid;
        int leaf7 = Array.FindIndex(cpuid, c => c.Function == 7 && c.Index == 0);
        Assert.True(leaf7 >= 0, "the guest has no CPUID leaf 7");
        cpuid[leaf7].Edx |= 0x2;
        var writer = new StateWriter();
        writer.WriteSection(vmState);
        writer.WriteInt32(count);
        foreach (VcpuSavedState v in vcpus)
        {
            writer.WriteSection(v);
        }
        return writer.WrittenSpan.ToArray();
    }

    /// <summary>The saved vCPUs of a state file's KVM section.</summary>
    public static VcpuSavedState[] Vcpus(byte[] stateFile)
    {
        SnapshotFile.Section kvm = SnapshotFile.Parse(stateFile).Get("kvm");
        var reader = new StateReader(kvm.Data, "kvm");
        reader.ReadSection(new VmSavedState(), "vm");
        var vcpus = new VcpuSavedState[reader.ReadInt32("count")];
        for (int i = 0; i < vcpus.Length; i++)
        {
            vcpus[i] = new VcpuSavedState();
            reader.ReadSection(vcpus[i], "vcpu");
        }
        return vcpus;
    }

    private static (byte[] State, string Memory) Take()
    {
        KvmRequirement.Ensure();
        string dir = Directory.CreateTempSubdirectory("vmmsharp-good-").FullName;
        string kernel = Path.Combine(dir, "k");
        File.WriteAllBytes(kernel, SnapshotGuests.XorshiftCounter(1UL << 40));
        using var console = new CapturedConsole();
        using var machine = new PcMachine(new MachineOptions(kernel) { MemorySize = 16 << 20, Console = console.Console });
        Task<MachineResult> run = Task.Factory.StartNew(machine.Run, TaskCreationOptions.LongRunning);
        Assert.True(SpinWait.SpinUntil(() => console.Text.Contains('.', StringComparison.Ordinal), Bound));
        machine.Pause();
        machine.CreateSnapshot(Path.Combine(dir, "state"), Path.Combine(dir, "mem"));
        machine.RequestStop(0, "done");
        Assert.True(run.Wait(Bound));
        return (File.ReadAllBytes(Path.Combine(dir, "state")), Path.Combine(dir, "mem"));
    }
}

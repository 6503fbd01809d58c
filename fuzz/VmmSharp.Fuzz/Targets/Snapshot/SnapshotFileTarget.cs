using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using VmmSharp.Kvm;
using VmmSharp.Snapshot;
using VmmSharp.State;
using VmmSharp.Vm;

namespace VmmSharp.Fuzz.Targets.Snapshot;

/// <summary>
/// The snapshot state file's parser, and the KVM state sections in it: any input is parsed or refused with
/// <see cref="SnapshotFormatException"/>; a parsed file writes back byte for byte; a "kvm" section is read or refused
/// with <see cref="StateFormatException"/>. The harness repairs the header's length and the CRC64 so the fuzzer gets past them.
/// </summary>
internal sealed class SnapshotFileTarget : IFuzzTarget
{
    private const int HeaderLength = 20;

    public string Name => "snapshot-file";

    public void Run(ReadOnlySpan<byte> input)
    {
        byte[] bytes = input.ToArray();
        if (bytes.Length >= HeaderLength + 8)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(12), (ulong)bytes.Length);
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(bytes.Length - 8), Crc64.HashToUInt64(bytes.AsSpan(0, bytes.Length - 8)));
        }
        SnapshotFile file;
        try
        {
            file = SnapshotFile.Parse(bytes, "input");
        }
        catch (SnapshotFormatException e)
        {
            Rejection.Note(e);
            return;
        }
        FuzzCheckException.Check(file.ToBytes().AsSpan().SequenceEqual(bytes), "a parsed snapshot did not write back the same bytes");
        if (file.Sections.FirstOrDefault(s => s.Name == "kvm") is { } kvm)
        {
            try
            {
                var reader = new StateReader(kvm.Data, "kvm");
                reader.ReadSection(new VmSavedState(), "vm");
                int count = reader.ReadInt32("vCPU count");
                for (int i = 0; i < count && reader.Remaining > 0; i++)
                {
                    reader.ReadSection(new VcpuSavedState(), $"vcpu{i}");
                }
            }
            catch (StateFormatException e)
            {
                Rejection.Note(e);
            }
        }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        var empty = new SnapshotFile("0.1.0");
        yield return ("empty.bin", empty.ToBytes());

        var kvm = new StateWriter();
        kvm.WriteSection(new VmSavedState());
        kvm.WriteInt32(1);
        kvm.WriteUInt16(1); // a vCPU section of version 1, every KVM structure zero
        var vcpu = new StateWriter();
        vcpu.WriteBytes([]); // CPUID
        vcpu.WriteUInt32(0); // MP state
        foreach (int size in (ReadOnlySpan<int>)[Marshal.SizeOf<KvmRegs>(), Marshal.SizeOf<KvmSregs>(), KvmXsave.Size, Marshal.SizeOf<KvmXcrs>(), Marshal.SizeOf<KvmDebugRegs>(), KvmLapicState.Size])
        {
            vcpu.WriteBytes(new byte[size]);
        }
        vcpu.WriteInt32(1); // one MSR: the TSC
        vcpu.WriteUInt32(0x10);
        vcpu.WriteUInt64(12345);
        vcpu.WriteBytes(new byte[Marshal.SizeOf<KvmVcpuEvents>()]);
        vcpu.WriteUInt32(0);
        kvm.WriteBytes(vcpu.WrittenSpan);
        var file = new SnapshotFile("0.1.0");
        file.Add("machine", 1, [1, 2, 3]);
        file.Add("kvm", 1, kvm.WrittenSpan.ToArray());
        file.Add("devices", 1, [0, 0, 0, 0]);
        yield return ("sections.bin", file.ToBytes());
    }
}

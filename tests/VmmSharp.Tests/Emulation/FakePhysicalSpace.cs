using VmmSharp.Emulation;

namespace VmmSharp.Tests.Emulation;

/// <summary>A guest-physical space for tests without KVM: RAM in a byte array from address 0, MMIO above it.</summary>
internal sealed class FakePhysicalSpace(int ramSize) : IGuestPhysicalSpace
{
    public byte[] Ram { get; } = new byte[ramSize];

    public bool TryGetRam(ulong address, int length, bool write, out Span<byte> ram)
    {
        if (address >= (ulong)Ram.Length || (ulong)length > (ulong)Ram.Length - address)
        {
            ram = default;
            return false;
        }
        ram = Ram.AsSpan((int)address, length);
        return true;
    }

    public void MmioRead(ulong address, Span<byte> data) => data.Fill(0xff);

    public void MmioWrite(ulong address, ReadOnlySpan<byte> data)
    {
    }

    public void Write64(ulong address, ulong value) => BitConverter.TryWriteBytes(Ram.AsSpan((int)address, 8), value);

    public void Write32(ulong address, uint value) => BitConverter.TryWriteBytes(Ram.AsSpan((int)address, 4), value);

    public ulong Read64(ulong address) => BitConverter.ToUInt64(Ram, (int)address);
}

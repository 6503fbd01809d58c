using VmmSharp.Buses;
using VmmSharp.Memory;

namespace VmmSharp.Emulation;

/// <summary>The guest-physical space of a VM: its <see cref="GuestMemory"/> as RAM, the rest on an <see cref="MmioBus"/>.</summary>
/// <param name="memory">The guest's RAM.</param>
/// <param name="mmio">The bus for the rest; null: reads see all ones, writes are dropped (an open bus).</param>
public sealed class GuestPhysicalSpace(GuestMemory memory, MmioBus? mmio = null) : IGuestPhysicalSpace
{
    /// <inheritdoc/>
    public bool TryGetRam(ulong address, int length, bool write, out Span<byte> ram)
    {
        GuestRegion? region = memory.Find(address);
        if (region is null || (write && region.ReadOnly) || length < 0 || (ulong)length > region.End - address)
        {
            ram = default;
            return false;
        }
        ram = region.HostSpan(address - region.GuestAddress, length);
        return true;
    }

    /// <inheritdoc/>
    public void MmioRead(ulong address, Span<byte> data)
    {
        if (mmio is null)
        {
            data.Fill(0xff);
            return;
        }
        mmio.Read(address, data);
    }

    /// <inheritdoc/>
    public void MmioWrite(ulong address, ReadOnlySpan<byte> data) => mmio?.Write(address, data);
}

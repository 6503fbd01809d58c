namespace VmmSharp.Emulation;

/// <summary>
/// The guest-physical address space as the emulation fallback sees it: RAM it may touch directly, and
/// everything else, which is MMIO. Small on purpose, so a test or a fuzz harness can supply a fake one.
/// </summary>
public interface IGuestPhysicalSpace
{
    /// <summary>
    /// A direct view of <paramref name="length"/> bytes of RAM at <paramref name="address"/>; false where RAM does
    /// not back the whole range, or is read-only and <paramref name="write"/> is set (an access there goes to MMIO,
    /// as KVM routes it). The view stays valid while the guest's memory exists.
    /// </summary>
    bool TryGetRam(ulong address, int length, bool write, out Span<byte> ram);

    /// <summary>An MMIO load of <c>data.Length</c> bytes (all ones where no device answers).</summary>
    void MmioRead(ulong address, Span<byte> data);

    /// <summary>An MMIO store of <c>data.Length</c> bytes (dropped where no device answers).</summary>
    void MmioWrite(ulong address, ReadOnlySpan<byte> data);
}

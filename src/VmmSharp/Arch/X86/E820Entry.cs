namespace VmmSharp.Arch.X86;

/// <summary>One range of the guest's physical memory map.</summary>
/// <param name="Address">The first byte.</param>
/// <param name="Size">The length in bytes.</param>
/// <param name="Type">What the range is.</param>
public readonly record struct E820Entry(ulong Address, ulong Size, E820Type Type)
{
    /// <summary>The first byte after the range.</summary>
    public ulong End => Address + Size;

    /// <inheritdoc/>
    public override string ToString() => $"[0x{Address:x}, 0x{End:x}) {Type}";
}

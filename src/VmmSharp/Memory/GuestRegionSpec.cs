namespace VmmSharp.Memory;

/// <summary>What a guest memory region should be: where, how large, and whether the guest may write it.</summary>
/// <param name="GuestAddress">Guest-physical address of the first byte; page-aligned.</param>
/// <param name="Size">Size in bytes; a non-zero multiple of the page size.</param>
/// <param name="ReadOnly">Whether the guest may only read it (a ROM).</param>
/// <remarks>Threading: immutable; any thread may use it.</remarks>
public readonly record struct GuestRegionSpec(ulong GuestAddress, ulong Size, bool ReadOnly = false);

namespace VmmSharp.Arch.X86;

/// <summary>The CPU mode a kernel is entered in.</summary>
public enum X86CpuMode
{
    /// <summary>32-bit protected mode, flat segments, paging off (PVH, Multiboot).</summary>
    Protected32,

    /// <summary>64-bit long mode with identity paging (Linux 64-bit boot protocol).</summary>
    Long64,
}

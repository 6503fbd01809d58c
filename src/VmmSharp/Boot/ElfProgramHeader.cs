namespace VmmSharp.Boot;

/// <summary>One ELF program header, widened to 64 bits whatever the file's class.</summary>
/// <param name="Index">The header's index in the file's table, for error messages.</param>
/// <param name="Type">p_type (1 = PT_LOAD, 4 = PT_NOTE).</param>
/// <param name="Flags">p_flags (1 = execute).</param>
/// <param name="Offset">p_offset: where the segment's bytes start in the file.</param>
/// <param name="VirtualAddress">p_vaddr.</param>
/// <param name="PhysicalAddress">p_paddr: where a loader without paging puts the segment.</param>
/// <param name="FileSize">p_filesz: bytes taken from the file.</param>
/// <param name="MemorySize">p_memsz: bytes in memory; the excess over <paramref name="FileSize"/> is zeroed.</param>
public readonly record struct ElfProgramHeader(
    int Index, uint Type, uint Flags, ulong Offset, ulong VirtualAddress, ulong PhysicalAddress, ulong FileSize, ulong MemorySize)
{
    /// <summary>PT_LOAD: a segment to load.</summary>
    public const uint Load = 1;

    /// <summary>PT_NOTE: a segment of notes.</summary>
    public const uint Note = 4;

    /// <summary>PF_X: executable.</summary>
    public const uint ExecuteFlag = 1;
}

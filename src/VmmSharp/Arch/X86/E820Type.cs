namespace VmmSharp.Arch.X86;

/// <summary>The type of an E820 memory map entry (the values the BIOS interface, Multiboot and PVH share).</summary>
public enum E820Type : uint
{
    /// <summary>Usable RAM.</summary>
    Ram = 1,

    /// <summary>Reserved: not for the OS.</summary>
    Reserved = 2,

    /// <summary>ACPI tables, reclaimable after reading.</summary>
    Acpi = 3,

    /// <summary>ACPI non-volatile storage.</summary>
    Nvs = 4,

    /// <summary>Defective RAM.</summary>
    Unusable = 5,
}

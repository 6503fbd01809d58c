namespace VmmSharp.Emulation;

/// <summary>How the guest translates linear addresses, as CR0.PG, CR4.PAE, EFER.LMA and CR4.LA57 select.</summary>
public enum PagingMode
{
    /// <summary>Paging off: linear addresses are physical.</summary>
    Off,

    /// <summary>32-bit paging: two levels of 4-byte entries, 4 MiB pages with CR4.PSE.</summary>
    Bits32,

    /// <summary>PAE paging: four PDPTEs, then two levels of 8-byte entries.</summary>
    Pae,

    /// <summary>4-level paging (long mode).</summary>
    FourLevel,

    /// <summary>5-level paging (long mode with CR4.LA57).</summary>
    FiveLevel,
}

/// <summary>The kind of access a translation is for; the values are the #PF error-code bits they set.</summary>
[Flags]
public enum AccessKind : uint
{
    /// <summary>A data read by supervisor code.</summary>
    Read = 0,

    /// <summary>A write.</summary>
    Write = 2,

    /// <summary>An access by user-mode (CPL3) code.</summary>
    User = 4,

    /// <summary>An instruction fetch.</summary>
    Fetch = 0x10,
}

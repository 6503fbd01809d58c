namespace VmmSharp.Guests;

/// <summary>Where a <see cref="TinyGuest"/> puts its tables, code and stack in guest memory.</summary>
public static class TinyGuestLayout
{
    /// <summary>The GDT.</summary>
    public const ulong Gdt = 0x1000;

    /// <summary>The IDT (empty unless the guest fills it: an exception then shuts the vCPU down).</summary>
    public const ulong Idt = 0x2000;

    /// <summary>The 64-bit TSS, whose RSP0 is <see cref="KernelStackTop"/>, followed by an I/O bitmap allowing every port.</summary>
    public const ulong Tss = 0x3000;

    /// <summary>The PML4; the PDPT and page directory follow it.</summary>
    public const ulong Pml4 = 0x20000;

    /// <summary>Where the code is assembled and entered; it may fill up to <see cref="Pml4"/>.</summary>
    public const ulong Code = 0x8000;

    /// <summary>A scratch area the guest code may use.</summary>
    public const ulong Data = 0x40000;

    /// <summary>The top of the CPL0 stack.</summary>
    public const ulong KernelStackTop = 0x7f000;

    /// <summary>The top of the initial stack.</summary>
    public const ulong StackTop = 0x80000;

    /// <summary>The least guest RAM a tiny guest needs.</summary>
    public const ulong MinimumMemory = 0x100000;

    /// <summary>GDT selectors.</summary>
    public const ushort KernelCode64 = 0x08, KernelData = 0x10, KernelCode32 = 0x18, UserData = 0x23, UserCode64 = 0x2b, TssSelector = 0x30;
}

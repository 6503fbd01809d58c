namespace VmmSharp.Boot;

/// <summary>The boot protocols a kernel image can speak.</summary>
public enum KernelFormat
{
    /// <summary>A Multiboot (v1, 0.6.96) kernel: ELF32 or a.out-kludge image with a Multiboot header.</summary>
    Multiboot,

    /// <summary>A Linux bzImage (setup header with "HdrS"), booted through the 64-bit boot protocol.</summary>
    BzImage,

    /// <summary>An ELF kernel with a Xen PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY), such as an uncompressed vmlinux.</summary>
    Pvh,
}

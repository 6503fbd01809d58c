namespace VmmSharp.Arch.X86;

/// <summary>Where a memory-mapped device sits: its register window and its interrupt.</summary>
/// <param name="Address">The window's guest-physical address.</param>
/// <param name="Size">The window's size in bytes.</param>
/// <param name="Gsi">The global system interrupt it raises (edge-triggered, active-high).</param>
public readonly record struct MmioDeviceSlot(ulong Address, ulong Size, uint Gsi)
{
    /// <summary>The kernel command-line form Linux's virtio_mmio driver takes: <c>virtio_mmio.device=4K@0xd0000000:5</c>.</summary>
    public string VirtioCommandLine => $"virtio_mmio.device={(Size % 1024 == 0 ? $"{Size / 1024}K" : $"{Size}")}@0x{Address:x}:{Gsi}";
}

namespace VmmSharp.Kvm;

/// <summary>
/// One KVM memory slot (<c>struct kvm_userspace_memory_region</c>): guest-physical
/// [<see cref="GuestAddress"/>, + <see cref="Size"/>) backed by host memory at <see cref="HostAddress"/>.
/// </summary>
/// <param name="Slot">The slot number.</param>
/// <param name="GuestAddress">Guest-physical address of the first byte; page-aligned.</param>
/// <param name="Size">Size in bytes; a page multiple. 0 deletes the slot.</param>
/// <param name="HostAddress">Host virtual address of the first byte; page-aligned.</param>
/// <param name="ReadOnly">Guest writes become MMIO exits (<c>KVM_MEM_READONLY</c>).</param>
/// <remarks>Threading: immutable; any thread may use it.</remarks>
public readonly record struct KvmMemorySlot(uint Slot, ulong GuestAddress, ulong Size, nint HostAddress, bool ReadOnly = false)
{
    /// <summary>Whether KVM logs the pages the guest writes (<c>KVM_MEM_LOG_DIRTY_PAGES</c>, read with <see cref="KvmVm.GetDirtyLog"/>).</summary>
    public bool LogDirtyPages { get; init; }

    /// <inheritdoc/>
    public override string ToString()
        => $"slot={Slot} guest_phys_addr=0x{GuestAddress:x} memory_size=0x{Size:x} userspace_addr=0x{HostAddress:x}{(ReadOnly ? " readonly" : "")}{(LogDirtyPages ? " log_dirty_pages" : "")}";
}

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

#pragma warning disable CA1051 // Interop structs mirror linux/kvm.h field for field.

namespace VmmSharp.Kvm;

/// <summary><c>struct kvm_lapic_state</c>: the local APIC's 1 KiB register page, as KVM saves it.</summary>
/// <remarks>Threading: a plain value, copied on assignment; no thread affinity.</remarks>
[InlineArray(Size)]
public struct KvmLapicState
{
    /// <summary>The size in bytes (<c>KVM_APIC_REG_SIZE</c>).</summary>
    public const int Size = 1024;

    private byte _element0;
}

/// <summary><c>struct kvm_pit_state2</c>: the in-kernel i8254's three channels and flags.</summary>
/// <remarks>Threading: a plain value, copied on assignment; no thread affinity.</remarks>
[InlineArray(Size)]
public struct KvmPitState2
{
    /// <summary>The size in bytes: three 24-byte channels, flags and nine reserved words.</summary>
    public const int Size = 112;

    private byte _element0;
}

/// <summary><c>struct kvm_clock_data</c>: the VM's kvmclock (<c>KVM_GET_CLOCK</c>).</summary>
/// <remarks>Threading: a plain value, copied on assignment; no thread affinity.</remarks>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmClockData
{
    /// <summary>The clock in nanoseconds.</summary>
    public ulong Clock;
    /// <summary><c>KVM_CLOCK_*</c> flags.</summary>
    public uint Flags;
    private uint _pad0;
    /// <summary>CLOCK_REALTIME at the reading, with <c>KVM_CLOCK_REALTIME</c>.</summary>
    public ulong Realtime;
    /// <summary>The host TSC at the reading, with <c>KVM_CLOCK_HOST_TSC</c>.</summary>
    public ulong HostTsc;
    private fixed uint _pad[4];
}

/// <summary>
/// <c>struct kvm_irqchip</c>: one in-kernel interrupt controller's state: <see cref="ChipId"/> 0 is the master
/// 8259, 1 the slave, 2 the IOAPIC; the 512-byte union holds its <c>kvm_pic_state</c> or <c>kvm_ioapic_state</c>.
/// </summary>
/// <remarks>Threading: a plain value, copied on assignment; no thread affinity.</remarks>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmIrqchip
{
    /// <summary>The master 8259.</summary>
    public const uint PicMaster = 0;
    /// <summary>The slave 8259.</summary>
    public const uint PicSlave = 1;
    /// <summary>The IOAPIC.</summary>
    public const uint IoApic = 2;

    /// <summary>Which controller.</summary>
    public uint ChipId;
    private uint _pad;
    /// <summary>Its state.</summary>
    public fixed byte Data[512];
}

// struct kvm_dirty_log: slot, padding, then a pointer to the caller's bitmap.
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KvmDirtyLog
{
    public uint Slot;
    public uint Padding;
    public ulong* Bitmap;
}

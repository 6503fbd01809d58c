namespace VmmSharp.Kvm;

/// <summary>
/// Why <see cref="KvmVcpu.EnterGuest"/> returned, copied out of the vCPU's <c>kvm_run</c> by
/// <see cref="KvmVcpu.LastExit"/>: for code that calls KVM_RUN itself instead of through a dispatcher (a
/// benchmark's bare loop, a minimal VMM). A copy, so it stays valid after the next KVM_RUN or a dispose; it
/// allocates nothing. Only the fields of its <see cref="Reason"/> are set, the others are zero. A dispatcher's
/// handlers get the writable views of <c>VcpuState</c> instead.
/// </summary>
/// <remarks>Threading: a copy; any thread may read it.</remarks>
public readonly struct KvmExit
{
    /// <summary>The exit reason, one of the <see cref="KvmExitReason"/> values.</summary>
    public uint Reason { get; init; }

    /// <summary>For a port-I/O exit: the port.</summary>
    public ushort IoPort { get; init; }

    /// <summary>For a port-I/O exit: the access size in bytes (1, 2 or 4).</summary>
    public int IoSize { get; init; }

    /// <summary>For a port-I/O exit: whether the guest wrote (OUT, OUTS).</summary>
    public bool IoIsWrite { get; init; }

    /// <summary>For a port-I/O exit: how many accesses a string instruction made; 1 otherwise.</summary>
    public int IoCount { get; init; }

    /// <summary>For a port-I/O write: the (first) value written, zero-extended.</summary>
    public uint IoValue { get; init; }

    /// <summary>For an MMIO exit: the guest-physical address.</summary>
    public ulong MmioAddress { get; init; }

    /// <summary>For an MMIO exit: the access length in bytes (1 to 8).</summary>
    public int MmioLength { get; init; }

    /// <summary>For an MMIO exit: whether the guest wrote.</summary>
    public bool MmioIsWrite { get; init; }

    /// <summary>For an MMIO write: the value written, little-endian, zero-extended.</summary>
    public ulong MmioValue { get; init; }

    internal static unsafe KvmExit From(KvmRun* run)
    {
        switch (run->ExitReason)
        {
            case KvmExitReason.Io:
                byte* data = (byte*)run + run->IoDataOffset;
                return new KvmExit
                {
                    Reason = KvmExitReason.Io,
                    IoPort = run->IoPort,
                    IoSize = run->IoSize,
                    IoIsWrite = run->IoDirection == 1,
                    IoCount = (int)run->IoCount,
                    IoValue = run->IoDirection != 1 ? 0 : run->IoSize switch { 1 => *data, 2 => *(ushort*)data, _ => *(uint*)data },
                };
            case KvmExitReason.Mmio:
                int length = (int)Math.Min(run->MmioLen, 8u);
                ulong value = 0;
                if (run->MmioIsWrite != 0)
                {
                    new ReadOnlySpan<byte>(run->MmioData, length).CopyTo(new Span<byte>(&value, 8));
                }
                return new KvmExit
                {
                    Reason = KvmExitReason.Mmio,
                    MmioAddress = run->MmioPhysAddr,
                    MmioLength = length,
                    MmioIsWrite = run->MmioIsWrite != 0,
                    MmioValue = value,
                };
            default:
                return new KvmExit { Reason = run->ExitReason };
        }
    }
}

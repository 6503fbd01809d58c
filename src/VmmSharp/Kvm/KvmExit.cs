namespace VmmSharp.Kvm;

/// <summary>
/// Why <see cref="KvmVcpu.EnterGuest"/> returned: a read-only view on the exit fields of the vCPU's
/// <c>kvm_run</c>, for code that calls KVM_RUN itself instead of through a dispatcher (a benchmark's bare
/// loop, a minimal VMM). It is valid until the next KVM_RUN on that vCPU, on the vCPU's thread; it copies
/// nothing and allocates nothing. A dispatcher's handlers get the writable views of <c>VcpuState</c> instead.
/// </summary>
public readonly unsafe ref struct KvmExit
{
    private readonly KvmRun* _run;

    internal KvmExit(KvmRun* run) => _run = run;

    /// <summary>The exit reason, one of the <see cref="KvmExitReason"/> values.</summary>
    public uint Reason => _run->ExitReason;

    /// <summary>For a port-I/O exit: the port.</summary>
    public ushort IoPort => _run->IoPort;

    /// <summary>For a port-I/O exit: the access size in bytes (1, 2 or 4).</summary>
    public int IoSize => _run->IoSize;

    /// <summary>For a port-I/O exit: whether the guest wrote (OUT, OUTS).</summary>
    public bool IoIsWrite => _run->IoDirection == 1;

    /// <summary>For a port-I/O exit: the data, <see cref="IoSize"/> bytes per access, one access per repetition.</summary>
    public ReadOnlySpan<byte> IoData => Reason == KvmExitReason.Io
        ? new ReadOnlySpan<byte>((byte*)_run + _run->IoDataOffset, _run->IoSize * (int)_run->IoCount)
        : default;
}

namespace VmmSharp.Dispatch;

/// <summary>
/// A vCPU's identity for operations from other threads (recall, release): the seed's <c>sel_sm_ec()</c>.
/// It is the KVM vCPU id.
/// </summary>
/// <param name="Value">The KVM vCPU id (the initial APIC id).</param>
/// <remarks>Threading: immutable; any thread may use it.</remarks>
public readonly record struct VcpuId(int Value)
{
    /// <inheritdoc/>
    public override string ToString() => $"vCPU {Value}";
}

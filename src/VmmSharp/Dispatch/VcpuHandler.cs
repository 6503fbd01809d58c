namespace VmmSharp.Dispatch;

/// <summary>
/// Handles one event of a vCPU on the dispatcher's thread while the guest waits. It reads and changes
/// guest state through <paramref name="state"/>, within the groups its MTD names; returning is the reply.
/// </summary>
/// <param name="state">The vCPU's state, showing the groups the handler's MTD names.</param>
/// <remarks>Threading: runs on the vCPU's dispatcher thread, one exit at a time, while the guest waits.</remarks>
public delegate void VcpuHandler(VcpuState state);

namespace VmmSharp.Devices.Virtio.Queues;

/// <summary>One buffer of a descriptor chain, already checked to lie in guest memory.</summary>
/// <param name="Address">The guest-physical address of its first byte.</param>
/// <param name="Length">Its length in bytes.</param>
/// <param name="IsWriteOnly">Whether the device writes it (else the device reads it).</param>
public readonly record struct ChainSegment(ulong Address, uint Length, bool IsWriteOnly);

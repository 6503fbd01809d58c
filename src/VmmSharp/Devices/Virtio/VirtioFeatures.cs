namespace VmmSharp.Devices.Virtio;

/// <summary>The device-independent feature bits (virtio 1.2 §6) VmmSharp's devices offer.</summary>
public static class VirtioFeatures
{
    /// <summary>VIRTIO_RING_F_INDIRECT_DESC: descriptors may point at tables of descriptors.</summary>
    public const ulong RingIndirectDesc = 1UL << 28;

    /// <summary>VIRTIO_RING_F_EVENT_IDX: used_event/avail_event suppress interrupts and notifications.</summary>
    public const ulong RingEventIdx = 1UL << 29;

    /// <summary>VIRTIO_F_VERSION_1: the modern (non-legacy) interface, required by this transport.</summary>
    public const ulong Version1 = 1UL << 32;

    /// <summary>What every device offers on top of its own features.</summary>
    public const ulong Common = RingIndirectDesc | RingEventIdx | Version1;
}

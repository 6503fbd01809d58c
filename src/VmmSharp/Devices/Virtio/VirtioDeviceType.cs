namespace VmmSharp.Devices.Virtio;

/// <summary>Virtio device ids (virtio 1.2 §5).</summary>
public enum VirtioDeviceType : uint
{
    /// <summary>Network card.</summary>
    Net = 1,

    /// <summary>Block device.</summary>
    Block = 2,

    /// <summary>Console.</summary>
    Console = 3,

    /// <summary>Entropy source.</summary>
    Rng = 4,

    /// <summary>Socket device.</summary>
    Vsock = 19,
}

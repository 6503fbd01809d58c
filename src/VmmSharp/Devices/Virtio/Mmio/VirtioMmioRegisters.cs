namespace VmmSharp.Devices.Virtio.Mmio;

/// <summary>The virtio-mmio register offsets (virtio 1.2 §4.2.2, version 2; no legacy registers).</summary>
public static class VirtioMmioRegisters
{
    /// <summary>The size of a device's register window.</summary>
    public const ulong WindowSize = 0x1000;

    /// <summary>"virt", little-endian.</summary>
    public const uint MagicValue = 0x74726976;

    /// <summary>The register layout version: 2, the modern interface.</summary>
    public const uint Version2 = 2;

    /// <summary>The vendor id this VMM reports ("VMMS").</summary>
    public const uint VendorIdValue = 0x534D4D56;

#pragma warning disable CS1591 // The names are the spec's register names.
    public const uint Magic = 0x000;
    public const uint Version = 0x004;
    public const uint DeviceId = 0x008;
    public const uint VendorId = 0x00c;
    public const uint DeviceFeatures = 0x010;
    public const uint DeviceFeaturesSel = 0x014;
    public const uint DriverFeatures = 0x020;
    public const uint DriverFeaturesSel = 0x024;
    public const uint QueueSel = 0x030;
    public const uint QueueNumMax = 0x034;
    public const uint QueueNum = 0x038;
    public const uint QueueReady = 0x044;
    public const uint QueueNotify = 0x050;
    public const uint InterruptStatus = 0x060;
    public const uint InterruptAck = 0x064;
    public const uint Status = 0x070;
    public const uint QueueDescLow = 0x080;
    public const uint QueueDescHigh = 0x084;
    public const uint QueueDriverLow = 0x090;
    public const uint QueueDriverHigh = 0x094;
    public const uint QueueDeviceLow = 0x0a0;
    public const uint QueueDeviceHigh = 0x0a4;
    public const uint ConfigGeneration = 0x0fc;
    public const uint Config = 0x100;
#pragma warning restore CS1591

    /// <summary>InterruptStatus bit: the device used buffers.</summary>
    public const uint InterruptUsedBuffer = 1;

    /// <summary>InterruptStatus bit: the configuration changed (or the device needs a reset).</summary>
    public const uint InterruptConfigChange = 2;
}

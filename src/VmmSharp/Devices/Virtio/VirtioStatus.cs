namespace VmmSharp.Devices.Virtio;

/// <summary>The device status bits (virtio 1.2 §2.1).</summary>
[Flags]
public enum VirtioStatus : uint
{
    /// <summary>Nothing: the device is reset.</summary>
    None = 0,

    /// <summary>The guest found the device.</summary>
    Acknowledge = 1,

    /// <summary>The guest has a driver for it.</summary>
    Driver = 2,

    /// <summary>The driver is ready to drive it.</summary>
    DriverOk = 4,

    /// <summary>Feature negotiation is complete.</summary>
    FeaturesOk = 8,

    /// <summary>The device met an error it cannot recover from; the driver must reset it.</summary>
    DeviceNeedsReset = 64,

    /// <summary>The driver gave up on the device.</summary>
    Failed = 128,
}

namespace VmmSharp.Devices.Virtio;

/// <summary>
/// How a virtio device tells its driver something happened. The transport implements it (virtio-mmio: the
/// InterruptStatus register and an interrupt line); the device does not know which transport it sits on.
/// </summary>
/// <remarks>Called from the device's own threads (the event loop, an I/O worker); implementations are thread-safe.</remarks>
public interface IVirtioInterrupt
{
    /// <summary>The device put buffers in a used ring.</summary>
    void SignalUsedBuffers();

    /// <summary>The device's configuration changed, or it set <see cref="VirtioStatus.DeviceNeedsReset"/>.</summary>
    void SignalConfigChange();
}

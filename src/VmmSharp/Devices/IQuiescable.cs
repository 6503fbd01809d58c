namespace VmmSharp.Devices;

/// <summary>
/// A device with work of its own outside the vCPU threads (an I/O worker, input from the host) that a pause must stop,
/// so that no device thread touches guest memory or the device's state while the VM is paused or being snapshotted.
/// </summary>
public interface IQuiescable
{
    /// <summary>
    /// Finishes what the device has started (requests it took from the guest are completed) and holds everything else
    /// until <see cref="Resume"/>; returns when no device thread touches guest memory or the device's state.
    /// Pausing a paused device does nothing.
    /// </summary>
    void Pause();

    /// <summary>Lets the device work again, picking up what arrived while it was paused. Resuming a running device does nothing.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage(
        "Naming", "CA1716:Identifiers should not match keywords", Justification = "Pause and resume are the lifecycle's terms; VB is not a target.")]
    void Resume();
}

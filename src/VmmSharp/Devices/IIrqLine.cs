namespace VmmSharp.Devices;

/// <summary>
/// An interrupt request line from a device to the interrupt controller. Device models raise and lower it;
/// the machine implements it (with <c>KVM_IRQ_LINE</c>, say), so the models need not know about KVM.
/// </summary>
public interface IIrqLine
{
    /// <summary>Drives the line to <paramref name="level"/>: true asserts it, false deasserts it.</summary>
    /// <param name="level">The new level.</param>
    [System.Diagnostics.CodeAnalysis.SuppressMessage(
        "Naming", "CA1716:Identifiers should not match keywords", Justification = "Set is the hardware term for driving a line; VB is not a target.")]
    void Set(bool level);
}

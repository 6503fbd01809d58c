using VmmSharp.Devices;
using VmmSharp.Kvm;

namespace VmmSharp.Machine;

/// <summary>A device model's interrupt line, wired to a GSI of KVM's in-kernel irqchip.</summary>
internal sealed class IrqchipLine(KvmIrqLine line) : IIrqLine
{
    /// <summary>The line for <paramref name="gsi"/> of <paramref name="vm"/>.</summary>
    public static IrqchipLine For(KvmVm vm, uint gsi, IrqTrigger trigger = IrqTrigger.Edge) => new(new KvmIrqLine(vm, gsi, trigger));

    /// <inheritdoc/>
    public void Set(bool level) => line.Set(level);
}

namespace VmmSharp.Kvm;

/// <summary>
/// An interrupt line into KVM's in-kernel irqchip (<c>KVM_IRQ_LINE</c> on a GSI). The machine hands it to device
/// models behind their own line interface.
/// </summary>
/// <remarks>
/// ISA interrupts are edge-triggered: in <see cref="IrqTrigger.Edge"/> mode each rise of the device's level becomes
/// one pulse (line up, then down), so a rise is never lost because the line was left high, and a fall is dropped.
/// In <see cref="IrqTrigger.Level"/> mode the level is forwarded as it is.
/// Threading: <see cref="Set"/> may be called from any thread. Once the VM is disposed it throws
/// <see cref="ObjectDisposedException"/>: it never reaches a VM that later got the same descriptor number.
/// </remarks>
public sealed class KvmIrqLine
{
    private readonly KvmVm _vm;

    /// <summary>Creates the line for <paramref name="gsi"/> of <paramref name="vm"/>, which must have the irqchip.</summary>
    /// <param name="vm">The VM.</param>
    /// <param name="gsi">The global system interrupt (for ISA devices, the ISA IRQ number).</param>
    /// <param name="trigger">How the device's level becomes line activity.</param>
    public KvmIrqLine(KvmVm vm, uint gsi, IrqTrigger trigger = IrqTrigger.Edge)
    {
        ArgumentNullException.ThrowIfNull(vm);
        if (!vm.HasIrqchip)
        {
            throw new ArgumentException("the VM has no in-kernel irqchip to raise interrupts on", nameof(vm));
        }
        _vm = vm;
        Gsi = gsi;
        Trigger = trigger;
    }

    /// <summary>The GSI this line drives.</summary>
    public uint Gsi { get; }

    /// <summary>Whether rises become pulses or levels are forwarded.</summary>
    public IrqTrigger Trigger { get; }

    /// <summary>How many times the line was raised (pulses, in edge mode).</summary>
    public long Raised => Volatile.Read(ref _raised);

    private long _raised;

    /// <summary>Drives the line to <paramref name="level"/> (see the remarks for edge mode).</summary>
    /// <param name="level">The device's new level.</param>
    [System.Diagnostics.CodeAnalysis.SuppressMessage(
        "Naming", "CA1716:Identifiers should not match keywords", Justification = "Set is the hardware term for driving a line; VB is not a target.")]
    public void Set(bool level)
    {
        if (Trigger == IrqTrigger.Level)
        {
            _vm.SetIrqLine(Gsi, level);
            if (level)
            {
                Interlocked.Increment(ref _raised);
            }
            return;
        }
        if (level)
        {
            _vm.SetIrqLine(Gsi, true);
            _vm.SetIrqLine(Gsi, false);
            Interlocked.Increment(ref _raised);
        }
    }
}

/// <summary>How a <see cref="KvmIrqLine"/> turns a device's level into line activity.</summary>
public enum IrqTrigger
{
    /// <summary>Each rise is one pulse; falls are dropped (ISA interrupts).</summary>
    Edge,

    /// <summary>The level is forwarded as it is.</summary>
    Level,
}

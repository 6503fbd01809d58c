using System.Runtime.InteropServices;
using VmmSharp.Kvm;
using VmmSharp.State;

namespace VmmSharp.Vm;

/// <summary>
/// What KVM holds for a whole VM that a snapshot must carry: the in-kernel PICs and IOAPIC, the PIT and the kvmclock.
/// GSI routing is not readable from KVM: the machine that built the VM installs the same table again.
/// </summary>
/// <remarks>Threading: not thread-safe; use it from the thread that holds the paused VM.</remarks>
public sealed class VmSavedState : IStateful
{
    private KvmIrqchip _picMaster;
    private KvmIrqchip _picSlave;
    private KvmIrqchip _ioapic;
    private KvmPitState2 _pit;

    /// <summary>Whether the VM had the in-kernel irqchip and PIT.</summary>
    public bool HasIrqchip { get; private set; }

    /// <summary>The kvmclock in nanoseconds.</summary>
    public ulong Clock { get; private set; }

    /// <inheritdoc/>
    public ushort StateVersion => 1;

    /// <summary>Reads the state of a VM whose vCPUs are not running.</summary>
    public void Capture(KvmVm vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        HasIrqchip = vm.HasIrqchip;
        if (HasIrqchip)
        {
            vm.GetIrqchip(KvmIrqchip.PicMaster, out _picMaster);
            vm.GetIrqchip(KvmIrqchip.PicSlave, out _picSlave);
            vm.GetIrqchip(KvmIrqchip.IoApic, out _ioapic);
            vm.GetPit(out _pit);
        }
        Clock = vm.StableExtension(KvmCapability.AdjustClock) > 0 ? vm.GetClock().Clock : 0;
    }

    /// <summary>Writes the state back in KVM's order: PIT, clock, PICs, IOAPIC.</summary>
    /// <exception cref="StateFormatException">The saved VM had an irqchip and <paramref name="vm"/> has none, or the other way round.</exception>
    public void ApplyTo(KvmVm vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        if (HasIrqchip != vm.HasIrqchip)
        {
            throw new StateFormatException($"the snapshot's VM {(HasIrqchip ? "had" : "had no")} in-kernel irqchip, this one {(vm.HasIrqchip ? "has" : "has none")}");
        }
        if (HasIrqchip)
        {
            vm.SetPit(_pit);
        }
        if (vm.StableExtension(KvmCapability.AdjustClock) > 0)
        {
            vm.SetClock(Clock);
        }
        if (HasIrqchip)
        {
            vm.SetIrqchip(_picMaster);
            vm.SetIrqchip(_picSlave);
            vm.SetIrqchip(_ioapic);
        }
    }

    /// <inheritdoc/>
    public void SaveState(StateWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteBool(HasIrqchip);
        writer.WriteStruct(_picMaster);
        writer.WriteStruct(_picSlave);
        writer.WriteStruct(_ioapic);
        writer.WriteStruct(_pit);
        writer.WriteUInt64(Clock);
    }

    /// <inheritdoc/>
    public void RestoreState(ref StateReader reader, ushort version)
    {
        StateFormatException.ThrowIfUnknownVersion(reader.Component, version, StateVersion);
        HasIrqchip = reader.ReadBool("irqchip");
        ReadChip(ref reader, ref _picMaster, KvmIrqchip.PicMaster, "PIC master");
        ReadChip(ref reader, ref _picSlave, KvmIrqchip.PicSlave, "PIC slave");
        ReadChip(ref reader, ref _ioapic, KvmIrqchip.IoApic, "IOAPIC");
        reader.ReadStruct(ref _pit, "PIT");
        Clock = reader.ReadUInt64("clock");
    }

    private void ReadChip(ref StateReader reader, ref KvmIrqchip chip, uint id, string field)
    {
        reader.ReadStruct(ref chip, field);
        if (HasIrqchip && chip.ChipId != id)
        {
            throw reader.Invalid($"{field} chip id", chip.ChipId, $"is not {id}");
        }
    }
}

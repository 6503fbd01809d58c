using VmmSharp.Kvm;

namespace VmmSharp.Machine;

/// <summary>
/// The PC's interrupt wiring for KVM's in-kernel irqchip (<c>KVM_SET_GSI_ROUTING</c>), as QEMU's <c>pc</c> machine
/// sets it: GSIs 0–7 (but 2) to the master 8259, 8–15 to the slave, and GSIs 0–23 to the IOAPIC pins of the
/// same number, except that GSI 0 (the PIT) goes to pin 2 and nothing goes to pin 0.
/// </summary>
/// <remarks>
/// KVM's default routing sends GSI 0 to IOAPIC pin 0. A PC instead wires the PIT to pin 2, which firmware tells
/// the OS through an interrupt source override (ACPI) or the MP table's IRQ 0 → pin 2 entry (our
/// <see cref="Arch.X86.MpTable"/>, <see cref="Arch.X86.Layout.Irq0IoApicPin"/>). Linux programs the pin the table
/// names for its timer and, finding no ticks on it, falls back to slower and noisier paths (<c>check_timer</c>:
/// "IO-APIC + timer doesn't work!"). Routing GSI 0 to pin 2 keeps the table, the chip and the OS in agreement,
/// and keeps the usual PC picture Linux and other OSes expect.
/// </remarks>
internal static class GsiRouting
{
    private const int IoApicPins = 24;

    /// <summary>The (GSI, irqchip, pin) routes described above.</summary>
    internal static IReadOnlyList<KvmIrqRoute> PcRoutes()
    {
        var routes = new List<KvmIrqRoute>();
        for (uint i = 0; i < 16; i++)
        {
            if (i != 2)
            {
                routes.Add(new(i, i < 8 ? KvmIrqRoute.PicMaster : KvmIrqRoute.PicSlave, i % 8));
            }
        }
        for (uint i = 0; i < IoApicPins; i++)
        {
            if (i == 0)
            {
                routes.Add(new(0, KvmIrqRoute.IoApic, Arch.X86.Layout.Irq0IoApicPin));
            }
            else if (i != Arch.X86.Layout.Irq0IoApicPin)
            {
                routes.Add(new(i, KvmIrqRoute.IoApic, i));
            }
        }
        return routes;
    }

    /// <summary>Installs <see cref="PcRoutes"/> on <paramref name="vm"/> (which has the irqchip).</summary>
    internal static void Apply(KvmVm vm) => vm.SetGsiRouting([.. PcRoutes()]);
}

namespace VmmSharp.Kvm;

/// <summary>
/// One GSI route to a pin of the in-kernel irqchip (<c>struct kvm_irq_routing_entry</c> of type
/// <c>KVM_IRQ_ROUTING_IRQCHIP</c>). A GSI may have several routes (to a PIC and to the IOAPIC).
/// </summary>
/// <param name="Gsi">The global system interrupt.</param>
/// <param name="Irqchip">Which chip: <see cref="PicMaster"/>, <see cref="PicSlave"/> or <see cref="IoApic"/>.</param>
/// <param name="Pin">The pin on that chip.</param>
/// <remarks>Threading: immutable; any thread may use it.</remarks>
public readonly record struct KvmIrqRoute(uint Gsi, uint Irqchip, uint Pin)
{
    /// <summary>The master 8259 (<c>KVM_IRQCHIP_PIC_MASTER</c>).</summary>
    public const uint PicMaster = 0;

    /// <summary>The slave 8259 (<c>KVM_IRQCHIP_PIC_SLAVE</c>).</summary>
    public const uint PicSlave = 1;

    /// <summary>The IOAPIC (<c>KVM_IRQCHIP_IOAPIC</c>).</summary>
    public const uint IoApic = 2;
}

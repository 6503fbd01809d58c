using System.Buffers.Binary;
using System.Text;
using VmmSharp.Memory;

namespace VmmSharp.Arch.X86.Acpi;

/// <summary>
/// The ACPI tables of the PC machine: RSDP, XSDT, a hardware-reduced FADT (sleep control register for power-off,
/// the i8042 as reset register), a MADT with the CPUs, the IOAPIC and IRQ 0's override, and a DSDT whose only
/// objects are <c>\_S5</c> and a <c>LNRO0005</c> device for each virtio-mmio window (how a kernel whose virtio_mmio
/// driver has no command-line devices, such as Debian's, finds them). Modern kernels find the CPUs and power off
/// through them; the MP table stays for the rest.
/// </summary>
public static class AcpiTables
{
    /// <summary>The OEM id in every table.</summary>
    internal static readonly byte[] OemId = Encoding.ASCII.GetBytes("VMMSHR");

    /// <summary>The RSDP's size (ACPI 2.0 and later).</summary>
    public const int RsdpSize = 36;

    /// <summary>The sleep type <c>\_S5</c> announces, which the sleep control register receives on power-off.</summary>
    public const byte S5SleepType = 5;

    /// <summary>Writes the tables at <see cref="Layout.AcpiTables"/> and returns the RSDP's address.</summary>
    /// <param name="memory">Guest memory.</param>
    /// <param name="cpuCount">The number of CPUs the MADT lists.</param>
    /// <param name="virtioMmio">The virtio-mmio devices the DSDT describes; none if null.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="cpuCount"/> is not 1 to 254.</exception>
    public static ulong Write(GuestMemory memory, int cpuCount, IReadOnlyList<MmioDeviceSlot>? virtioMmio = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentOutOfRangeException.ThrowIfLessThan(cpuCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(cpuCount, MpTable.MaxCpus);

        ulong rsdp = Layout.AcpiTables;
        ulong xsdtAddress = Align(rsdp + RsdpSize);
        byte[] dsdt = Dsdt(virtioMmio ?? []);
        ulong dsdtAddress = xsdtAddress + 0x40;
        ulong fadtAddress = Align(dsdtAddress + (ulong)dsdt.Length);
        byte[] fadt = Fadt(dsdtAddress);
        ulong madtAddress = Align(fadtAddress + (ulong)fadt.Length);
        byte[] madt = Madt(cpuCount);
        byte[] xsdt = new AcpiTable("XSDT", 1).U64(fadtAddress).U64(madtAddress).ToArray();
        if (madtAddress + (ulong)madt.Length > Layout.AcpiTablesLimit)
        {
            throw new InvalidOperationException($"ACPI tables for {cpuCount} CPUs end past 0x{Layout.AcpiTablesLimit:x}");
        }
        memory.Write(rsdp, Rsdp(xsdtAddress));
        memory.Write(xsdtAddress, xsdt);
        memory.Write(dsdtAddress, dsdt);
        memory.Write(fadtAddress, fadt);
        memory.Write(madtAddress, madt);
        return rsdp;
    }

    private static ulong Align(ulong address) => (address + 15) & ~15UL;

    private static byte[] Rsdp(ulong xsdt)
    {
        byte[] r = new byte[RsdpSize];
        Encoding.ASCII.GetBytes("RSD PTR ").CopyTo(r, 0);
        OemId.CopyTo(r, 9);
        r[15] = 2;                                                   // revision: ACPI 2.0+, use the XSDT
        BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(20), RsdpSize);
        BinaryPrimitives.WriteUInt64LittleEndian(r.AsSpan(24), xsdt);
        r[8] = AcpiTable.Checksum(r.AsSpan(0, 20));                  // over the ACPI 1.0 part
        r[32] = AcpiTable.Checksum(r);                               // over all of it
        return r;
    }

    private static byte[] Fadt(ulong dsdt)
    {
        const uint resetRegisterSupported = 1u << 10, hardwareReduced = 1u << 20;
        const ushort legacyDevices = 1, has8042 = 2, noVga = 4;
        return new AcpiTable("FACP", 6)
            .At(40).U32((uint)dsdt)
            .At(109).U16(legacyDevices | has8042 | noVga)            // IAPC_BOOT_ARCH: probe the i8042, no VGA
            .At(112).U32(resetRegisterSupported | hardwareReduced)
            .At(116).IoRegister(0x64).U8(0xfe)                        // reset: i8042 command 0xFE
            .At(131).U8(0)                                           // FADT minor version
            .At(140).U64(dsdt)                                       // X_DSDT
            .At(244).IoRegister(Layout.AcpiSleepControlPort)
            .At(256).IoRegister(Layout.AcpiSleepStatusPort)
            .At(268).Bytes("VMMSHARP"u8)                             // hypervisor vendor identity
            .ToArray();
    }

    private static byte[] Madt(int cpuCount)
    {
        var madt = new AcpiTable("APIC", 4)
            .U32(Layout.LocalApicAddress)
            .U32(1);                                                 // PCAT_COMPAT: there are 8259s too
        for (int cpu = 0; cpu < cpuCount; cpu++)
        {
            madt.U8(0).U8(8).U8((byte)cpu).U8((byte)cpu).U32(1);     // processor local APIC, enabled
        }
        madt.U8(1).U8(12).U8((byte)cpuCount).U8(0).U32(Layout.IoApicAddress).U32(0); // IOAPIC (id as in the MP table), GSI base 0
        madt.U8(2).U8(10).U8(0).U8(0).U32(Layout.Irq0IoApicPin).U16(0);            // ISA IRQ 0 arrives at GSI 2
        madt.U8(4).U8(6).U8(0xff).U16(0).U8(1);                      // NMI on LINT1 of every CPU
        return madt.ToArray();
    }

    private static byte[] Dsdt(IReadOnlyList<MmioDeviceSlot> virtioMmio)
    {
        // Name (_S5, Package (4) { 5, 0, 0, 0 }): the sleep type for soft-off.
        ReadOnlySpan<byte> aml = [0x08, (byte)'_', (byte)'S', (byte)'5', (byte)'_', 0x12, 0x07, 0x04, 0x0a, S5SleepType, 0x00, 0x00, 0x00];
        var table = new AcpiTable("DSDT", 2).Bytes(aml);
        if (virtioMmio.Count > 0)
        {
            var devices = new List<byte>();
            for (int i = 0; i < virtioMmio.Count; i++)
            {
                devices.AddRange(VirtioMmioDevice(i, virtioMmio[i]));
            }
            table.Bytes(Aml.ScopeSystemBus([.. devices]));
        }
        return table.ToArray();
    }

    /// <summary>
    /// <c>Device (Vnnn) { _HID "LNRO0005", _UID n, _CCA 1, _CRS { Memory32Fixed, Interrupt (Edge, ActiveHigh) } }</c>:
    /// what Linux's virtio_mmio driver matches through ACPI; it maps the window and requests the interrupt as given.
    /// </summary>
    private static byte[] VirtioMmioDevice(int index, MmioDeviceSlot slot)
    {
        byte[] resources = [.. Aml.Memory32Fixed((uint)slot.Address, (uint)slot.Size), .. Aml.EdgeInterrupt(slot.Gsi)];
        byte[] body =
        [
            .. Aml.NameString("_HID", "LNRO0005"),
            .. Aml.NameInteger("_UID", (uint)index),
            .. Aml.NameInteger("_CCA", 1),
            .. Aml.NameResources("_CRS", resources),
        ];
        return Aml.Device($"V{index:D3}", body);
    }
}

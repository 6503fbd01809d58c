using VmmSharp.Arch.X86;
using VmmSharp.Kvm;
using VmmSharp.Machine;

namespace VmmSharp.Tests.Machine;

public class MachineWiringTests
{
    [Fact]
    public void PitReachesTheIoApicPinTheMpTableNames()
    {
        var routes = GsiRouting.PcRoutes();
        const uint ioApic = 2;
        Assert.Contains(new KvmIrqRoute(0u, ioApic, (uint)Layout.Irq0IoApicPin), routes);
        // Nothing else lands on the PIT's pin, and IOAPIC pin 0 gets nothing (as in QEMU's pc machine).
        Assert.Single(routes, r => r.Irqchip == ioApic && r.Pin == Layout.Irq0IoApicPin);
        Assert.DoesNotContain(routes, r => r.Irqchip == ioApic && r.Pin == 0);
        // Every other ISA IRQ goes to its own pin and to the 8259s.
        foreach (uint irq in new uint[] { 1, 3, 4, 8, 12, 14, 15 })
        {
            Assert.Contains(new KvmIrqRoute(irq, ioApic, irq), routes);
            Assert.Contains(routes, r => r.Gsi == irq && r.Irqchip == (irq < 8 ? 0u : 1u) && r.Pin == irq % 8);
        }
        Assert.DoesNotContain(routes, r => r.Gsi == 2);
    }

    [Fact]
    public void SegmentsConvertWithEveryAttribute()
    {
        var tr = SegmentDescriptor.BusyTss(0x20, 0x1234).ToKvm();
        Assert.Equal((ushort)0x20, tr.Selector);
        Assert.Equal(0x1234UL, tr.Base);
        Assert.Equal(SegmentDescriptor.TssLimit, tr.Limit);
        Assert.Equal(SegmentDescriptor.BusyTssType, tr.Type);
        Assert.Equal((byte)0, tr.S);
        Assert.Equal((byte)1, tr.Present);
        Assert.Equal((byte)0, tr.Unusable);

        var cs = SegmentDescriptor.Code64(0x10).ToKvm();
        Assert.Equal((byte)1, cs.L);
        Assert.Equal((byte)0, cs.Db);
        Assert.Equal((byte)1, cs.G);
        Assert.Equal((byte)1, cs.S);
        Assert.Equal(0xffff_ffffu, cs.Limit);

        var ds = SegmentDescriptor.FlatData(0x18).ToKvm();
        Assert.Equal((byte)1, ds.Db);
        Assert.Equal(SegmentDescriptor.DataType, ds.Type);
    }

    [Fact]
    public void OptionsDefaultToAOneCpuMachineWithoutLimits()
    {
        var o = new MachineOptions("k");
        Assert.Equal(MachineOptions.DefaultMemorySize, o.MemorySize);
        Assert.Equal(1, o.CpuCount);
        Assert.Equal("", o.CommandLine);
        Assert.Null(o.InitrdPath);
        Assert.Null(o.Deadline);
        Assert.Null(o.Console);
        Assert.Equal(ResetAction.Exit, o.OnReset);
    }
}

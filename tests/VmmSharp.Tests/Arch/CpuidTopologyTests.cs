using Iced.Intel;
using VmmSharp.Arch.X86;
using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Kvm;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Arch;

public class CpuidTopologyTests
{
    private const int Cpus = 4;

    // What a 2-core AMD host's KVM offered here: leaf 1 says APIC id 1 of 2, 0xB has one host subleaf,
    // 0x8000_0008 says 2 threads, 0x8000_001D shares L3 between 2, 0x8000_001E is empty.
    private static readonly KvmCpuidEntry[] AmdHost =
    [
        new() { Function = 0, Eax = 0x1c, Ebx = 0x6874_7541, Ecx = 0x444d_4163, Edx = 0x6974_6e65 },
        new() { Function = 1, Eax = 0x00b0_0f21, Ebx = 0x0102_0800, Ecx = 0x8120_2000, Edx = 0x078b_fbff },
        new() { Function = 0xb, Index = 0, Flags = KvmCpuidEntry.FlagSignificantIndex, Edx = 1 },
        new() { Function = 0x8000_0008, Eax = 0x3030, Ebx = 0x5002_0005, Ecx = 0x0003_7001 },
        new() { Function = 0x8000_001d, Index = 0, Flags = 1, Eax = 0x0000_0121, Ebx = 0x02c0_003f, Ecx = 0x3f },
        new() { Function = 0x8000_001d, Index = 3, Flags = 1, Eax = 0x0000_4163, Ebx = 0x03c0_003f, Ecx = 0x7fff, Edx = 1 },
        new() { Function = 0x8000_001e },
    ];

    private static readonly KvmCpuidEntry[] IntelHost =
    [
        new() { Function = 0, Eax = 0x1f, Ebx = 0x756e_6547, Ecx = 0x6c65_746e, Edx = 0x4965_6e69 },
        new() { Function = 4, Index = 0, Flags = 1, Eax = 0x1c00_4121 }, // L1d, 8 cores, 2 threads sharing
        new() { Function = 4, Index = 3, Flags = 1, Eax = 0x1c03_c163 }, // L3, shared by 16
        new() { Function = 4, Index = 4, Flags = 1 },
        new() { Function = 0x1f, Index = 0, Flags = 1, Eax = 1, Ebx = 2, Ecx = 0x100, Edx = 5 },
        new() { Function = 0x1f, Index = 1, Flags = 1, Eax = 4, Ebx = 16, Ecx = 0x201, Edx = 5 },
        new() { Function = 0x1f, Index = 2, Flags = 1, Eax = 6, Ebx = 32, Ecx = 0x502, Edx = 5 }, // a die level
        new() { Function = 0x8000_0008, Eax = 0x3030, Ecx = 0 },
    ];

    private static KvmCpuidEntry Leaf(KvmCpuidEntry[] e, uint function, uint index = 0) =>
        e.Single(x => x.Function == function && x.Index == index);

    [Fact]
    public void TheExtendedTopologyLeafHasAnSmtAndACoreLevelOfTheConfiguredCountWithTheVcpusX2ApicId()
    {
        KvmCpuidEntry[] e = Cpuid.ForVcpu(AmdHost, apicId: 2, cpuCount: Cpus);
        Assert.Equal((0u, 1u, 0x100u, 2u), Regs(Leaf(e, 0xb, 0)));
        Assert.Equal((2u, 4u, 0x201u, 2u), Regs(Leaf(e, 0xb, 1)));
        Assert.Equal((0u, 0u, 2u, 2u), Regs(Leaf(e, 0xb, 2)));
        Assert.Equal(3, e.Count(x => x.Function == 0xb));
        Assert.All(e.Where(x => x.Function == 0xb), x => Assert.Equal(KvmCpuidEntry.FlagSignificantIndex, x.Flags));
    }

    [Fact]
    public void TheHostsLevelsOfLeaf0x1FAreReplacedNotKept()
    {
        KvmCpuidEntry[] e = Cpuid.ForVcpu(IntelHost, apicId: 1, cpuCount: 3);
        Assert.Equal([0u, 1u, 2u], e.Where(x => x.Function == 0x1f).Select(x => x.Index));
        Assert.Equal((2u, 3u, 0x201u, 1u), Regs(Leaf(e, 0x1f, 1)));
        Assert.Equal(0u, Leaf(e, 0x1f, 2).Ecx >> 8); // no die level
    }

    [Fact]
    public void Leaf4CountsTheConfiguredCoresAndSharesOnlyL3()
    {
        KvmCpuidEntry[] e = Cpuid.ForVcpu(IntelHost, apicId: 0, cpuCount: 3);
        Assert.Equal(3u, Leaf(e, 4, 0).Eax >> 26);            // 4 addressable cores − 1
        Assert.Equal(0u, (Leaf(e, 4, 0).Eax >> 14) & 0xfff);  // L1 per core
        Assert.Equal(3u, (Leaf(e, 4, 3).Eax >> 14) & 0xfff);  // L3 per package
        Assert.Equal(0x121u, Leaf(e, 4, 0).Eax & 0x3fff);     // type and level kept
        Assert.Equal(0u, Leaf(e, 4, 4).Eax);                  // the end of the list stays empty
    }

    [Fact]
    public void OnAmdTheExtendedLeavesCountTheConfiguredThreadsAndNameTheCore()
    {
        KvmCpuidEntry[] e = Cpuid.ForVcpu(AmdHost, apicId: 3, cpuCount: Cpus);
        Assert.Equal(0x0003_2003u, Leaf(e, 0x8000_0008).Ecx); // NC 3, ApicIdSize 2, PerfTscSize kept
        Assert.Equal((3u, 3u, 0u, 0u), Regs(Leaf(e, 0x8000_001e)));
        Assert.Equal(0u, (Leaf(e, 0x8000_001d, 0).Eax >> 14) & 0xfff);
        Assert.Equal(3u, (Leaf(e, 0x8000_001d, 3).Eax >> 14) & 0xfff);
    }

    [Fact]
    public void OnIntelLeaf0x80000008EcxIsLeftAlone()
    {
        Assert.Equal(0u, Leaf(Cpuid.ForVcpu(IntelHost, 1, Cpus), 0x8000_0008).Ecx);
    }

    [Fact]
    public void OneCpuHasNoHtt()
    {
        KvmCpuidEntry[] host = [.. AmdHost];
        host[1].Edx |= 1u << 28;
        KvmCpuidEntry leaf1 = Leaf(Cpuid.ForVcpu(host, 0, 1), 1);
        Assert.Equal(0u, leaf1.Edx & (1u << 28));
        Assert.Equal(0x0001_0800u, leaf1.Ebx);
    }

    [Fact]
    public void AnApicIdOutsideTheCpuCountIsRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Cpuid.ForVcpu(AmdHost, apicId: 4, cpuCount: 4));
    }

    // The leaves the guest reads on each vCPU, at CPL0 where KVM emulates CPUID from KVM_SET_CPUID2
    // (at CPL3 on PVM it would run natively and show the outer host).
    private static readonly (uint Leaf, uint Subleaf)[] Probed =
        [(0, 0), (1, 0), (4, 0), (4, 3), (0xb, 0), (0xb, 1), (0xb, 2), (0x8000_0008, 0), (0x8000_001d, 3), (0x8000_001e, 0)];

    [Fact]
    public void EveryVcpuOfAFourCpuGuestReadsTheSameTopologyWithItsOwnApicId()
    {
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            foreach ((uint leaf, uint sub) in Probed)
            {
                a.mov(eax, leaf);
                a.mov(ecx, sub);
                a.cpuid();
                a.@out(0x80, al);
            }
            a.ExitWith(0);
        }, vcpus: Cpus);
        var seen = new List<(uint Eax, uint Ebx, uint Ecx, uint Edx)>[Cpus];
        foreach (VcpuDispatcher d in run.Vm.Vcpus)
        {
            var mine = seen[d.Id.Value] = [];
            Assert.True(d.Register(VcpuEvent.Io, Mtd.Qual | Mtd.Acdb, s =>
            {
                if (s.Io.Port == 0xf4)
                {
                    s.Stop(0, "done");
                    return;
                }
                mine.Add(((uint)s.Rax, (uint)s.Rbx, (uint)s.Rcx, (uint)s.Rdx));
            }));
        }
        Task<VcpuRunResult>[] runs = [.. run.Vm.Vcpus.Select(d => d.Start())];
        Assert.True(Task.WaitAll(runs, GuestRun.DefaultDeadline), "the vCPUs did not finish reading CPUID");
        Assert.All(runs, r => r.Result.AssertStopped());

        bool amd = seen[0][0].Ebx == 0x6874_7541;
        for (uint id = 0; id < Cpus; id++)
        {
            var r = seen[id];
            Assert.Equal(Probed.Length, r.Count);
            Assert.Equal(id, r[1].Ebx >> 24);                     // leaf 1: initial APIC id
            Assert.Equal(4u, (r[1].Ebx >> 16) & 0xff);            // 4 logical processors
            Assert.NotEqual(0u, r[1].Edx & (1u << 28));           // HTT
            Assert.Equal((0u, 1u, 0x100u, id), r[4]);             // 0xB.0: SMT level, one thread
            Assert.Equal((2u, 4u, 0x201u, id), r[5]);             // 0xB.1: core level, 4 CPUs in 2 bits
            Assert.Equal((0u, 0u, 2u, id), r[6]);                 // 0xB.2: end of the levels
            if ((r[2].Eax & 0x1f) != 0)
            {
                Assert.Equal(3u, r[2].Eax >> 26);                 // leaf 4: 4 cores
            }
            if (amd)
            {
                Assert.Equal(3u, r[7].Ecx & 0xff);                // 0x8000_0008: 4 threads
                Assert.Equal(2u, (r[7].Ecx >> 12) & 0xf);
                Assert.Equal((id, id, 0u, 0u), r[9]);             // 0x8000_001E: APIC id, core id, node 0
            }
            // Apart from the APIC ids, every vCPU reads exactly what vCPU 0 reads.
            Assert.Equal(WithoutIds(seen[0]), WithoutIds(r));
        }
    }

    private static (uint, uint, uint, uint) Regs(KvmCpuidEntry e) => (e.Eax, e.Ebx, e.Ecx, e.Edx);

    private static List<(uint, uint, uint, uint)> WithoutIds(List<(uint Eax, uint Ebx, uint Ecx, uint Edx)> r) =>
        [.. r.Select((x, i) => Probed[i] switch
        {
            (1, _) => (x.Eax, x.Ebx & 0x00ff_ffff, x.Ecx, x.Edx),
            (0xb, _) => (x.Eax, x.Ebx, x.Ecx, 0u),
            (0x8000_001e, _) => (0u, x.Ebx & ~0xffu, x.Ecx, x.Edx),
            _ => x,
        })];
}

using VmmSharp.Arch.X86;
using VmmSharp.Kvm;

namespace VmmSharp.Tests.Arch;

public class CpuidTests
{
    private static readonly KvmCpuidEntry[] Supported =
    [
        new() { Function = 1, Ebx = 0x00ff_0800, Ecx = 0x8000_0001, Edx = 0x0000_0010 },
        new() { Function = 7, Index = 0, Ebx = 0x0000_0020 },
        new() { Function = 7, Index = 1, Ebx = 0x0000_0020 },
        new() { Function = 0xb, Index = 0 },
        new() { Function = 0xb, Index = 1 },
        new() { Function = 0x4000_0000, Eax = 0x4000_0001, Ebx = 0x4b4d564b },
    ];

    [Fact]
    public void EachVcpuSeesItsOwnApicIdAndTheCpuCount()
    {
        KvmCpuidEntry[] e = Cpuid.ForVcpu(Supported, apicId: 3, cpuCount: 4);
        Assert.Equal(3u, e[0].Ebx >> 24);
        Assert.Equal(4u, (e[0].Ebx >> 16) & 0xff);
        Assert.Equal(0x0800u, e[0].Ebx & 0xffff); // the rest of EBX is kept
        Assert.NotEqual(0u, e[0].Edx & (1u << 28)); // HTT with more than one CPU
        Assert.All(e.Where(x => x.Function == 0xb), x => Assert.Equal(3u, x.Edx));
    }

    [Fact]
    public void KvmsOwnLeavesArePassedThrough()
    {
        KvmCpuidEntry kvm = Cpuid.ForVcpu(Supported, 0, 1).Single(x => x.Function == 0x4000_0000);
        Assert.Equal(0x4b4d564bu, kvm.Ebx); // "KVMK"
    }

    [Fact]
    public void AMaskClearsBitsInTheNamedLeafAndSubleafOnly()
    {
        CpuidMask avx2 = CpuidMask.Parse("0x7.0:ebx:0x20");
        KvmCpuidEntry[] e = Cpuid.ForVcpu(Supported, 0, 1, [avx2, CpuidMask.Parse("1:ECX:0x80000000")]);
        Assert.Equal(0u, e[1].Ebx);          // leaf 7.0
        Assert.Equal(0x20u, e[2].Ebx);       // leaf 7.1 untouched
        Assert.Equal(1u, e[0].Ecx);          // hypervisor bit gone
    }

    [Theory]
    [InlineData("7:ebx")]
    [InlineData("7:exx:1")]
    [InlineData("0x7.0.1:ebx:1")]
    [InlineData("seven:ebx:1")]
    public void AMalformedMaskIsRefusedQuotingIt(string text)
    {
        var e = Assert.Throws<FormatException>(() => CpuidMask.Parse(text));
        Assert.Contains(text, e.Message, StringComparison.Ordinal);
    }
}

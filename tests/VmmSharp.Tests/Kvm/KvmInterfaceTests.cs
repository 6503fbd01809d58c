using VmmSharp.Kvm;
using VmmSharp.Memory;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Kvm;

public class KvmInterfaceTests
{
    [Fact]
    public void AMissingDeviceGetsOneMessageSayingWhatIsMissingAndHowToFixIt()
    {
        var e = Assert.Throws<KvmUnavailableException>(() => KvmSystem.Open("/nonexistent/kvm"));
        Assert.Contains("/nonexistent/kvm does not exist", e.Message, StringComparison.Ordinal);
        Assert.Contains("modprobe", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ADeviceThatIsNotKvmIsRefused()
    {
        var e = Assert.Throws<KvmUnavailableException>(() => KvmSystem.Open("/dev/null"));
        Assert.Contains("/dev/null speaks KVM API version -1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheApiVersionIs12AndTheVcpuMappingHoldsKvmRun()
    {
        KvmRequirement.Ensure();
        using KvmSystem kvm = KvmSystem.Open();
        Assert.Equal(12, kvm.ApiVersion);
        Assert.True(kvm.VcpuMmapSize >= 2352, $"kvm_run mapping of {kvm.VcpuMmapSize} bytes");
        Assert.True(kvm.Has(KvmCapability.UserMemory));
        Assert.NotEmpty(kvm.GetSupportedCpuid());
    }

    [Fact]
    public void AFailingIoctlNamesItselfTheErrnoAndItsArguments()
    {
        KvmRequirement.Ensure();
        using KvmSystem kvm = KvmSystem.Open();
        using KvmVm vm = kvm.CreateVm();
        using var memory = GuestMemory.WithRam(1 << 20);
        using var overlapping = GuestMemory.WithRam(1 << 20);
        GuestRegion first = memory.Regions[0], second = overlapping.Regions[0];
        vm.SetUserMemoryRegion(new KvmMemorySlot(0, 0, first.Size, first.HostAddress));

        var e = Assert.Throws<KvmException>(() => vm.SetUserMemoryRegion(new KvmMemorySlot(1, 0, second.Size, second.HostAddress)));

        Assert.Equal("KVM_SET_USER_MEMORY_REGION", e.Ioctl);
        Assert.Equal(17, e.Errno); // EEXIST: the range is taken
        Assert.StartsWith("KVM_SET_USER_MEMORY_REGION failed: File exists (errno 17); slot=1 guest_phys_addr=0x0 memory_size=0x100000", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AVcpuIdBeyondTheHostsLimitIsRefusedWithTheLimit()
    {
        KvmRequirement.Ensure();
        using KvmSystem kvm = KvmSystem.Open();
        using KvmVm vm = kvm.CreateVm();
        var e = Assert.Throws<KvmException>(() => vm.CreateVcpu(1 << 20));
        Assert.Equal("KVM_CREATE_VCPU", e.Ioctl);
        Assert.Contains($"vcpu id={1 << 20}", e.Message, StringComparison.Ordinal);
        Assert.Contains("this host allows", e.Message, StringComparison.Ordinal);
    }
}

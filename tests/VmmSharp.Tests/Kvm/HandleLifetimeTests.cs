using VmmSharp.Interop;
using VmmSharp.Kvm;
using VmmSharp.Memory;
using VmmSharp.Tests.Support;
using VmmSharp.Vm;

namespace VmmSharp.Tests.Kvm;

/// <summary>Descriptors are handles, never numbers: a disposed object cannot reach a file that later got its number.</summary>
public class HandleLifetimeTests
{
    /// <summary>The numbers of this process's open KVM VM descriptors.</summary>
    private static HashSet<int> VmFds()
    {
        var fds = new HashSet<int>();
        foreach (string path in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(path).LinkTarget == "anon_inode:kvm-vm")
                {
                    fds.Add(int.Parse(Path.GetFileName(path), System.Globalization.CultureInfo.InvariantCulture));
                }
            }
            catch (IOException)
            {
                // closed meanwhile
            }
        }
        return fds;
    }

    private static (VirtualMachine Vm, int Fd) CreateVmWithIrqchip()
    {
        HashSet<int> before = VmFds();
        var vm = VirtualMachine.Create(GuestMemory.WithRam(1 << 20), irqchip: true);
        HashSet<int> after = VmFds();
        after.ExceptWith(before);
        return (vm, after.Count == 1 ? after.Single() : -1);
    }

    [Fact]
    public void AnIrqLineOfADisposedVmThrowsAndDoesNotRaiseTheIrqInTheVmThatGotItsFdNumber()
    {
        KvmRequirement.Ensure();
        const uint irq = 4;
        // Other tests open descriptors in parallel: retry until the new VM really got the old VM's number.
        for (int attempt = 0; attempt < 20; attempt++)
        {
            (VirtualMachine old, int oldFd) = CreateVmWithIrqchip();
            var line = new KvmIrqLine(old.Handle, irq);
            old.Dispose();
            (VirtualMachine fresh, int freshFd) = CreateVmWithIrqchip();
            using (fresh)
            {
                if (oldFd < 0 || freshFd != oldFd)
                {
                    continue;
                }
                Assert.Equal(0, fresh.Handle.GetPicRequests(0) & (1 << (int)irq));

                Assert.Throws<ObjectDisposedException>(() => line.Set(true));

                Assert.Equal(0, fresh.Handle.GetPicRequests(0) & (1 << (int)irq));
                return;
            }
        }
        Assert.Fail("no new VM got the disposed VM's descriptor number in 20 attempts");
    }

    [Fact]
    public void TheIrqLineRaisesTheIrqOfItsOwnVm()
    {
        // The other half of the test above: the IRR read does see a raised line.
        KvmRequirement.Ensure();
        using var vm = VirtualMachine.Create(GuestMemory.WithRam(1 << 20), irqchip: true);

        new KvmIrqLine(vm.Handle, 4).Set(true);

        Assert.Equal(1 << 4, vm.Handle.GetPicRequests(0) & (1 << 4));
    }

    [Fact]
    public void DescriptorZeroIsAValidDescriptor()
    {
        using var zero = new SafeFileDescriptor(0, ownsHandle: false);
        using var none = new SafeFileDescriptor(-1, ownsHandle: false);

        Assert.False(zero.IsInvalid);
        Assert.True(none.IsInvalid);
    }
}

using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Kvm;
using VmmSharp.Memory;
using VmmSharp.Tests.Support;
using VmmSharp.Vm;

namespace VmmSharp.Tests.Vm;

/// <summary>Who owns guest memory: the VM from the call to Create on, whether Create succeeds or not.</summary>
public class VirtualMachineOwnershipTests
{
    [Fact]
    public void CreateDisposesTheMemoryItWasGivenWhenItFails()
    {
        KvmRequirement.Ensure();
        var memory = GuestMemory.WithRam(1 << 20);
        KvmSystem kvm = KvmSystem.Open();
        kvm.Dispose(); // KVM_CREATE_VM on it fails

        Assert.Throws<ObjectDisposedException>(() => VirtualMachine.Create(memory, irqchip: false, kvm));

        Assert.Throws<ObjectDisposedException>(() => memory.Read<byte>(0));
    }

    [Fact]
    public void GuestMemoryInUseByAVmRefusesToBeDisposed()
    {
        KvmRequirement.Ensure();
        var memory = GuestMemory.WithRam(1 << 20);
        using var vm = VirtualMachine.Create(memory);

        var e = Assert.Throws<InvalidOperationException>(memory.Dispose);

        Assert.Contains("in use by a VM", e.Message, StringComparison.Ordinal);
        memory.Write<byte>(0, 1); // still mapped
    }

    [Fact]
    public void DisposingTheVmDisposesItsMemory()
    {
        KvmRequirement.Ensure();
        var memory = GuestMemory.WithRam(1 << 20);
        var vm = VirtualMachine.Create(memory);

        vm.Dispose();

        Assert.Throws<ObjectDisposedException>(() => memory.Read<byte>(0));
    }

    [Fact]
    public void AVcpuStillInAHandlerAtDisposeKeepsTheMemoryMappedUntilItsRunEnds()
    {
        using var release = new ManualResetEventSlim();
        using var entered = new ManualResetEventSlim();
        var run = GuestRun.Create(GuestMode.User64, a => a.ExitWith(0));
        Assert.True(run.Vcpu.Register(VcpuEvent.Io, Mtd.Qual, s =>
        {
            entered.Set();
            release.Wait(); // a device stuck on the host: no stop request reaches it
            s.Stop(0, "released");
        }));
        run.Vm.StopTimeout = TimeSpan.FromMilliseconds(100);
        Task<VcpuRunResult> done = run.Vcpu.Start();
        Assert.True(entered.Wait(GuestRun.DefaultDeadline));

        run.Dispose();

        _ = run.Vm.Memory.Read<byte>(0); // still mapped: the vCPU may touch it
        release.Set();
        Assert.True(done.Wait(GuestRun.DefaultDeadline));
        Assert.True(SpinWait.SpinUntil(() =>
        {
            try
            {
                run.Vm.Memory.Read<byte>(0);
                return false;
            }
            catch (ObjectDisposedException)
            {
                return true;
            }
        }, GuestRun.DefaultDeadline), "the memory was not unmapped after the last vCPU's run ended");
    }
}

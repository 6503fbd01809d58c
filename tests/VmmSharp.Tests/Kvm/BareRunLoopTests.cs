using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Kvm;
using VmmSharp.Memory;
using VmmSharp.Tests.Support;
using VmmSharp.Vm;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Kvm;

/// <summary>The public API for code that calls KVM_RUN itself: <see cref="KvmVcpu.EnterGuest"/> and <see cref="KvmVcpu.LastExit"/>.</summary>
public class BareRunLoopTests
{
    [Fact]
    public void EachEnterGuestShowsItsPortWriteInLastExit()
    {
        KvmRequirement.Ensure();
        TinyGuest guest = TinyGuest.Assemble(GuestMode.User64, a =>
        {
            var halt = a.CreateLabel();
            a.mov(al, 0x5a);
            a.@out(0x80, al);
            a.mov(ax, 0x1234);
            a.mov(dx, 0x3f8);
            a.@out(dx, ax);
            a.Label(ref halt);
            a.jmp(halt);
        });
        using var vm = VirtualMachine.Create(GuestMemory.WithRam(2 << 20));
        guest.Load(vm.Memory);
        KvmVcpu vcpu = vm.AddVcpu().Vcpu;
        guest.SetStartupState(vcpu);

        Assert.Equal(0, vcpu.EnterGuest());
        KvmExit first = vcpu.LastExit;
        Assert.Equal(KvmExitReason.Io, first.Reason);
        Assert.Equal(0x80, first.IoPort);
        Assert.True(first.IoIsWrite);
        Assert.Equal([0x5a], first.IoData.ToArray());

        Assert.Equal(0, vcpu.EnterGuest());
        KvmExit second = vcpu.LastExit;
        Assert.Equal(KvmExitReason.Io, second.Reason);
        Assert.Equal(0x3f8, second.IoPort);
        Assert.Equal(2, second.IoSize);
        Assert.Equal([0x34, 0x12], second.IoData.ToArray());
    }

    [Fact]
    public void LastExitOfADisposedVcpuThrowsObjectDisposed()
    {
        KvmRequirement.Ensure();
        KvmVcpu vcpu;
        using (var vm = VirtualMachine.Create(GuestMemory.WithRam(2 << 20)))
        {
            VcpuDispatcher d = vm.AddVcpu();
            vcpu = d.Vcpu;
        }
        Assert.Throws<ObjectDisposedException>(() => _ = vcpu.LastExit.Reason);
    }
}

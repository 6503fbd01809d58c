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
        Assert.Equal(1, first.IoSize);
        Assert.Equal(0x5au, first.IoValue);

        Assert.Equal(0, vcpu.EnterGuest());
        KvmExit second = vcpu.LastExit;
        Assert.Equal(KvmExitReason.Io, second.Reason);
        Assert.Equal(0x3f8, second.IoPort);
        Assert.Equal(2, second.IoSize);
        Assert.Equal(0x1234u, second.IoValue);
    }

    [Fact]
    public void AnMmioWriteShowsItsAddressLengthAndValueInLastExit()
    {
        KvmRequirement.Ensure();
        TinyGuest guest = TinyGuest.Assemble(GuestMode.User64, a =>
        {
            var halt = a.CreateLabel();
            a.mov(rax, 0x3000_0000); // identity-mapped by the tiny guest, but no RAM there: MMIO
            a.mov(__dword_ptr[rax], 0xabcd);
            a.Label(ref halt);
            a.jmp(halt);
        });
        using var vm = VirtualMachine.Create(GuestMemory.WithRam(2 << 20));
        guest.Load(vm.Memory);
        KvmVcpu vcpu = vm.AddVcpu().Vcpu;
        guest.SetStartupState(vcpu);

        Assert.Equal(0, vcpu.EnterGuest());
        KvmExit exit = vcpu.LastExit;
        Assert.Equal(KvmExitReason.Mmio, exit.Reason);
        Assert.Equal(0x3000_0000UL, exit.MmioAddress);
        Assert.Equal(4, exit.MmioLength);
        Assert.True(exit.MmioIsWrite);
        Assert.Equal(0xabcdUL, exit.MmioValue);
        Assert.Equal(0, exit.IoPort);
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
        Assert.Throws<ObjectDisposedException>(() => vcpu.LastExit);
    }
}

using System.Diagnostics;
using VmmSharp.Arch.X86;
using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Block;
using VmmSharp.Devices.Virtio.Mmio;
using VmmSharp.Devices.Virtio.Rng;
using VmmSharp.Dispatch;
using VmmSharp.Events;
using VmmSharp.Guests;
using VmmSharp.Kvm;
using VmmSharp.Machine;
using VmmSharp.Memory;
using VmmSharp.Vm;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Cli.Bench;

/// <summary>
/// <c>vmm bench exits</c>: the round trip of a port-I/O exit through the dispatcher against a bare loop
/// that calls KVM_RUN itself, on the same CPL3 guest, in the same process, rounds interleaved. With devices, every
/// variant's VM also has an in-kernel irqchip and a virtio-blk disk and a virtio-rng, wired as <c>vmm run</c> wires
/// them (ioeventfd, irqfd, the event loop's thread and the disk's worker running), to show they cost the exit nothing.
/// </summary>
internal static class ExitBench
{
    private enum Variant
    {
        Raw,
        Dispatcher,
        DispatcherRax,
        RawGetSetRegs,
    }

    public static int Run(int exits, int rounds, bool devices)
    {
        // The guest: out 0x80, al forever. AL changes only when a handler writes RAX.
        TinyGuest guest = TinyGuest.Assemble(GuestMode.User64, a =>
        {
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.@out(0x80, al);
            a.jmp(loop);
        });
        Variant[] variants = Enum.GetValues<Variant>();
        var samples = variants.ToDictionary(v => v, _ => new List<double>());
        for (int round = 0; round < rounds; round++)
        {
            for (int k = 0; k < variants.Length; k++)
            {
                Variant v = variants[(k + round) % variants.Length]; // rotate the order each round
                samples[v].Add(Measure(guest, v, exits, devices));
            }
        }
        double raw = Statistics.Median(samples[Variant.Raw]);
        double dispatcher = Statistics.Median(samples[Variant.Dispatcher]);
        double withRax = Statistics.Median(samples[Variant.DispatcherRax]);
        double naive = Statistics.Median(samples[Variant.RawGetSetRegs]);
        Console.WriteLine($"{exits} port-I/O exits per round, median of {rounds} rounds, host: {KvmSystem.Virtualization.Kind}" +
            (devices ? "; each VM with an irqchip, virtio-blk and virtio-rng on ioeventfd/irqfd, event loop and disk worker running" : ""));
        Console.WriteLine($"  raw KVM_RUN loop, reads port and value           {raw,9:0} ns");
        Console.WriteLine($"  dispatcher, handler MTD QUAL reads port and value {dispatcher,9:0} ns  x{dispatcher / raw:0.000}");
        Console.WriteLine($"  dispatcher, MTD QUAL|ACDB, reads and writes RAX  {withRax,9:0} ns  x{withRax / raw:0.000}");
        Console.WriteLine($"  raw loop + KVM_GET_REGS/KVM_SET_REGS per exit    {naive,9:0} ns  x{naive / raw:0.000}");
        Console.WriteLine($"exit round trip with RAX: dispatcher {withRax:0} ns, raw {raw:0} ns, ratio {withRax / raw:0.000}");
        Console.WriteLine($"exit round trip: dispatcher {dispatcher:0} ns, raw {raw:0} ns, ratio {dispatcher / raw:0.000}");
        return 0;
    }

    /// <summary>Nanoseconds per exit for one round of <paramref name="exits"/> exits.</summary>
    private static double Measure(TinyGuest guest, Variant variant, int exits, bool devices)
    {
        using var vm = VirtualMachine.Create(GuestMemory.WithRam(2 << 20), irqchip: devices);
        guest.Load(vm.Memory);
        using Devices? attached = devices ? new Devices(vm) : null;
        VcpuDispatcher d = vm.AddVcpu();
        return variant switch
        {
            Variant.Dispatcher or Variant.DispatcherRax => ThroughDispatcher(guest, d, variant == Variant.DispatcherRax, exits),
            _ => RawLoop(guest, d.Vcpu, variant == Variant.RawGetSetRegs, exits),
        };
    }

    /// <summary>A disk and an entropy source on a VM, wired as PcMachine wires them: ioeventfd, irqfd, event loop.</summary>
    private sealed class Devices : IDisposable
    {
        private readonly string _image = Path.Combine(Path.GetTempPath(), $"vmm-bench-exits-{Environment.ProcessId}.img");
        private readonly EventLoop _events = new("vmm-virtio");
        private readonly List<IDisposable> _owned = [];

        public Devices(VirtualMachine vm)
        {
            File.WriteAllBytes(_image, new byte[1 << 20]);
            VirtioDevice[] models = [new VirtioBlock(_image), new VirtioRng()];
            for (int i = 0; i < models.Length; i++)
            {
                MmioDeviceSlot slot = Layout.VirtioMmioSlot(i);
                var line = new IrqFdLine(vm.Handle, slot.Gsi);
                var transport = new VirtioMmioTransport(models[i], vm.Memory, slot.Address, line);
                vm.Handle.AddIoEventFd(transport.NotifyEvent, transport.NotifyAddress, 4);
                _events.Add(transport.NotifyEvent, transport.OnNotifyEvent);
                _owned.AddRange([models[i], transport, line]);
            }
            _events.Start();
        }

        public void Dispose()
        {
            _events.Dispose();
            foreach (IDisposable d in _owned)
            {
                d.Dispose();
            }
            File.Delete(_image);
        }
    }

    private static double ThroughDispatcher(TinyGuest guest, VcpuDispatcher d, bool rax, int exits)
    {
        long start = 0, end = 0, count = 0, sink = 0;
        d.Register(VcpuEvent.Startup, TinyGuest.StartupMtd, s => guest.SetStartupState(s));
        d.Register(VcpuEvent.Io, rax ? Mtd.Qual | Mtd.Acdb : Mtd.Qual, s =>
        {
            IoExit io = s.Io;
            sink += io.Port + io.Value;
            if (rax)
            {
                s.Rax++;
            }
            if (++count == 1)
            {
                start = Stopwatch.GetTimestamp();
            }
            else if (count == exits + 1)
            {
                end = Stopwatch.GetTimestamp();
                s.Stop(0, "done");
            }
        });
        VcpuRunResult result = d.Run(); // on this thread, as the raw loop
        if (result.Outcome != VcpuRunOutcome.Stopped)
        {
            throw new VmmException($"benchmark guest failed: {result.Reason}");
        }
        GC.KeepAlive(sink);
        return Stopwatch.GetElapsedTime(start, end).TotalNanoseconds / exits;
    }

    private static double RawLoop(TinyGuest guest, KvmVcpu vcpu, bool getSetRegs, int exits)
    {
        guest.SetStartupState(vcpu);
        long start = 0, sink = 0;
        KvmRegs regs;
        for (int i = 0; i <= exits; i++)
        {
            if (i == 1)
            {
                start = Stopwatch.GetTimestamp();
            }
            int errno = vcpu.EnterGuest();
            KvmExit exit = vcpu.LastExit;
            if (errno != 0 || exit.Reason != KvmExitReason.Io)
            {
                throw new VmmException($"benchmark guest: KVM_RUN returned errno {errno}, exit reason {exit.Reason}");
            }
            sink += exit.IoPort + exit.IoValue;
            if (getSetRegs)
            {
                vcpu.GetRegs(out regs);
                regs.Rax++;
                vcpu.SetRegs(regs);
            }
        }
        long end = Stopwatch.GetTimestamp();
        GC.KeepAlive(sink);
        return Stopwatch.GetElapsedTime(start, end).TotalNanoseconds / exits;
    }
}

using VmmSharp.Kvm;

namespace VmmSharp.Cli.Commands;

/// <summary><c>vmm info</c>: what a user needs to know about this host's KVM.</summary>
internal static class InfoCommand
{
    private static readonly (KvmCapability Capability, string Why)[] Relied =
    [
        (KvmCapability.UserMemory, "guest memory slots"),
        (KvmCapability.SyncRegs, "register state through kvm_run, no ioctl per exit"),
        (KvmCapability.ImmediateExit, "recall without lost kicks"),
        (KvmCapability.Irqchip, "in-kernel PIC, IOAPIC and LAPICs"),
        (KvmCapability.Pit2, "in-kernel PIT"),
        (KvmCapability.X86UserSpaceMsr, "MSR read/write events"),
        (KvmCapability.X86MsrFilter, "trapping chosen MSRs"),
        (KvmCapability.SetGuestDebug, "debug events (single-step)"),
        (KvmCapability.VcpuEvents, "exception injection (INJ/STA groups)"),
        (KvmCapability.DebugRegs, "debug registers (DR group)"),
        (KvmCapability.ReadonlyMem, "read-only memory regions"),
        (KvmCapability.MpState, "application processors waiting for INIT/SIPI"),
        (KvmCapability.ExtCpuid, "CPUID from KVM_GET_SUPPORTED_CPUID"),
        (KvmCapability.ExitOnEmulationFailure, "the failing instruction's bytes"),
        (KvmCapability.Ioeventfd, "virtio notifications without a vCPU exit (else through the MMIO exit)"),
        (KvmCapability.Irqfd, "virtio interrupts from the device threads (else KVM_IRQ_LINE)"),
    ];

    public static int Run()
    {
        HostVirtualization host = KvmSystem.Virtualization;
        using KvmSystem kvm = KvmSystem.Open();
        Console.WriteLine($"KVM API version:  {kvm.ApiVersion}");
        Console.WriteLine($"virtualization:   {host.Kind}");
        Console.WriteLine($"                  {host.Description}");
        Console.WriteLine($"vCPUs:            recommended {kvm.CheckExtension(KvmCapability.NrVcpus)}, " +
            $"maximum {kvm.CheckExtension(KvmCapability.MaxVcpus)}, highest id {kvm.CheckExtension(KvmCapability.MaxVcpuId) - 1}");
        Console.WriteLine($"memory slots:     {kvm.CheckExtension(KvmCapability.NrMemslots)}");
        Console.WriteLine($"kvm_run size:     {kvm.VcpuMmapSize} bytes");
        Console.WriteLine("capabilities:");
        foreach ((KvmCapability capability, string why) in Relied)
        {
            Console.WriteLine($"  {(kvm.Has(capability) ? "yes" : "no "),-4}{capability,-24}{why}");
        }
        bool eventFds = kvm.Has(KvmCapability.Ioeventfd) && kvm.Has(KvmCapability.Irqfd);
        Console.WriteLine($"virtio devices:   virtio-mmio (version 2): blk (--disk), net (--net, {(File.Exists("/dev/net/tun") ? "/dev/net/tun present" : "no /dev/net/tun here")}), rng (--rng), console (--console virtio)");
        Console.WriteLine(eventFds
            ? "                  notifications through ioeventfd, interrupts through irqfd, device work on its own threads"
            : "                  fallback: notifications through MMIO exits, interrupts through KVM_IRQ_LINE (no ioeventfd/irqfd here)");
        return 0;
    }
}

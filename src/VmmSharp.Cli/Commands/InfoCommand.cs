using VmmSharp.Arch.X86;
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
        Console.WriteLine($"virtio devices:   virtio-mmio (version 2): blk (--disk), net (--net, {(File.Exists("/dev/net/tun") ? "/dev/net/tun present" : "no /dev/net/tun here")}), vsock (--vsock, hybrid over a Unix socket), rng (--rng), console (--console virtio)");
        Console.WriteLine(eventFds
            ? "                  notifications through ioeventfd, interrupts through irqfd, device work on its own threads"
            : "                  fallback: notifications through MMIO exits, interrupts through KVM_IRQ_LINE (no ioeventfd/irqfd here)");
        PrintGuestFacts(host, kvm.GetSupportedCpuid());
        return 0;
    }

    /// <summary>What guests meet here: measured by probe VMs, then what vmm does about it.</summary>
    private static void PrintGuestFacts(HostVirtualization host, KvmCpuidEntry[] supported)
    {
        GuestFactsProbe.Facts facts = GuestFactsProbe.Measure();
        Console.WriteLine($"guests here (measured by two probe VMs in {facts.Took.TotalMilliseconds:0.#} ms):");
        if (facts.Error is { } error)
        {
            Console.WriteLine($"  not measured: {error}");
        }
        Console.WriteLine($"  CPL0 code:      {facts.Cpl0Emulated switch
        {
            true => "emulated by KVM's instruction emulator (fwait at CPL0 was an emulation failure): slow, some instructions missing",
            false => "runs natively (fwait at CPL0 ran)",
            null => "unknown",
        }}");
        Console.WriteLine($"  user syscall:   {facts.SyscallEntersKernel switch
        {
            true => "enters the guest kernel at CPL0",
            false => "does not enter the guest kernel (it reaches LSTAR still at CPL3): guest user space cannot make system calls",
            null => "unknown",
        }}");
        IReadOnlyList<HiddenCpuidFeature> hidden = CpuidPolicies.Hidden(CpuidPolicy.Auto, host.Kind);
        string[] offered = [.. hidden.Where(h => Offers(supported, h.Mask)).Select(h => h.Name)];
        Console.WriteLine($"  CPUID policy:   {(hidden.Count == 0 ? "hides nothing" : $"hides {(offered.Length == 0 ? "none" : string.Join(", ", offered))} of what KVM offers " +
            $"({hidden.Count} features in the {host.Kind} policy)")}; vmm run --cpuid-policy none shows KVM's CPUID, --cpuid-mask hides more");
        Console.WriteLine($"  fallback:       {FallbackCoverage()}");
    }

    /// <summary>Whether KVM's supported CPUID sets any of the bits <paramref name="mask"/> clears.</summary>
    private static bool Offers(KvmCpuidEntry[] supported, CpuidMask mask) => supported.Any(e =>
        e.Function == mask.Function && (mask.Index is not { } index || index == e.Index) &&
        (mask.Bits & mask.Register switch
        {
            CpuidRegister.Eax => e.Eax,
            CpuidRegister.Ebx => e.Ebx,
            CpuidRegister.Ecx => e.Ecx,
            _ => e.Edx,
        }) != 0);

    /// <summary>What the emulation fallback (on in vmm run) finishes when KVM's emulator gives up.</summary>
    private static string FallbackCoverage() =>
        "vmm run finishes int3/int n, cmpxchg16b, verw, fwait/fnclex/emms, clwb, ldmxcsr/stmxcsr, xgetbv, the xsave/xrstor " +
        "family and SSE/AVX moves to RAM or MMIO when KVM's emulator gives up; anything else stops the guest";
}

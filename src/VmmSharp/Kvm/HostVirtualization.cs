namespace VmmSharp.Kvm;

/// <summary>What serves <c>/dev/kvm</c> on this host, and what that means for guests.</summary>
/// <remarks>Threading: immutable; any thread may use it.</remarks>
public enum HostVirtualizationKind
{
    /// <summary>Nothing known: no KVM module found.</summary>
    None,

    /// <summary>Intel VT-x (kvm_intel): guest code runs natively at every privilege level.</summary>
    Vmx,

    /// <summary>AMD-V (kvm_amd): guest code runs natively at every privilege level.</summary>
    Svm,

    /// <summary>
    /// PVM (kvm_pvm), pagetable-based virtualization without hardware support: guest CPL3 code
    /// runs natively, CPL0 and real-mode code is run by KVM's instruction emulator, slowly.
    /// </summary>
    Pvm,
}

/// <summary>Detects how KVM is provided on this host.</summary>
/// <remarks>Threading: immutable; any thread may use it.</remarks>
public sealed record HostVirtualization(HostVirtualizationKind Kind, string Description)
{
    /// <summary>Looks at the loaded KVM modules and the CPU flags.</summary>
    public static HostVirtualization Detect()
    {
        static bool Module(string name) => Directory.Exists($"/sys/module/{name}");
        if (Module("kvm_intel"))
        {
            return new(HostVirtualizationKind.Vmx, "hardware virtualization (Intel VT-x, kvm_intel): guests run natively at every privilege level");
        }
        if (Module("kvm_amd"))
        {
            return new(HostVirtualizationKind.Svm, "hardware virtualization (AMD-V, kvm_amd): guests run natively at every privilege level");
        }
        if (Module("kvm_pvm"))
        {
            return new(HostVirtualizationKind.Pvm,
                "PVM (kvm_pvm), no hardware virtualization: guest CPL3 code runs natively, CPL0 and real-mode code " +
                "is emulated instruction by instruction (about 1 us each) and some instructions are missing, " +
                "so kernels start but a full Linux boot does not finish");
        }
        return new(HostVirtualizationKind.None, "no KVM module is loaded");
    }
}

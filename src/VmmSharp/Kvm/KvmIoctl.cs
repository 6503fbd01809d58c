namespace VmmSharp.Kvm;

/// <summary>KVM's ioctl request numbers for x86-64, as <c>linux/kvm.h</c> encodes them.</summary>
internal static class KvmIoctl
{
    // System (/dev/kvm)
    public const uint GetApiVersion = 0xae00;
    public const uint CreateVm = 0xae01;
    public const uint CheckExtension = 0xae03;
    public const uint GetVcpuMmapSize = 0xae04;
    public const uint GetSupportedCpuid = 0xc008ae05;
    public const uint GetMsrIndexList = 0xc004ae02;
    public const uint GetMsrFeatureIndexList = 0xc004ae0a;

    // VM
    public const uint CreateVcpu = 0xae41;
    public const uint SetUserMemoryRegion = 0x4020ae46;
    public const uint SetTssAddr = 0xae47;
    public const uint SetIdentityMapAddr = 0x4008ae48;
    public const uint CreateIrqchip = 0xae60;
    public const uint IrqLine = 0x4008ae61;
    public const uint GetIrqchip = 0xc208ae62;
    public const uint SetIrqchip = 0x8208ae63;
    public const uint GetDirtyLog = 0x4010ae42;
    public const uint SetClock = 0x4030ae7b;
    public const uint GetClock = 0x8030ae7c;
    public const uint GetPit2 = 0x8070ae9f;
    public const uint SetPit2 = 0x4070aea0;
    public const uint SetGsiRouting = 0x4008ae6a;
    public const uint CreatePit2 = 0x4040ae77;
    public const uint EnableCap = 0x4068aea3;
    public const uint SetMsrFilter = 0x4188aec6;
    public const uint IrqFd = 0x4020ae76;
    public const uint IoEventFd = 0x4040ae79;

    // vCPU
    public const uint Run = 0xae80;
    public const uint GetRegs = 0x8090ae81;
    public const uint SetRegs = 0x4090ae82;
    public const uint GetSregs = 0x8138ae83;
    public const uint SetSregs = 0x4138ae84;
    public const uint Translate = 0xc018ae85;
    public const uint Interrupt = 0x4004ae86;
    public const uint GetMsrs = 0xc008ae88;
    public const uint SetMsrs = 0x4008ae89;
    public const uint SetSignalMask = 0x4004ae8b;
    public const uint GetFpu = 0x81a0ae8c;
    public const uint SetFpu = 0x41a0ae8d;
    public const uint SetCpuid2 = 0x4008ae90;
    public const uint GetCpuid2 = 0xc008ae91;
    public const uint GetLapic = 0x8400ae8e;
    public const uint SetLapic = 0x4400ae8f;
    public const uint SetTscKhz = 0xaea2;
    public const uint KvmclockCtrl = 0xaead;
    public const uint GetXsave2 = 0x9000aecf;
    public const uint GetMpState = 0x8004ae98;
    public const uint SetMpState = 0x4004ae99;
    public const uint SetGuestDebug = 0x4048ae9b;
    public const uint GetVcpuEvents = 0x8040ae9f;
    public const uint SetVcpuEvents = 0x4040aea0;
    public const uint GetDebugRegs = 0x8080aea1;
    public const uint SetDebugRegs = 0x4080aea2;
    public const uint GetTscKhz = 0xaea3;
    public const uint GetXsave = 0x9000aea4;
    public const uint SetXsave = 0x5000aea5;
    public const uint GetXcrs = 0x8188aea6;
    public const uint SetXcrs = 0x4188aea7;
    public const uint GetStatsFd = 0xaece;

    /// <summary>The ioctl's name as <c>linux/kvm.h</c> spells it, for error messages.</summary>
    public static string Name(uint request) => request switch
    {
        GetApiVersion => "KVM_GET_API_VERSION",
        CreateVm => "KVM_CREATE_VM",
        CheckExtension => "KVM_CHECK_EXTENSION",
        GetVcpuMmapSize => "KVM_GET_VCPU_MMAP_SIZE",
        GetSupportedCpuid => "KVM_GET_SUPPORTED_CPUID",
        GetMsrIndexList => "KVM_GET_MSR_INDEX_LIST",
        GetMsrFeatureIndexList => "KVM_GET_MSR_FEATURE_INDEX_LIST",
        SetIrqchip => "KVM_SET_IRQCHIP",
        GetDirtyLog => "KVM_GET_DIRTY_LOG",
        SetClock => "KVM_SET_CLOCK",
        GetClock => "KVM_GET_CLOCK",
        GetPit2 => "KVM_GET_PIT2",
        SetPit2 => "KVM_SET_PIT2",
        GetCpuid2 => "KVM_GET_CPUID2",
        GetLapic => "KVM_GET_LAPIC",
        SetLapic => "KVM_SET_LAPIC",
        SetTscKhz => "KVM_SET_TSC_KHZ",
        KvmclockCtrl => "KVM_KVMCLOCK_CTRL",
        GetXsave2 => "KVM_GET_XSAVE2",
        CreateVcpu => "KVM_CREATE_VCPU",
        SetUserMemoryRegion => "KVM_SET_USER_MEMORY_REGION",
        SetTssAddr => "KVM_SET_TSS_ADDR",
        SetIdentityMapAddr => "KVM_SET_IDENTITY_MAP_ADDR",
        CreateIrqchip => "KVM_CREATE_IRQCHIP",
        IrqLine => "KVM_IRQ_LINE",
        GetIrqchip => "KVM_GET_IRQCHIP",
        SetGsiRouting => "KVM_SET_GSI_ROUTING",
        CreatePit2 => "KVM_CREATE_PIT2",
        EnableCap => "KVM_ENABLE_CAP",
        SetMsrFilter => "KVM_X86_SET_MSR_FILTER",
        IrqFd => "KVM_IRQFD",
        IoEventFd => "KVM_IOEVENTFD",
        Run => "KVM_RUN",
        GetRegs => "KVM_GET_REGS",
        SetRegs => "KVM_SET_REGS",
        GetSregs => "KVM_GET_SREGS",
        SetSregs => "KVM_SET_SREGS",
        Translate => "KVM_TRANSLATE",
        Interrupt => "KVM_INTERRUPT",
        GetMsrs => "KVM_GET_MSRS",
        SetMsrs => "KVM_SET_MSRS",
        SetSignalMask => "KVM_SET_SIGNAL_MASK",
        GetFpu => "KVM_GET_FPU",
        SetFpu => "KVM_SET_FPU",
        SetCpuid2 => "KVM_SET_CPUID2",
        GetMpState => "KVM_GET_MP_STATE",
        SetMpState => "KVM_SET_MP_STATE",
        SetGuestDebug => "KVM_SET_GUEST_DEBUG",
        GetVcpuEvents => "KVM_GET_VCPU_EVENTS",
        SetVcpuEvents => "KVM_SET_VCPU_EVENTS",
        GetDebugRegs => "KVM_GET_DEBUGREGS",
        SetDebugRegs => "KVM_SET_DEBUGREGS",
        GetTscKhz => "KVM_GET_TSC_KHZ",
        GetXsave => "KVM_GET_XSAVE",
        SetXsave => "KVM_SET_XSAVE",
        GetXcrs => "KVM_GET_XCRS",
        SetXcrs => "KVM_SET_XCRS",
        _ => $"ioctl 0x{request:x}",
    };
}

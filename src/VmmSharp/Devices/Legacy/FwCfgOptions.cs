namespace VmmSharp.Devices.Legacy;

/// <summary>What <see cref="FwCfg"/> tells the firmware about the machine and the kernel to boot.</summary>
public sealed record FwCfgOptions
{
    /// <summary>The number of CPUs started at boot (<c>FW_CFG_NB_CPUS</c>).</summary>
    public required ushort CpuCount { get; init; }

    /// <summary>The maximum number of CPUs (<c>FW_CFG_MAX_CPUS</c>); <see cref="CpuCount"/> when null.</summary>
    public ushort? MaxCpus { get; init; }

    /// <summary>The RAM size in bytes (<c>FW_CFG_RAM_SIZE</c>).</summary>
    public required ulong RamSize { get; init; }

    /// <summary>Whether there is no graphical display (<c>FW_CFG_NOGRAPHIC</c>); true for a serial-console VM.</summary>
    public bool NoGraphic { get; init; } = true;

    /// <summary>The machine's UUID (<c>FW_CFG_UUID</c>), in the byte order firmware expects (RFC 4122, big-endian); all zeros when null.</summary>
    public IReadOnlyList<byte>? Uuid { get; init; }

    /// <summary>Where the kernel is loaded (<c>FW_CFG_KERNEL_ADDR</c>).</summary>
    public uint KernelAddress { get; init; }

    /// <summary>The kernel's size (<c>FW_CFG_KERNEL_SIZE</c>); kernel items are published when this or <see cref="KernelData"/> is set.</summary>
    public uint KernelSize { get; init; }

    /// <summary>The kernel's bytes (<c>FW_CFG_KERNEL_DATA</c>), for firmware that loads it; null for none.</summary>
    public IReadOnlyList<byte>? KernelData { get; init; }

    /// <summary>Where the initrd is loaded (<c>FW_CFG_INITRD_ADDR</c>).</summary>
    public uint InitrdAddress { get; init; }

    /// <summary>The initrd's size (<c>FW_CFG_INITRD_SIZE</c>); initrd items are published when this or <see cref="InitrdData"/> is set.</summary>
    public uint InitrdSize { get; init; }

    /// <summary>The initrd's bytes (<c>FW_CFG_INITRD_DATA</c>); null for none.</summary>
    public IReadOnlyList<byte>? InitrdData { get; init; }

    /// <summary>Where the Linux setup code is loaded (<c>FW_CFG_SETUP_ADDR</c>).</summary>
    public uint SetupAddress { get; init; }

    /// <summary>The Linux setup code's bytes (<c>FW_CFG_SETUP_DATA</c>, and its size); null for none.</summary>
    public IReadOnlyList<byte>? SetupData { get; init; }

    /// <summary>The kernel command line (without NUL); the command-line items are published when it is not null.</summary>
    public string? CommandLine { get; init; }

    /// <summary>Where the command line is placed (<c>FW_CFG_CMDLINE_ADDR</c> and the legacy <c>FW_CFG_KERNEL_CMDLINE</c>).</summary>
    public uint CommandLineAddress { get; init; }
}

namespace VmmSharp.Devices.Legacy;

/// <summary>What <see cref="FwCfg"/> tells the firmware about the machine and the kernel to boot.</summary>
public sealed record FwCfgOptions
{
    /// <summary>The number of CPUs started at boot (<see cref="FwCfgKeys.NbCpus"/>).</summary>
    public required ushort CpuCount { get; init; }

    /// <summary>The maximum number of CPUs (<see cref="FwCfgKeys.MaxCpus"/>); <see cref="CpuCount"/> when null.</summary>
    public ushort? MaxCpus { get; init; }

    /// <summary>The RAM size in bytes (<see cref="FwCfgKeys.RamSize"/>).</summary>
    public required ulong RamSize { get; init; }

    /// <summary>Whether there is no graphical display (<see cref="FwCfgKeys.NoGraphic"/>); true for a serial-console VM.</summary>
    public bool NoGraphic { get; init; } = true;

    /// <summary>The machine's UUID (<see cref="FwCfgKeys.Uuid"/>), in the byte order firmware expects (RFC 4122, big-endian); all zeros when null.</summary>
    public IReadOnlyList<byte>? Uuid { get; init; }

    /// <summary>Where the kernel is loaded (<see cref="FwCfgKeys.KernelAddress"/>).</summary>
    public uint KernelAddress { get; init; }

    /// <summary>The kernel's size (<see cref="FwCfgKeys.KernelSize"/>); kernel items are published when this or <see cref="KernelData"/> is set.</summary>
    public uint KernelSize { get; init; }

    /// <summary>The kernel's bytes (<see cref="FwCfgKeys.KernelData"/>), for firmware that loads it; null for none.</summary>
    public IReadOnlyList<byte>? KernelData { get; init; }

    /// <summary>Where the initrd is loaded (<see cref="FwCfgKeys.InitrdAddress"/>).</summary>
    public uint InitrdAddress { get; init; }

    /// <summary>The initrd's size (<see cref="FwCfgKeys.InitrdSize"/>); initrd items are published when this or <see cref="InitrdData"/> is set.</summary>
    public uint InitrdSize { get; init; }

    /// <summary>The initrd's bytes (<see cref="FwCfgKeys.InitrdData"/>); null for none.</summary>
    public IReadOnlyList<byte>? InitrdData { get; init; }

    /// <summary>Where the Linux setup code is loaded (<see cref="FwCfgKeys.SetupAddress"/>).</summary>
    public uint SetupAddress { get; init; }

    /// <summary>The Linux setup code's bytes (<see cref="FwCfgKeys.SetupData"/>, and its size); null for none.</summary>
    public IReadOnlyList<byte>? SetupData { get; init; }

    /// <summary>The kernel command line (without NUL); the command-line items are published when it is not null.</summary>
    public string? CommandLine { get; init; }

    /// <summary>Where the command line is placed (<see cref="FwCfgKeys.CommandLineAddress"/> and the legacy <see cref="FwCfgKeys.KernelCommandLine"/>).</summary>
    public uint CommandLineAddress { get; init; }
}

using VmmSharp.Arch.X86;
using VmmSharp.Cli.Commands;
using VmmSharp.Machine;

namespace VmmSharp.Cli.Api;

/// <summary>
/// The machine as configured before <c>InstanceStart</c>: what <c>PUT /boot-source</c>, <c>/machine-config</c>,
/// <c>/drives</c>, <c>/network-interfaces</c>, <c>/vsock</c> and <c>/entropy</c> (or a <c>--config-file</c>) set.
/// Each setter checks its resource as Firecracker does and throws <see cref="ApiFault"/> naming the bad value, leaving
/// the configuration as it was. Not thread-safe: <see cref="MicroVm"/> serialises the callers.
/// </summary>
internal sealed class VmConfiguration
{
    /// <summary>The command line when <c>boot_args</c> is not given (Firecracker's own default turns the serial console off).</summary>
    public const string DefaultBootArgs = "console=ttyS0";

    /// <summary>The longest drive or interface id Firecracker takes.</summary>
    public const int MaxIdLength = 64;

    private const long MaxMemSizeMib = 1L << 24; // 16 TiB: far past any host here; the machine checks what it can map

    private const int MaxTapNameLength = 15; // IFNAMSIZ - 1
    private const int MaxSerialLength = 20;  // VIRTIO_BLK_ID_BYTES

    private readonly List<Drive> _drives = [];
    private readonly List<NetworkInterface> _networks = [];

    public BootSource? BootSource { get; private set; }

    public MachineConfiguration Machine { get; private set; } = new() { VcpuCount = 1, MemSizeMib = (long)(MachineOptions.DefaultMemorySize >> 20), HugePages = "None" };

    public IReadOnlyList<Drive> Drives => _drives;

    public IReadOnlyList<NetworkInterface> NetworkInterfaces => _networks;

    public Vsock? Vsock { get; private set; }

    public EntropyDevice? Entropy { get; private set; }

    public void SetBootSource(BootSource boot)
    {
        RequireFile(boot.KernelImagePath, "kernel_image_path", "kernel");
        if (boot.InitrdPath is { } initrd)
        {
            RequireFile(initrd, "initrd_path", "initrd");
        }
        BootSource = boot;
    }

    public void SetMachine(MachineConfiguration config)
    {
        if (config.VcpuCount is < 1 or > MpTable.MaxCpus)
        {
            throw new ApiFault($"vcpu_count {config.VcpuCount}: give 1 to {MpTable.MaxCpus}");
        }
        if (config.MemSizeMib < 1 || config.MemSizeMib > MaxMemSizeMib)
        {
            throw new ApiFault($"mem_size_mib {config.MemSizeMib}: give {Layout.MinMemorySize >> 20} to {MaxMemSizeMib}");
        }
        try
        {
            Layout.ValidateMemorySize((ulong)config.MemSizeMib << 20);
        }
        catch (ArgumentException e)
        {
            throw new ApiFault($"mem_size_mib {config.MemSizeMib}: {Plain(e)}");
        }
        if (config.Smt)
        {
            throw new ApiFault("smt true: vmm gives each vCPU its own core; simultaneous multithreading is not supported");
        }
        if (config.CpuTemplate is not (null or "None"))
        {
            throw new ApiFault($"cpu_template '{config.CpuTemplate}': CPU templates are not supported (give None; vmm's --cpuid-mask hides CPUID bits)");
        }
        if (config.HugePages is not (null or "None"))
        {
            throw new ApiFault($"huge_pages '{config.HugePages}': huge pages are not supported (give None)");
        }
        Machine = new MachineConfiguration
        {
            VcpuCount = config.VcpuCount,
            MemSizeMib = config.MemSizeMib,
            TrackDirtyPages = config.TrackDirtyPages,
            HugePages = "None",
        };
    }

    public void PatchMachine(MachineConfigurationPatch patch) => SetMachine(new MachineConfiguration
    {
        VcpuCount = patch.VcpuCount ?? Machine.VcpuCount,
        MemSizeMib = patch.MemSizeMib ?? Machine.MemSizeMib,
        Smt = patch.Smt ?? Machine.Smt,
        CpuTemplate = patch.CpuTemplate ?? Machine.CpuTemplate,
        TrackDirtyPages = patch.TrackDirtyPages ?? Machine.TrackDirtyPages,
        HugePages = patch.HugePages ?? Machine.HugePages,
    });

    public void SetDrive(string pathId, Drive drive)
    {
        RequireId(pathId, drive.DriveId, "drive_id");
        if (drive.Socket is not null)
        {
            throw new ApiFault($"drive '{drive.DriveId}': socket (vhost-user-block) is not supported: give path_on_host");
        }
        if (drive.PathOnHost is not { } path)
        {
            throw new ApiFault($"drive '{drive.DriveId}': path_on_host is missing");
        }
        RequireFile(path, "path_on_host", $"drive '{drive.DriveId}'");
        if (drive.RateLimiter is not null)
        {
            throw new ApiFault($"drive '{drive.DriveId}': rate_limiter is not supported");
        }
        if (drive.IoEngine is not (null or "Sync"))
        {
            throw new ApiFault($"drive '{drive.DriveId}': io_engine '{drive.IoEngine}' is not supported (give Sync)");
        }
        if (drive.CacheType is not (null or "Unsafe" or "Writeback"))
        {
            throw new ApiFault($"drive '{drive.DriveId}': cache_type '{drive.CacheType}': give Unsafe or Writeback");
        }
        if (drive.IsRootDevice && _drives.Find(d => d.IsRootDevice && d.DriveId != drive.DriveId) is { } root)
        {
            throw new ApiFault($"drive '{drive.DriveId}': a root block device already exists ('{root.DriveId}')");
        }
        Replace(_drives, d => d.DriveId == drive.DriveId, drive);
    }

    public void SetNetworkInterface(string pathId, NetworkInterface net)
    {
        RequireId(pathId, net.IfaceId, "iface_id");
        string name = $"network interface '{net.IfaceId}'";
        if (net.HostDevName.Length is 0 or > MaxTapNameLength || net.HostDevName.Contains('/', StringComparison.Ordinal) || net.HostDevName.Contains('\0', StringComparison.Ordinal))
        {
            throw new ApiFault($"{name}: host_dev_name '{net.HostDevName}': give a TAP interface name of 1 to {MaxTapNameLength} characters");
        }
        if (net.GuestMac is { } mac && NetArgument.ParseMac(mac) is null)
        {
            throw new ApiFault($"{name}: guest_mac '{mac}': give six hex bytes, e.g. 06:00:ac:10:00:02");
        }
        if (net.Mtu is not null)
        {
            throw new ApiFault($"{name}: mtu is not supported (the guest picks its MTU)");
        }
        if (net.RxRateLimiter is not null || net.TxRateLimiter is not null)
        {
            throw new ApiFault($"{name}: rate limiters are not supported");
        }
        if (_networks.Find(n => n.IfaceId != net.IfaceId && n.HostDevName == net.HostDevName) is { } other)
        {
            throw new ApiFault($"{name}: host_dev_name '{net.HostDevName}' is already used by '{other.IfaceId}'");
        }
        if (net.GuestMac is not null && _networks.Find(n => n.IfaceId != net.IfaceId && string.Equals(n.GuestMac, net.GuestMac, StringComparison.OrdinalIgnoreCase)) is { } same)
        {
            throw new ApiFault($"{name}: guest_mac '{net.GuestMac}' is already used by '{same.IfaceId}'");
        }
        Replace(_networks, n => n.IfaceId == net.IfaceId, net);
    }

    public void SetVsock(Vsock vsock)
    {
        if (vsock.GuestCid is < 3 or > 0xFFFF_FFFE)
        {
            throw new ApiFault($"vsock: guest_cid {vsock.GuestCid} is reserved or too large: give 3 to 4294967294");
        }
        if (vsock.UdsPath.Length == 0 || vsock.UdsPath.Contains('\0', StringComparison.Ordinal))
        {
            throw new ApiFault($"vsock: uds_path '{vsock.UdsPath}': give the path of the Unix socket to create");
        }
        Vsock = vsock;
    }

    public void SetEntropy(EntropyDevice entropy)
    {
        if (entropy.RateLimiter is not null)
        {
            throw new ApiFault("entropy: rate_limiter is not supported");
        }
        Entropy = entropy;
    }

    /// <summary>The configuration as <c>GET /vm/config</c> shows it.</summary>
    public FullVmConfiguration Export(LoggerConfig? logger, MetricsConfig? metrics) => new()
    {
        BootSource = BootSource,
        MachineConfig = Machine,
        Drives = [.. _drives],
        NetworkInterfaces = [.. _networks],
        Vsock = Vsock,
        Entropy = Entropy,
        Logger = logger,
        Metrics = metrics,
    };

    /// <summary>The kernel command line: <c>boot_args</c>, plus <c>root=</c> for a root drive, as Firecracker adds it.</summary>
    public string CommandLine()
    {
        string args = BootSource?.BootArgs ?? DefaultBootArgs;
        if (_drives.Find(d => d.IsRootDevice) is not { } root)
        {
            return args;
        }
        string device = root.Partuuid is { } uuid ? $"PARTUUID={uuid}" : "/dev/vda";
        return $"{args} root={device} {(root.IsReadOnly == true ? "ro" : "rw")}".TrimStart();
    }

    /// <summary>The options <c>InstanceStart</c> builds the machine from; the root drive is the guest's vda.</summary>
    /// <exception cref="ApiFault">No boot source was given.</exception>
    public MachineOptions ToMachineOptions()
    {
        if (BootSource is not { } boot)
        {
            throw new ApiFault("cannot start the microVM without a kernel: PUT /boot-source first");
        }
        return new MachineOptions(boot.KernelImagePath)
        {
            InitrdPath = boot.InitrdPath,
            CommandLine = CommandLine(),
            MemorySize = (ulong)Machine.MemSizeMib << 20,
            CpuCount = Machine.VcpuCount,
            Rng = Entropy is not null,
            Disks = [.. _drives.OrderByDescending(d => d.IsRootDevice).Select(d => new DiskOptions(d.PathOnHost!)
            {
                ReadOnly = d.IsReadOnly == true,
                Serial = d.DriveId.Length <= MaxSerialLength ? d.DriveId : d.DriveId[..MaxSerialLength],
            })],
            Networks = [.. _networks.Select(n => new NetOptions(n.HostDevName) { Mac = n.GuestMac is { } m ? NetArgument.ParseMac(m) : null })],
            Vsock = Vsock is { } v ? new VsockOptions((ulong)v.GuestCid, v.UdsPath) : null,
        };
    }

    private static void RequireId(string pathId, string bodyId, string field)
    {
        if (pathId != bodyId)
        {
            throw new ApiFault($"the id in the path ('{pathId}') does not match {field} in the body ('{bodyId}')");
        }
        if (bodyId.Length is 0 or > MaxIdLength || !bodyId.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
        {
            throw new ApiFault($"{field} '{bodyId}': give 1 to {MaxIdLength} letters, digits or '_'");
        }
    }

    private static void RequireFile(string path, string field, string what)
    {
        if (path.Length == 0 || path.Contains('\0', StringComparison.Ordinal))
        {
            throw new ApiFault($"{field} '{path}': give the path of the {what} file");
        }
        if (!File.Exists(path))
        {
            throw new ApiFault($"{field} '{path}': the {what} file does not exist{(Directory.Exists(path) ? " (it is a directory)" : "")}");
        }
    }

    private static void Replace<T>(List<T> list, Predicate<T> same, T item)
    {
        int i = list.FindIndex(same);
        if (i < 0)
        {
            list.Add(item);
        }
        else
        {
            list[i] = item;
        }
    }

    private static string Plain(ArgumentException e) =>
        e.ParamName is null ? e.Message : e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal);
}

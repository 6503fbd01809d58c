using System.Text.Json.Serialization;

namespace VmmSharp.Cli.Api;

// The bodies of Firecracker's API (src/firecracker/swagger/firecracker.yaml), with its field names (snake_case, set by
// ApiJson) and its required fields. Unknown fields are refused by the serializer options, so a typo is a 400, not a no-op.

/// <summary><c>PUT /boot-source</c>.</summary>
internal sealed class BootSource
{
    public required string KernelImagePath { get; init; }

    public string? BootArgs { get; init; }

    public string? InitrdPath { get; init; }
}

/// <summary><c>PUT /machine-config</c>, and what <c>GET /machine-config</c> answers.</summary>
internal sealed class MachineConfiguration
{
    public required int VcpuCount { get; init; }

    public required long MemSizeMib { get; init; }

    public bool Smt { get; init; }

    public string? CpuTemplate { get; init; }

    public bool TrackDirtyPages { get; init; }

    public string? HugePages { get; init; }
}

/// <summary><c>PATCH /machine-config</c>: the fields given replace the current ones.</summary>
internal sealed class MachineConfigurationPatch
{
    public int? VcpuCount { get; init; }

    public long? MemSizeMib { get; init; }

    public bool? Smt { get; init; }

    public string? CpuTemplate { get; init; }

    public bool? TrackDirtyPages { get; init; }

    public string? HugePages { get; init; }
}

/// <summary>Firecracker's token bucket; accepted by the parser so that a request naming one gets a clear "not supported".</summary>
internal sealed class TokenBucket
{
    public long? OneTimeBurst { get; init; }

    public required long RefillTime { get; init; }

    public required long Size { get; init; }
}

/// <summary>Firecracker's rate limiter (not supported by vmm).</summary>
internal sealed class RateLimiter
{
    public TokenBucket? Bandwidth { get; init; }

    public TokenBucket? Ops { get; init; }
}

/// <summary><c>PUT /drives/{drive_id}</c>: a virtio-blk disk.</summary>
internal sealed class Drive
{
    public required string DriveId { get; init; }

    public required bool IsRootDevice { get; init; }

    public string? Partuuid { get; init; }

    public string? CacheType { get; init; }

    public bool? IsReadOnly { get; init; }

    public string? PathOnHost { get; init; }

    public RateLimiter? RateLimiter { get; init; }

    public string? IoEngine { get; init; }

    public string? Socket { get; init; }
}

/// <summary><c>PUT /network-interfaces/{iface_id}</c>: a virtio-net card on a host TAP.</summary>
internal sealed class NetworkInterface
{
    public required string IfaceId { get; init; }

    public required string HostDevName { get; init; }

    public string? GuestMac { get; init; }

    public int? Mtu { get; init; }

    public RateLimiter? RxRateLimiter { get; init; }

    public RateLimiter? TxRateLimiter { get; init; }
}

/// <summary><c>PUT /vsock</c>: the hybrid vsock device on a Unix socket.</summary>
internal sealed class Vsock
{
    public required long GuestCid { get; init; }

    public required string UdsPath { get; init; }

    public string? VsockId { get; init; }
}

/// <summary><c>PUT /entropy</c>: the virtio-rng device.</summary>
internal sealed class EntropyDevice
{
    public RateLimiter? RateLimiter { get; init; }
}

/// <summary><c>PUT /logger</c>.</summary>
internal sealed class LoggerConfig
{
    public string? Level { get; init; }

    public string? LogPath { get; init; }

    public bool? ShowLevel { get; init; }

    public bool? ShowLogOrigin { get; init; }

    public string? Module { get; init; }
}

/// <summary><c>PUT /metrics</c>.</summary>
internal sealed class MetricsConfig
{
    public required string MetricsPath { get; init; }

    public bool? EmitId { get; init; }

    public Dictionary<string, string>? Properties { get; init; }
}

/// <summary><c>PUT /actions</c>.</summary>
internal sealed class InstanceActionInfo
{
    public required string ActionType { get; init; }
}

/// <summary><c>PATCH /vm</c>.</summary>
internal sealed class VmState
{
    public required string State { get; init; }
}

/// <summary><c>PUT /snapshot/create</c>.</summary>
internal sealed class SnapshotCreateParams
{
    public required string MemFilePath { get; init; }

    public required string SnapshotPath { get; init; }

    public string? SnapshotType { get; init; }

    public string? Version { get; init; }
}

/// <summary>Where <c>PUT /snapshot/load</c> finds guest memory.</summary>
internal sealed class MemoryBackend
{
    public required string BackendType { get; init; }

    public required string BackendPath { get; init; }
}

/// <summary>A TAP to use instead of the snapshot's for one interface.</summary>
internal sealed class NetworkOverride
{
    public required string IfaceId { get; init; }

    public required string HostDevName { get; init; }
}

/// <summary><c>PUT /snapshot/load</c>.</summary>
internal sealed class SnapshotLoadParams
{
    public required string SnapshotPath { get; init; }

    public string? MemFilePath { get; init; }

    public MemoryBackend? MemBackend { get; init; }

    public bool? EnableDiffSnapshots { get; init; }

    public bool? TrackDirtyPages { get; init; }

    public bool? ResumeVm { get; init; }

    public List<NetworkOverride>? NetworkOverrides { get; init; }

    public bool? ClockRealtime { get; init; }

    public string? HugePages { get; init; }
}

/// <summary><c>GET /</c>.</summary>
internal sealed class InstanceInfo
{
    public required string AppName { get; init; }

    public required string Id { get; init; }

    public required string State { get; init; }

    public required string VmmVersion { get; init; }
}

/// <summary><c>GET /version</c>.</summary>
internal sealed class VersionInfo
{
    public required string FirecrackerVersion { get; init; }
}

/// <summary>The body of every error answer.</summary>
internal sealed class Fault
{
    public required string FaultMessage { get; init; }
}

/// <summary>
/// <c>GET /vm/config</c>, and the <c>--config-file</c> format: every resource under the name of its endpoint.
/// </summary>
internal sealed class FullVmConfiguration
{
    [JsonPropertyName("boot-source")]
    public BootSource? BootSource { get; init; }

    [JsonPropertyName("machine-config")]
    public MachineConfiguration? MachineConfig { get; init; }

    [JsonPropertyName("drives")]
    public List<Drive>? Drives { get; init; }

    [JsonPropertyName("network-interfaces")]
    public List<NetworkInterface>? NetworkInterfaces { get; init; }

    [JsonPropertyName("vsock")]
    public Vsock? Vsock { get; init; }

    [JsonPropertyName("entropy")]
    public EntropyDevice? Entropy { get; init; }

    [JsonPropertyName("logger")]
    public LoggerConfig? Logger { get; init; }

    [JsonPropertyName("metrics")]
    public MetricsConfig? Metrics { get; init; }
}

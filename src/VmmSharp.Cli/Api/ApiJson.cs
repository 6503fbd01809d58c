using System.Text.Json.Serialization;

namespace VmmSharp.Cli.Api;

/// <summary>
/// The API's JSON, generated at build time (NativeAOT: no reflection): snake_case names as Firecracker spells them,
/// unknown fields refused, nulls left out of answers.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    MaxDepth = 16)]
[JsonSerializable(typeof(BootSource))]
[JsonSerializable(typeof(MachineConfiguration))]
[JsonSerializable(typeof(MachineConfigurationPatch))]
[JsonSerializable(typeof(Drive))]
[JsonSerializable(typeof(NetworkInterface))]
[JsonSerializable(typeof(Vsock))]
[JsonSerializable(typeof(EntropyDevice))]
[JsonSerializable(typeof(LoggerConfig))]
[JsonSerializable(typeof(MetricsConfig))]
[JsonSerializable(typeof(InstanceActionInfo))]
[JsonSerializable(typeof(VmState))]
[JsonSerializable(typeof(SnapshotCreateParams))]
[JsonSerializable(typeof(SnapshotLoadParams))]
[JsonSerializable(typeof(InstanceInfo))]
[JsonSerializable(typeof(VersionInfo))]
[JsonSerializable(typeof(Fault))]
[JsonSerializable(typeof(FullVmConfiguration))]
internal sealed partial class ApiJson : JsonSerializerContext;

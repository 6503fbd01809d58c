using System.Text.Encodings.Web;
using System.Text.Json;
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
internal sealed partial class ApiJson : JsonSerializerContext
{
    /// <summary>
    /// The context the API uses: the generated options, with quotes and apostrophes in messages left as they are
    /// (the default encoder escapes them for HTML, which these answers never go into).
    /// </summary>
    public static ApiJson Api { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        MaxDepth = 16,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}

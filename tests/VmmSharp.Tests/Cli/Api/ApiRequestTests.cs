using System.Text;
using VmmSharp.Cli.Api;

namespace VmmSharp.Tests.Cli.Api;

/// <summary>Request bodies into the API's models: Firecracker's names, and a 400 that says what is wrong.</summary>
public class ApiRequestTests
{
    private static T Parse<T>(string json, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
        where T : class => ApiRequest.Parse(Encoding.UTF8.GetBytes(json), type);

    [Fact]
    public void FirecrackersSnakeCaseNamesFillTheModel()
    {
        Drive d = Parse("""{"drive_id": "rootfs", "path_on_host": "/img", "is_root_device": true, "is_read_only": false, "cache_type": "Unsafe"}""", ApiJson.Api.Drive);
        Assert.Equal("rootfs", d.DriveId);
        Assert.Equal("/img", d.PathOnHost);
        Assert.True(d.IsRootDevice);
    }

    [Fact]
    public void TheConfigFileUsesTheEndpointNames()
    {
        FullVmConfiguration c = Parse("""{"boot-source": {"kernel_image_path": "k"}, "machine-config": {"vcpu_count": 2, "mem_size_mib": 64}, "drives": []}""", ApiJson.Api.FullVmConfiguration);
        Assert.Equal("k", c.BootSource!.KernelImagePath);
        Assert.Equal(2, c.MachineConfig!.VcpuCount);
    }

    [Theory]
    [InlineData("null", "the body is null")]
    [InlineData("", "The input does not contain any JSON tokens")]
    [InlineData("[]", "could not be converted")]
    [InlineData("""{"action_type": 5}""", "could not be converted")]
    [InlineData("""{"action_type": "InstanceStart", "action_type": "X", "x": 1}""", "'x' could not be mapped")]
    [InlineData("{}", "missing required properties including: 'action_type'")]
    public void ABodyThatDoesNotFitTheModelIsAFaultSayingWhy(string json, string expected)
    {
        var fault = Assert.Throws<ApiFault>(() => Parse(json, ApiJson.Api.InstanceActionInfo));
        Assert.Equal(400, fault.Status);
        Assert.Contains(expected, fault.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DeepNestingIsRefusedNotRecursedInto()
    {
        string deep = """{"drive_id": "a", "is_root_device": false, "rate_limiter": {"bandwidth": """ + new string('[', 5000);
        Assert.Throws<ApiFault>(() => Parse(deep, ApiJson.Api.Drive));
    }

    [Fact]
    public async Task ReadingABodyStopsAtTheBound()
    {
        // Past MaxBodySize the rest is read only to be discarded (so that the client reads the 413), and only up to
        // MaxDrainSize more: an endless body is never read to its end.
        var endless = new MemoryStream(new byte[ApiRequest.MaxDrainSize * 4]);
        var fault = await Assert.ThrowsAsync<ApiFault>(() => ApiRequest.ReadBodyAsync(endless, null, CancellationToken.None));
        Assert.Equal(413, fault.Status);
        Assert.True(endless.Position <= ApiRequest.MaxBodySize + 1 + ApiRequest.MaxDrainSize, $"read {endless.Position} bytes");
    }

    [Fact]
    public async Task ARefusedBodyWithinTheDrainBoundIsReadToItsEnd()
    {
        var body = new MemoryStream(new byte[ApiRequest.MaxBodySize * 4]);
        var fault = await Assert.ThrowsAsync<ApiFault>(() => ApiRequest.ReadBodyAsync(body, body.Length, CancellationToken.None));
        Assert.Equal(413, fault.Status);
        Assert.Equal(body.Length, body.Position);
    }
}

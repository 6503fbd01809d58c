using System.Net;
using VmmSharp.Tests.Cli.Api;
using VmmSharp.Tests.Snapshot;
using VmmSharp.Tests.Support;
using static VmmSharp.Tests.Cli.Api.ApiCalls;

namespace VmmSharp.Tests.Cli;

/// <summary>
/// Bad snapshots given to the <c>vmm</c> process, through <c>vmm snapshot load</c> and the API's <c>PUT /snapshot/load</c>:
/// a truncated state file, a wrong checksum, an unknown version, a memory file of the wrong size, a missing state or
/// memory file, a guest CPUID the host lacks. Each is one line naming the value, a failure status, no stack trace, and
/// nothing left running.
/// </summary>
public sealed class SnapshotLoadRefusalTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vmmsharp-badload-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> Kinds => [.. BadSnapshots.Kinds];

    [Theory]
    [MemberData(nameof(Kinds))]
    public void SnapshotLoadRefusesABadSnapshotInOneLineAndExits(string kind)
    {
        KvmRequirement.Ensure();
        (string state, string memory, string expected) = BadSnapshots.Make(kind, _dir);
        SnapshotProcessTests.Outcome o = SnapshotProcessTests.Vmm("snapshot", "load", "--snapshot", state, "--mem", memory, "--timeout", "30");
        Assert.True(o.Status != 0, $"vmm snapshot load of a {kind} snapshot exited with 0");
        string line = Assert.Single(o.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("vmm: ", line, StringComparison.Ordinal);
        Assert.Contains(expected, line, StringComparison.Ordinal);
        Assert.Equal("", o.Stdout); // no guest ran
    }

    [Fact]
    public void TheApiRefusesEveryBadSnapshotWithOneFaultAndThenLoadsAGoodOne()
    {
        KvmRequirement.Ensure();
        using VmmApiProcess vmm = VmmApiProcess.Start("--timeout", "60");
        foreach (string kind in BadSnapshots.Kinds)
        {
            (string state, string memory, string expected) = BadSnapshots.Make(kind, _dir);
            Answer a = vmm.Client.Put("/snapshot/load", Load(state, memory));
            Assert.True(a.Status == HttpStatusCode.BadRequest, $"{kind}: {a.Status} {a.Body}");
            Assert.StartsWith("snapshot/load: ", a.Fault, StringComparison.Ordinal);
            Assert.Contains(expected, a.Fault, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', a.Fault);
            Assert.Equal("Not started", vmm.Client.Get("/").Json.GetProperty("state").GetString()); // nothing half-restored
        }

        // Nothing of the refused loads is in the way of a good one.
        string good = Path.Combine(_dir, "good.state");
        File.WriteAllBytes(good, BadSnapshots.Good.State);
        AssertNoContent(vmm.Client.Put("/snapshot/load", Load(good, BadSnapshots.Good.Memory)));
        Assert.Equal("Paused", vmm.Client.Get("/").Json.GetProperty("state").GetString());
        Assert.DoesNotContain("   at ", vmm.Stderr, StringComparison.Ordinal);
    }

    private static string Load(string state, string memory)
        => $$$"""{"snapshot_path": {{{Quoted(state)}}}, "mem_backend": {"backend_type": "File", "backend_path": {{{Quoted(memory)}}}}}""";
}

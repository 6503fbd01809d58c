using System.Diagnostics;
using System.Text.Json;
using VmmSharp.Tests.Guests;
using VmmSharp.Tests.Snapshot;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Cli.Api;

/// <summary>The README's recipe as a user types it: <c>curl --unix-socket</c> against a vmm process.</summary>
public class CurlRecipeTests
{
    [Fact]
    public void CurlConfiguresAndStartsAGuestAsTheReadmeShows()
    {
        KvmRequirement.Ensure();
        if (!File.Exists("/usr/bin/curl"))
        {
            Assert.Skip("curl is not installed (apt-get install curl; .ci/run installs it)");
        }
        using VmmApiProcess vmm = VmmApiProcess.Start();
        Assert.Equal("", Curl(vmm.SocketPath, "PUT", "/boot-source", $$"""{"kernel_image_path": "{{TestGuests.MarkerKernel}}", "boot_args": "console=ttyS0"}""", 204));
        Assert.Equal("", Curl(vmm.SocketPath, "PUT", "/machine-config", """{"vcpu_count": 1, "mem_size_mib": 128}""", 204));
        Assert.Contains("\"state\":\"Not started\"", Curl(vmm.SocketPath, "GET", "/", null, 200), StringComparison.Ordinal);
        Assert.Contains("\"fault_message\":\"invalid request method and/or path: GET /actions\"", Curl(vmm.SocketPath, "GET", "/actions", null, 400), StringComparison.Ordinal);
        Assert.Equal("", Curl(vmm.SocketPath, "PUT", "/actions", """{"action_type": "InstanceStart"}""", 204));
        Assert.Equal(1, vmm.WaitForExit(TimeSpan.FromSeconds(60)));
        Assert.Equal("VMM-MARKER", vmm.Stdout.Trim());
    }

    [Fact]
    public void CurlPausesSnapshotsAndRestoresAComputingGuestInANewProcess()
    {
        KvmRequirement.Ensure();
        if (!File.Exists("/usr/bin/curl"))
        {
            Assert.Skip("curl is not installed (apt-get install curl; .ci/run installs it)");
        }
        const ulong iterations = 1UL << 28;
        Task<ulong> expected = Task.Run(() => SnapshotGuests.Xorshift(SnapshotGuests.Seed, iterations));
        string dir = Directory.CreateTempSubdirectory("vmmsharp-curl-snap-").FullName;
        try
        {
            string kernel = Path.Combine(dir, "xorshift"), state = Path.Combine(dir, "state"), memory = Path.Combine(dir, "mem");
            File.WriteAllBytes(kernel, SnapshotGuests.XorshiftCounter(iterations));
            using (VmmApiProcess first = VmmApiProcess.Start("--timeout", "100"))
            {
                Curl(first.SocketPath, "PUT", "/boot-source", $$"""{"kernel_image_path": {{JsonSerializer.Serialize(kernel)}}}""", 204);
                Curl(first.SocketPath, "PUT", "/machine-config", """{"vcpu_count": 1, "mem_size_mib": 32}""", 204);
                Curl(first.SocketPath, "PUT", "/actions", """{"action_type": "InstanceStart"}""", 204);
                Thread.Sleep(300);
                Curl(first.SocketPath, "PATCH", "/vm", """{"state": "Paused"}""", 204);
                Curl(first.SocketPath, "PUT", "/snapshot/create", $$"""{"snapshot_type": "Full", "snapshot_path": {{JsonSerializer.Serialize(state)}}, "mem_file_path": {{JsonSerializer.Serialize(memory)}}}""", 204);
            } // killed
            ulong left = BadSnapshots.Vcpus(File.ReadAllBytes(state))[0].Regs.Rcx;
            Assert.True(left is > 0 and < iterations, $"the guest was not mid-computation at the snapshot: RCX {left:x}");

            using VmmApiProcess second = VmmApiProcess.Start("--timeout", "100");
            Curl(second.SocketPath, "PUT", "/snapshot/load", $$"""{"snapshot_path": {{JsonSerializer.Serialize(state)}}, "mem_backend": {"backend_type": "File", "backend_path": {{JsonSerializer.Serialize(memory)}}}, "resume_vm": true}""", 204);
            Assert.Equal(1, second.WaitForExit(TimeSpan.FromSeconds(100)));
            string output = second.Stdout.Trim();
            Assert.Equal($"{expected.Result:x16}", output.TrimStart('.'));
            // The restored run printed the dots of the rounds still to do (RCX = left down to 1: a dot at each multiple of 2^24), no more.
            Assert.Equal((int)(left >> 24), output.Count(c => c == '.'));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Runs curl; asserts the status code; returns the body.</summary>
    private static string Curl(string socket, string method, string path, string? json, int expectedStatus)
    {
        var start = new ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "-s", "-w", "\n%{http_code}", "--unix-socket", socket, "-X", method, $"http://localhost{path}" })
        {
            start.ArgumentList.Add(a);
        }
        if (json is not null)
        {
            start.ArgumentList.Add("-H");
            start.ArgumentList.Add("Content-Type: application/json");
            start.ArgumentList.Add("-d");
            start.ArgumentList.Add(json);
        }
        using Process curl = Process.Start(start)!;
        string output = curl.StandardOutput.ReadToEnd();
        Assert.True(curl.WaitForExit(30_000), "curl did not finish in 30 s");
        int split = output.LastIndexOf('\n');
        Assert.True(int.Parse(output[(split + 1)..], System.Globalization.CultureInfo.InvariantCulture) == expectedStatus, $"curl {method} {path}: {output}");
        return output[..split];
    }
}

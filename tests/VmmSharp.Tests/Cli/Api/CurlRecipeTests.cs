using System.Diagnostics;
using VmmSharp.Tests.Guests;
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

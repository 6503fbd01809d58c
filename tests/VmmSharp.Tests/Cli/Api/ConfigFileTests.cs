using System.Diagnostics;
using VmmSharp.Tests.Guests;
using VmmSharp.Tests.Support;
using static VmmSharp.Tests.Cli.Api.ApiCalls;

namespace VmmSharp.Tests.Cli.Api;

/// <summary><c>vmm run --config-file FILE</c> with Firecracker's configuration format, with and without the API.</summary>
public class ConfigFileTests
{
    private static (int Status, string Stdout, string Stderr) Vmm(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "vmm.dll"));
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }
        using Process p = Process.Start(start)!;
        p.StandardInput.Close();
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(90)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"vmm {string.Join(' ', args)} did not end within 90 s");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    private static string WriteConfig(string json)
    {
        string path = Path.Combine(Path.GetTempPath(), $"vmmsharp-config-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }

    private static string MarkerConfig(string extra = "") => $$"""
        {
          "boot-source": { "kernel_image_path": {{Quoted(TestGuests.MarkerKernel)}}, "boot_args": "console=ttyS0" },
          "machine-config": { "vcpu_count": 1, "mem_size_mib": 64 }{{extra}}
        }
        """;

    [Fact]
    public void AConfigFileWithNoApiBootsTheGuestAtOnce()
    {
        KvmRequirement.Ensure();
        string metrics = Path.Combine(Path.GetTempPath(), $"vmmsharp-metrics-{Guid.NewGuid():N}");
        string config = WriteConfig(MarkerConfig($$""", "metrics": { "metrics_path": {{Quoted(metrics)}} }"""));
        try
        {
            var o = Vmm("run", "--config-file", config, "--no-api");
            Assert.True(o.Status == 1, o.Stderr);
            Assert.Equal("VMM-MARKER", o.Stdout.Trim());
            Assert.Equal("", o.Stderr);
            // The last metrics line, written when the guest ended, counts its exits.
            string last = File.ReadAllLines(metrics).Last();
            Assert.Matches("\"exits_total\":[1-9]", last);
        }
        finally
        {
            File.Delete(config);
            File.Delete(metrics);
        }
    }

    [Fact]
    public void TheLoggersLogPathGetsTheMachinesLogInsteadOfStderr()
    {
        KvmRequirement.Ensure();
        string log = Path.Combine(Path.GetTempPath(), $"vmmsharp-log-{Guid.NewGuid():N}");
        string config = WriteConfig(MarkerConfig($$""", "logger": { "log_path": {{Quoted(log)}}, "level": "Info", "show_level": true }"""));
        try
        {
            var o = Vmm("run", "--config-file", config, "--no-api");
            Assert.True(o.Status == 1, o.Stderr);
            Assert.Equal("", o.Stderr);
            Assert.Contains("[vmm:Information] ", File.ReadAllText(log), StringComparison.Ordinal);
            Assert.Contains("debug-exit", File.ReadAllText(log), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(config);
            File.Delete(log);
        }
    }

    [Fact]
    public void AConfigFileWithAnApiSocketStartsTheGuestAndKeepsTheApi()
    {
        KvmRequirement.Ensure();
        string kernel = ApiTestGuests.Keyboard();
        string config = WriteConfig($$"""{ "boot-source": { "kernel_image_path": {{Quoted(kernel)}} } }""");
        string socket = Path.Combine(Path.GetTempPath(), $"vmmsharp-api-{Guid.NewGuid():N}.sock");
        try
        {
            using VmmApiProcess vmm = VmmApiProcess.StartWith(socket, ["run", "--config-file", config, "--api-sock", socket, "--timeout", "120"]);
            vmm.WaitForOutput(ApiTestGuests.ReadyLine, TimeSpan.FromSeconds(60));
            Assert.Equal("Running", vmm.Client.Get("/").Json.GetProperty("state").GetString());
            AssertNoContent(vmm.Client.Put("/actions", """{"action_type": "SendCtrlAltDel"}"""));
            Assert.Equal(ApiTestGuests.CtrlAltDelStatus, vmm.WaitForExit(TimeSpan.FromSeconds(60)));
        }
        finally
        {
            File.Delete(kernel);
            File.Delete(config);
        }
    }

    [Theory]
    [InlineData("""{ "boot-source": { "kernel_image_path": "KERNEL" }, "machine-config": { "vcpu_count": 1, "mem_size_mib": 64, "vcpus": 2 } }""", "The JSON property 'vcpus' could not be mapped")]
    [InlineData("""{ "boot-source": { "kernel_image_path": "KERNEL" }, "balloon": { "amount_mib": 1 } }""", "The JSON property 'balloon' could not be mapped")]
    [InlineData("""{ "boot-source": { "kernel_image_path": "/nonexistent/bzImage" } }""", "kernel_image_path '/nonexistent/bzImage': the kernel file does not exist")]
    [InlineData("""{ "boot-source": { "kernel_image_path": "KERNEL" }, "machine-config": { "vcpu_count": 0, "mem_size_mib": 64 } }""", "vcpu_count 0: give 1 to 254")]
    [InlineData("""{ "machine-config": { "vcpu_count": 1, "mem_size_mib": 64 } }""", "cannot start the microVM without a kernel")]
    [InlineData("""{ "boot-source": """, "invalid FullVmConfiguration body: ")]
    public void ABadConfigFileGetsOneLineNamingTheFileAndTheValue(string json, string expected)
    {
        KvmRequirement.Ensure();
        string config = WriteConfig(json.Replace("KERNEL", TestGuests.MarkerKernel, StringComparison.Ordinal));
        try
        {
            var o = Vmm("run", "--config-file", config, "--no-api");
            Assert.Equal(1, o.Status);
            string line = Assert.Single(o.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith($"vmm: --config-file '{config}': ", line, StringComparison.Ordinal);
            Assert.Contains(expected, line, StringComparison.Ordinal);
            Assert.Equal("", o.Stdout);
        }
        finally
        {
            File.Delete(config);
        }
    }

    [Fact]
    public void AMissingConfigFileGetsOneLineNamingIt()
    {
        var o = Vmm("run", "--config-file", "/nonexistent/vm.json", "--no-api");
        Assert.Equal(1, o.Status);
        Assert.Equal("vmm: --config-file '/nonexistent/vm.json': the file does not exist", o.Stderr.Trim());
    }

    [Theory]
    [InlineData(new[] { "run", "--no-api" }, "vmm: --no-api needs --config-file FILE")]
    [InlineData(new[] { "run", "--config-file", "vm.json" }, "vmm: --config-file FILE needs --api-sock PATH to keep the API, or --no-api")]
    [InlineData(new[] { "run", "--api-sock", "/tmp/x.sock", "--kernel", "bzImage" }, "vmm: --kernel does not apply with --api-sock or --config-file")]
    [InlineData(new[] { "run", "--metrics-path", "/tmp/m" }, "vmm: --metrics-path applies to a microVM run")]
    public void MicroVmOptionsThatDoNotFitTogetherGetOneLineAndStartNothing(string[] args, string expected)
    {
        var o = Vmm(args);
        Assert.Equal(1, o.Status);
        Assert.StartsWith(expected, o.Stderr, StringComparison.Ordinal);
    }
}

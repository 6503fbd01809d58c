using System.Diagnostics;
using System.Net;
using System.Text.Json;
using VmmSharp.Tests.Guests;
using VmmSharp.Tests.Support;
using static VmmSharp.Tests.Cli.Api.ApiCalls;

namespace VmmSharp.Tests.Cli.Api;

/// <summary>Real guests configured, started, paused, resumed and ended through the API of a vmm process.</summary>
public class ApiMachineTests
{
    private static readonly TimeSpan GuestTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public void BeforeAnyRequestMachineConfigAndVmConfigShowTheDefaults()
    {
        KvmRequirement.Ensure();
        using VmmApiProcess vmm = VmmApiProcess.Start();
        JsonElement machine = vmm.Client.Get("/machine-config").Json;
        Assert.Equal(1, machine.GetProperty("vcpu_count").GetInt32());
        Assert.Equal(128, machine.GetProperty("mem_size_mib").GetInt32());
        Assert.False(machine.GetProperty("smt").GetBoolean());
        JsonElement info = vmm.Client.Get("/").Json;
        Assert.Equal("Not started", info.GetProperty("state").GetString());
        Assert.Equal("anonymous-instance", info.GetProperty("id").GetString());
        Assert.False(vmm.Client.Get("/vm/config").Json.TryGetProperty("boot-source", out _));
    }

    [Fact]
    public void AConfiguredGuestRunsAndTheCommandEndsWithItsStatusAndRemovesTheSocket()
    {
        KvmRequirement.Ensure();
        using VmmApiProcess vmm = VmmApiProcess.Start();
        AssertNoContent(vmm.Client.Put("/boot-source", $$"""{"kernel_image_path": {{Quoted(TestGuests.MarkerKernel)}}, "boot_args": "console=ttyS0"}"""));
        AssertNoContent(vmm.Client.Put("/machine-config", """{"vcpu_count": 1, "mem_size_mib": 64}"""));
        JsonElement config = vmm.Client.Get("/vm/config").Json;
        Assert.Equal(TestGuests.MarkerKernel, config.GetProperty("boot-source").GetProperty("kernel_image_path").GetString());
        Assert.Equal(64, config.GetProperty("machine-config").GetProperty("mem_size_mib").GetInt32());

        AssertNoContent(vmm.Client.Put("/actions", """{"action_type": "InstanceStart"}"""));
        Assert.Equal(1, vmm.WaitForExit(GuestTimeout)); // the marker's debug-exit status
        Assert.Equal("VMM-MARKER", vmm.Stdout.Trim());
        Assert.False(File.Exists(vmm.SocketPath));
    }

    [Fact]
    public void AStartedGuestRefusesASecondStartAndEndsOnSendCtrlAltDel()
    {
        KvmRequirement.Ensure();
        string kernel = ApiTestGuests.Keyboard();
        try
        {
            using VmmApiProcess vmm = VmmApiProcess.Start("--timeout", "120");
            AssertNoContent(vmm.Client.Put("/boot-source", $$"""{"kernel_image_path": {{Quoted(kernel)}}}"""));
            AssertNoContent(vmm.Client.Put("/actions", """{"action_type": "InstanceStart"}"""));
            vmm.WaitForOutput(ApiTestGuests.ReadyLine, GuestTimeout);
            Assert.Equal("Running", vmm.Client.Get("/").Json.GetProperty("state").GetString());

            Answer again = vmm.Client.Put("/actions", """{"action_type": "InstanceStart"}""");
            Assert.Equal(HttpStatusCode.BadRequest, again.Status);
            Assert.Equal("InstanceStart: the microVM has started; this is only possible before InstanceStart", again.Fault);
            Answer late = vmm.Client.Put("/boot-source", $$"""{"kernel_image_path": {{Quoted(kernel)}}}""");
            Assert.Equal(HttpStatusCode.BadRequest, late.Status);

            AssertNoContent(vmm.Client.Put("/actions", """{"action_type": "SendCtrlAltDel"}"""));
            Assert.Equal(ApiTestGuests.CtrlAltDelStatus, vmm.WaitForExit(GuestTimeout));
        }
        finally
        {
            File.Delete(kernel);
        }
    }

    [Fact]
    public void APausedGuestMakesNoExitsUntilResumedAsTheMetricsShow()
    {
        KvmRequirement.Ensure();
        string kernel = ApiTestGuests.Keyboard();
        string metrics = Path.Combine(Path.GetTempPath(), $"vmmsharp-metrics-{Guid.NewGuid():N}.json");
        try
        {
            using VmmApiProcess vmm = VmmApiProcess.Start("--timeout", "120");
            AssertNoContent(vmm.Client.Put("/boot-source", $$"""{"kernel_image_path": {{Quoted(kernel)}}}"""));
            AssertNoContent(vmm.Client.Put("/metrics", $$"""{"metrics_path": {{Quoted(metrics)}}}"""));
            AssertNoContent(vmm.Client.Put("/actions", """{"action_type": "InstanceStart"}"""));
            vmm.WaitForOutput(ApiTestGuests.ReadyLine, GuestTimeout);

            AssertNoContent(vmm.Client.Patch("/vm", """{"state": "Paused"}"""));
            Assert.Equal("Paused", vmm.Client.Get("/").Json.GetProperty("state").GetString());
            Answer twice = vmm.Client.Patch("/vm", """{"state": "Paused"}""");
            Assert.Equal(HttpStatusCode.BadRequest, twice.Status);
            Assert.Contains("paused", twice.Fault, StringComparison.Ordinal);
            long pausedA = Flush(vmm, metrics);
            Thread.Sleep(300);
            long pausedB = Flush(vmm, metrics);
            Assert.Equal(pausedA, pausedB);

            AssertNoContent(vmm.Client.Patch("/vm", """{"state": "Resumed"}"""));
            Assert.Equal("Running", vmm.Client.Get("/").Json.GetProperty("state").GetString());
            var clock = Stopwatch.StartNew();
            while (Flush(vmm, metrics) == pausedB && clock.Elapsed < GuestTimeout)
            {
                Thread.Sleep(50);
            }
            Assert.True(Flush(vmm, metrics) > pausedB, "the resumed guest made no exits");
            JsonElement last = LastLine(metrics);
            Assert.True(last.GetProperty("latencies_us").GetProperty("pause_vm").GetInt64() > 0);
            Assert.True(last.GetProperty("vcpu").GetProperty("exits").GetProperty("Io").GetInt64() > 0);

            AssertNoContent(vmm.Client.Put("/actions", """{"action_type": "SendCtrlAltDel"}"""));
            Assert.Equal(ApiTestGuests.CtrlAltDelStatus, vmm.WaitForExit(GuestTimeout));
        }
        finally
        {
            File.Delete(kernel);
            File.Delete(metrics);
        }
    }

    [Fact]
    public void APausedGuestSnapshottedThroughTheApiContinuesInANewProcessWithoutStartingOver()
    {
        KvmRequirement.Ensure();
        string kernel = ApiTestGuests.Keyboard();
        string state = Path.Combine(Path.GetTempPath(), $"vmmsharp-api-state-{Guid.NewGuid():N}");
        string memory = state + ".mem";
        try
        {
            using (VmmApiProcess first = VmmApiProcess.Start("--timeout", "120"))
            {
                AssertNoContent(first.Client.Put("/boot-source", $$"""{"kernel_image_path": {{Quoted(kernel)}}}"""));
                AssertNoContent(first.Client.Put("/machine-config", """{"vcpu_count": 1, "mem_size_mib": 32}"""));
                AssertNoContent(first.Client.Put("/actions", """{"action_type": "InstanceStart"}"""));
                first.WaitForOutput(ApiTestGuests.ReadyLine, GuestTimeout);
                Answer running = first.Client.Put("/snapshot/create", $$"""{"snapshot_path": {{Quoted(state)}}, "mem_file_path": {{Quoted(memory)}}}""");
                Assert.Equal(HttpStatusCode.BadRequest, running.Status); // a running VM cannot be snapshotted
                AssertNoContent(first.Client.Patch("/vm", """{"state": "Paused"}"""));
                AssertNoContent(first.Client.Put("/snapshot/create", $$"""{"snapshot_path": {{Quoted(state)}}, "mem_file_path": {{Quoted(memory)}}, "snapshot_type": "Full"}"""));
            } // killed: the snapshot is all that is left of it

            using VmmApiProcess second = VmmApiProcess.Start("--timeout", "120");
            AssertNoContent(second.Client.Put("/snapshot/load", $$"""{"snapshot_path": {{Quoted(state)}}, "mem_backend": {"backend_type": "File", "backend_path": {{Quoted(memory)}}}, "resume_vm": true}"""));
            Assert.Equal("Running", second.Client.Get("/").Json.GetProperty("state").GetString());
            AssertNoContent(second.Client.Put("/actions", """{"action_type": "SendCtrlAltDel"}"""));
            Assert.Equal(ApiTestGuests.CtrlAltDelStatus, second.WaitForExit(GuestTimeout));
            Assert.DoesNotContain(ApiTestGuests.ReadyLine, second.Stdout, StringComparison.Ordinal); // it went on polling, it did not boot again
        }
        finally
        {
            File.Delete(kernel);
            File.Delete(state);
            File.Delete(memory);
        }
    }

    [Fact]
    public void MetricsLinesAreWrittenEveryIntervalWithoutAFlush()
    {
        KvmRequirement.Ensure();
        string kernel = ApiTestGuests.Keyboard();
        string metrics = Path.Combine(Path.GetTempPath(), $"vmmsharp-metrics-{Guid.NewGuid():N}.json");
        try
        {
            using VmmApiProcess vmm = VmmApiProcess.Start("--timeout", "120", "--metrics-path", metrics, "--metrics-interval", "0.2");
            AssertNoContent(vmm.Client.Put("/boot-source", $$"""{"kernel_image_path": {{Quoted(kernel)}}}"""));
            AssertNoContent(vmm.Client.Put("/actions", """{"action_type": "InstanceStart"}"""));
            vmm.WaitForOutput(ApiTestGuests.ReadyLine, GuestTimeout);

            // No FlushMetrics: the lines come by themselves, about a period apart, and follow the running guest.
            var clock = Stopwatch.StartNew();
            JsonElement[] running = [];
            while (running.Length < 5 && clock.Elapsed < GuestTimeout)
            {
                Thread.Sleep(100);
                running = [.. File.ReadAllLines(metrics).Select(l => JsonDocument.Parse(l).RootElement)
                    .Where(e => e.GetProperty("vmm").GetProperty("state").GetString() == "Running")];
            }
            Assert.True(running.Length >= 5, $"{running.Length} metrics lines of the running guest in {clock.Elapsed.TotalSeconds:0} s");
            long[] stamps = [.. running.Select(e => e.GetProperty("utc_timestamp_ms").GetInt64())];
            long[] gaps = [.. stamps.Zip(stamps.Skip(1), (a, b) => b - a).Order()];
            Assert.True(gaps[gaps.Length / 2] is >= 150 and <= 2000, $"lines {string.Join(", ", gaps)} ms apart"); // the median: one late timer tick may come close after another
            long[] exits = [.. running.Select(e => e.GetProperty("vcpu").GetProperty("exits_total").GetInt64())];
            Assert.True(exits[^1] > exits[0], $"the polling guest's exits did not grow: {string.Join(", ", exits)}");
            Assert.Equal(0, running[^1].GetProperty("metrics").GetProperty("lines_dropped").GetInt64());

            AssertNoContent(vmm.Client.Put("/actions", """{"action_type": "SendCtrlAltDel"}"""));
            Assert.Equal(ApiTestGuests.CtrlAltDelStatus, vmm.WaitForExit(GuestTimeout));
        }
        finally
        {
            File.Delete(kernel);
            File.Delete(metrics);
        }
    }

    private static long Flush(VmmApiProcess vmm, string metrics)
    {
        AssertNoContent(vmm.Client.Put("/actions", """{"action_type": "FlushMetrics"}"""));
        return LastLine(metrics).GetProperty("vcpu").GetProperty("exits_total").GetInt64();
    }

    private static JsonElement LastLine(string metrics)
    {
        string line = File.ReadAllLines(metrics).Last();
        return JsonDocument.Parse(line).RootElement;
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using VmmSharp.Tests.Guests;
using VmmSharp.Tests.Machine;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Cli;

/// <summary>The <c>vmm</c> command as a user runs it: a separate process, its exit status, stdout and stderr.</summary>
public class VmmCommandTests
{
    private sealed record Outcome(int Status, string Stdout, string Stderr)
    {
        public string[] StderrLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    private static ProcessStartInfo VmmStart(string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "vmm.dll"));
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }
        return start;
    }

    private static Outcome Vmm(string stdin, params string[] args)
    {
        using Process process = Process.Start(VmmStart(args))!;
        process.StandardInput.Write(stdin);
        process.StandardInput.Close();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"vmm {string.Join(' ', args)} did not end within 60 s; stdout so far: {stdout.Result}");
        }
        return new Outcome(process.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void RunWithoutArgumentsRunsTheDemoGuestAndSummarizes()
    {
        KvmRequirement.Ensure();
        Outcome o = Vmm("", "run", "--timeout", "30");
        Assert.True(o.Status == 0, o.Stderr);
        Assert.Contains("Drawn at CPL3 in 64-bit long mode by the guest", o.Stdout, StringComparison.Ordinal);
        Assert.Contains("@@@@", o.Stdout.Replace('#', '@'), StringComparison.Ordinal); // the set's body
        Assert.Matches(@"vmm: guest exited with status 0 .* after [0-9.]+ ms\nvmm: exits: Startup 1 Io [0-9]+", o.Stderr);
    }

    [Fact]
    public void InfoNamesTheApiVersionAndTheKindOfVirtualization()
    {
        KvmRequirement.Ensure();
        Outcome o = Vmm("", "info");
        Assert.Equal(0, o.Status);
        Assert.Contains("KVM API version:  12", o.Stdout, StringComparison.Ordinal);
        Assert.Matches(@"virtualization:\s+(Vmx|Svm|Pvm)", o.Stdout);
        Assert.Matches(@"(yes|no)\s+SyncRegs", o.Stdout);
    }

    [Fact]
    public void InfoReportsWhatItsProbeVmsMeasuredAsThisKindOfHostBehaves()
    {
        KvmRequirement.Ensure();
        Outcome o = Vmm("", "info");
        Assert.Equal(0, o.Status);
        bool pvm = VmmSharp.Kvm.KvmSystem.Virtualization.Kind == VmmSharp.Kvm.HostVirtualizationKind.Pvm;
        Assert.Matches(@"guests here \(measured by two probe VMs in [0-9.]+ ms\)", o.Stdout);
        Assert.Contains(pvm ? "CPL0 code:      emulated by KVM's instruction emulator" : "CPL0 code:      runs natively", o.Stdout, StringComparison.Ordinal);
        Assert.Contains(pvm ? "user syscall:   does not enter the guest kernel" : "user syscall:   enters the guest kernel at CPL0", o.Stdout, StringComparison.Ordinal);
        Assert.Matches(pvm ? @"CPUID policy:   hides .* of what KVM offers \([0-9]+ features in the Pvm policy\)" : "CPUID policy:   hides nothing", o.Stdout);
        Assert.Contains("fallback:", o.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void AKernelGetsStdinOnCom1AndTheProcessExitsWithTheDebugExitStatus()
    {
        KvmRequirement.Ensure();
        string path = GuestImages.Write(SerialInputTests.EchoKernel(), "echo-cli");
        try
        {
            Outcome o = Vmm("ping!", "run", "--kernel", path, "--timeout", "30");
            Assert.True(o.Status == 1, o.Stderr);
            Assert.Equal("ping", o.Stdout);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ASuccessfulKernelRunPrintsOnlyTheGuestsOutputAndNothingOnStderr()
    {
        KvmRequirement.Ensure();
        Outcome o = Vmm("", "run", "--kernel", TestGuests.MarkerKernel);
        Assert.Equal(1, o.Status);
        Assert.Equal("VMM-MARKER", o.Stdout.Trim());
        Assert.Equal("", o.Stderr);
    }

    [Fact]
    public void TheRetiredQuietOptionIsStillAccepted()
    {
        KvmRequirement.Ensure();
        Outcome o = Vmm("", "run", "--kernel", TestGuests.MarkerKernel, "--quiet");
        Assert.Equal(1, o.Status);
        Assert.Equal("", o.Stderr);
    }

    [Theory]
    [InlineData("--stats")]
    [InlineData("--log-level", "information")]
    public void StatsOrInformationLoggingPrintsTheSummaryOnStderr(params string[] option)
    {
        KvmRequirement.Ensure();
        Outcome o = Vmm("", ["run", "--kernel", TestGuests.MarkerKernel, .. option]);
        Assert.Equal(1, o.Status);
        Assert.Equal("VMM-MARKER", o.Stdout.Trim());
        Assert.Matches(@"vmm: guest wrote to the debug-exit port: status 1; status 1 after [0-9.]+ ms \(Pvh kernel\)\nvmm: exits: ", o.Stderr);
    }

    [Fact]
    public void AFailedRunSaysWhyInOneLineOnStderr()
    {
        KvmRequirement.Ensure();
        string path = GuestImages.Write(GuestImages.TripleFault(), "triple-cli");
        try
        {
            Outcome o = Vmm("", "run", "--kernel", path, "--timeout", "30");
            Assert.Equal(2, o.Status);
            Assert.Single(o.StderrLines);
            Assert.StartsWith("vmm: error: ", o.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void AGuestThatKeepsResettingStopsAtTheRebootLimitWithOneLineNamingIt()
    {
        KvmRequirement.Ensure();
        string path = GuestImages.Write(GuestImages.BzImageRunning(a =>
        {
            a.mov(Iced.Intel.AssemblerRegisters.al, 0xfe);
            a.@out(0x64, Iced.Intel.AssemblerRegisters.al);
            a.hlt();
        }), "reboot-cli");
        try
        {
            Outcome o = Vmm("", "run", "--kernel", path, "--on-reset", "reboot", "--max-reboots", "2", "--timeout", "30");
            Assert.Equal(2, o.Status);
            Assert.Equal("vmm: error: the guest reset again after 2 reboots, the limit (--max-reboots 2); status 2", Assert.Single(o.StderrLines));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void AGuestResetEndsTheRunWithTheResetStatusAndNoError()
    {
        KvmRequirement.Ensure();
        string path = GuestImages.Write(GuestImages.BzImageRunning(a =>
        {
            a.mov(Iced.Intel.AssemblerRegisters.al, 0xfe);
            a.@out(0x64, Iced.Intel.AssemblerRegisters.al);
            a.hlt();
        }), "reset-status-cli");
        try
        {
            // As a kernel's panic=-1 reboot ends a run: the status says a reset ended it, stderr stays empty.
            Outcome o = Vmm("", "run", "--kernel", path, "--reset-status", "3", "--timeout", "30");
            Assert.Equal(3, o.Status);
            Assert.Empty(o.StderrLines);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ProfileWritesTheSampledAddressesOfAGuestToTheFile()
    {
        KvmRequirement.Ensure();
        // A CPL0 loop (every instruction emulated on PVM, so it takes a while there), then a reset.
        string path = GuestImages.Write(GuestImages.BzImageRunning(a =>
        {
            var loop = a.CreateLabel();
            a.mov(Iced.Intel.AssemblerRegisters.ecx, 300_000);
            a.Label(ref loop);
            a.dec(Iced.Intel.AssemblerRegisters.ecx);
            a.jnz(loop);
            a.mov(Iced.Intel.AssemblerRegisters.al, 0xfe);
            a.@out(0x64, Iced.Intel.AssemblerRegisters.al);
            a.hlt();
        }), "profile-cli");
        string report = Path.Combine(Path.GetTempPath(), $"vmmsharp-profile-{Guid.NewGuid():N}.txt");
        try
        {
            Outcome o = Vmm("", "run", "--kernel", path, "--profile", report, "--profile-interval", "1", "--timeout", "60");
            Assert.Equal(0, o.Status);
            string line = Assert.Single(o.StderrLines);
            Assert.StartsWith("vmm: profile: ", line, StringComparison.Ordinal);
            Assert.Contains("(no symbols: give --symbols System.map)", line, StringComparison.Ordinal);
            string[] lines = File.ReadAllLines(report);
            Assert.StartsWith("# guest profile: ", lines[0], StringComparison.Ordinal);
            if (VmmSharp.Kvm.KvmSystem.Virtualization.Kind == VmmSharp.Kvm.HostVirtualizationKind.Pvm)
            {
                // 600 000 emulated instructions take a good part of a second here: the loop is sampled.
                Assert.DoesNotContain("profile: 0 samples", line, StringComparison.Ordinal);
                Assert.Contains(lines, l => l.Contains("  [unknown]", StringComparison.Ordinal) || l.Contains("  [user or low memory]", StringComparison.Ordinal));
            }
            TestContext.Current.SendDiagnosticMessage(line);
        }
        finally
        {
            File.Delete(path);
            File.Delete(report);
        }
    }

    [Fact]
    public void ABadSymbolFileIsOneLineNamingIt()
    {
        string symbols = Path.Combine(Path.GetTempPath(), $"vmmsharp-symbols-{Guid.NewGuid():N}.map");
        File.WriteAllText(symbols, "not symbols\n");
        try
        {
            Outcome o = Vmm("", "run", "--kernel", symbols, "--profile", "/dev/null", "--symbols", symbols);
            Assert.Equal(2, o.Status);
            Assert.Equal($"vmm: error: --symbols: symbol file '{symbols}': no text symbols (lines 'ADDRESS T NAME') found: not an ELF file or a System.map", Assert.Single(o.StderrLines));
        }
        finally
        {
            File.Delete(symbols);
        }
    }

    [Fact]
    public void AStdoutNobodyReadsNeitherHoldsTheRunPastItsTimeoutNorHangsTheCommand()
    {
        KvmRequirement.Ensure();
        string path = GuestImages.Write(ConsoleTests.SpamKernel(), "spam-cli");
        using var pipe = new StalledPipe();
        try
        {
            // stdout is a pipe that fills after 4 KiB and is never read; the guest prints far more than that.
            var start = new ProcessStartInfo("/bin/sh") { RedirectStandardInput = true, RedirectStandardError = true };
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add("exec dotnet \"$0\" run --kernel \"$1\" --timeout 1 > \"$2\"");
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "vmm.dll"));
            start.ArgumentList.Add(path);
            start.ArgumentList.Add(pipe.Path);
            var clock = Stopwatch.StartNew();
            using Process process = Process.Start(start)!;
            process.StandardInput.Close();
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            bool ended = process.WaitForExit(TimeSpan.FromSeconds(30));
            if (!ended)
            {
                process.Kill(entireProcessTree: true);
            }
            Assert.True(ended, "vmm with a stalled stdout did not end within 30 s of a 1 s timeout");
            Assert.Equal(124, process.ExitCode);
            string[] lines = stderr.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Contains("did not finish within its deadline of 1 s", lines[0], StringComparison.Ordinal);
            Assert.Contains("did not reach standard output", Assert.Single(lines[1..]), StringComparison.Ordinal);
            TestContext.Current.SendDiagnosticMessage($"vmm with a stalled stdout and --timeout 1 ended after {clock.Elapsed.TotalSeconds:0.0} s");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void CtrlAXOnTheTerminalEndsARunWhoseStdoutIsStalled()
    {
        KvmRequirement.Ensure();
        string path = GuestImages.Write(ConsoleTests.SpamKernel(), "spam-ctrl-a-x");
        using var pipe = new StalledPipe();
        using var pty = Terminal.Pty.Open();
        try
        {
            var start = new ProcessStartInfo("/bin/sh") { RedirectStandardError = true };
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add("exec dotnet \"$0\" run --kernel \"$1\" --timeout 60 < \"$2\" > \"$3\"");
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "vmm.dll"));
            start.ArgumentList.Add(path);
            start.ArgumentList.Add(pty.Path);
            start.ArgumentList.Add(pipe.Path);
            using Process process = Process.Start(start)!;
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            // The guest runs and stdout is stalled; the terminal is in raw mode, so the escape reaches vmm as typed.
            Assert.True(SpinWait.SpinUntil(() => pipe.Queued >= 2048 || process.HasExited, TimeSpan.FromSeconds(30)), "the guest's output never reached stdout");
            Thread.Sleep(500); // the guest fills the pipe and goes on into vmm's buffer
            Assert.Equal(0u, pty.LocalFlags() & 0x2);
            pty.Type(0x01, (byte)'x');
            bool ended = process.WaitForExit(TimeSpan.FromSeconds(20));
            if (!ended)
            {
                process.Kill(entireProcessTree: true);
            }
            Assert.True(ended, "Ctrl-A x did not end a run whose stdout was stalled");
            Assert.True(process.ExitCode == 0, stderr.Result);
            Assert.NotEqual(0u, pty.LocalFlags() & 0x2); // the terminal is back in canonical mode
            // The pipe really was stalled: the guest's last output could not be written.
            Assert.Contains("did not reach standard output", stderr.Result, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("--kernel /nonexistent/kernel", "kernel image '/nonexistent/kernel' not found")]
    [InlineData("--kernel /dev/zero", "kernel image '/dev/zero' is a character device, not a regular file")]
    [InlineData("--kernel /tmp", "kernel image '/tmp' is a directory")]
    [InlineData("--kernel MARKER --initrd /dev/zero", "initrd '/dev/zero' is a character device")]
    [InlineData("--kernel MARKER --timeout 1e300", "--timeout '1e300': give a number of seconds from 0 (no limit) to 2147483")]
    [InlineData("--kernel MARKER --timeout 3000000", "--timeout '3000000': give a number of seconds")]
    [InlineData("--kernel MARKER --timeout -1", "--timeout '-1': give a number of seconds")]
    [InlineData("--kernel MARKER --timeout NaN", "--timeout 'NaN': give a number of seconds")]
    [InlineData("--kernel MARKER --mem 12X", "memory size '12X' is not a positive number")]
    [InlineData("--kernel MARKER --mem 0", "memory size '0' is not a positive number")]
    [InlineData("--kernel MARKER --mem 1", "--mem '1': guest memory size 0x1 (1 bytes) is below the minimum")]
    [InlineData("--kernel MARKER --mem 99999999999T", "memory size '99999999999T' is too large")]
    [InlineData("--kernel MARKER --cpus 0", "--cpus '0': give a whole number from 1 to 254")]
    [InlineData("--kernel MARKER --cpus -1", "--cpus '-1': give a whole number from 1 to 254")]
    [InlineData("--kernel MARKER --cpus 99999999999", "--cpus '99999999999': give a whole number from 1 to 254")]
    [InlineData("--kernel MARKER --cpus two", "--cpus 'two': give a whole number")]
    [InlineData("--kernel MARKER --cpuid-mask garbage", "CPUID mask 'garbage' is not LEAF[.SUBLEAF]:REGISTER:MASK")]
    [InlineData("--kernel MARKER --cpuid-mask 1:ecx:zz", "'zz' is not a number")]
    [InlineData("--kernel MARKER --on-reset never", "--on-reset 'never': give one of exit, reboot")]
    [InlineData("--kernel MARKER --log-level loud", "--log-level 'loud': give one of trace, debug, information")]
    [InlineData("--kernel MARKER --max-reboots -1", "--max-reboots '-1': give a whole number from 0 to 1000000")]
    [InlineData("--mem 512M", "--mem applies to a kernel run: give --kernel FILE too")]
    [InlineData("--api-sock /tmp/vmmsharp-unused.sock --metrics-interval 0", "--metrics-interval '0': give a number of seconds from 0.01 to 86400")]
    [InlineData("--kernel MARKER --metrics-interval 1", "--metrics-interval applies to a microVM run")]
    public void BadRunInputGetsOneClearLineAndStartsNothing(string arguments, string expected)
    {
        KvmRequirement.Ensure();
        string[] args = ["run", .. arguments.Replace("MARKER", TestGuests.MarkerKernel, StringComparison.Ordinal).Split(' ')];
        Outcome o = Vmm("", args);
        Assert.NotEqual(0, o.Status);
        Assert.Contains(expected, Assert.Single(o.StderrLines), StringComparison.Ordinal);
        Assert.Equal("", o.Stdout); // no guest ran
    }

    [Fact]
    public void StartupBenchReportsTheTimeToProcessExitAfterTheMarker()
    {
        KvmRequirement.Ensure();
        string vmm = Path.Combine(AppContext.BaseDirectory, "vmm"); // the apphost: the bench spawns it as a command
        Outcome o = Vmm("", "bench", "startup", "--runs", "2", "--guest", TestGuests.MarkerKernel, "--vmm", vmm);
        Assert.True(o.Status == 0, o.Stderr);
        MatchCollection runs = Regex.Matches(o.Stdout, @"vmm  marker +([0-9.]+) ms  exit +([0-9.]+) ms");
        Assert.Equal(2, runs.Count);
        Assert.All(runs, r => Assert.True(double.Parse(r.Groups[2].Value, CultureInfo.InvariantCulture) >= double.Parse(r.Groups[1].Value, CultureInfo.InvariantCulture), r.Value));
        Assert.Matches(@"\nexit: vmm [0-9.]+ ms\n", o.Stdout);
    }

    private static string Apphost => Path.Combine(AppContext.BaseDirectory, "vmm"); // the benches spawn it as a command

    private static bool QemuOnPath => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
        .Any(d => File.Exists(Path.Combine(d, "qemu-system-x86_64")));

    private static void EnsureQemu()
    {
        if (!QemuOnPath)
        {
            Assert.Skip("qemu-system-x86_64 is not on PATH (apt-get install qemu-system-x86): the comparison was not run");
        }
    }

    private static double[] Numbers(Match m) =>
        [.. m.Groups.Cast<Group>().Skip(1).Select(g => double.Parse(g.Value, CultureInfo.InvariantCulture))];

    [Fact]
    public void BlkBenchReportsEachTestsIopsAndEndsWithTheSummaryLine()
    {
        KvmRequirement.Ensure();
        Outcome o = Vmm("", "bench", "blk", "--rounds", "1", "--requests", "2000", "--disk-mib", "8", "--guest", TestGuests.VirtioBenchKernel, "--vmm", Apphost);
        Assert.True(o.Status == 0, o.Stderr + o.Stdout);
        foreach (string test in new[] { "seqread", "randread", "seqwrite", "randwrite" })
        {
            Match row = Regex.Match(o.Stdout, $@"
  {test} +([0-9]+) +([0-9.]+)
");
            Assert.True(row.Success, o.Stdout);
            Assert.All(Numbers(row), v => Assert.True(v > 0, row.Value));
        }
        Match last = Regex.Match(o.Stdout, @"
blk: vmm ([0-9]+) IOPS \(([0-9.]+) MiB/s\)
$");
        Assert.True(last.Success, o.Stdout);
        Assert.All(Numbers(last), v => Assert.True(v > 0, last.Value));
    }

    [Fact]
    public void BlkBenchAgainstQemuEndsWithBothAndTheirRatio()
    {
        KvmRequirement.Ensure();
        EnsureQemu();
        Outcome o = Vmm("", "bench", "blk", "--qemu", "--rounds", "1", "--requests", "2000", "--disk-mib", "8", "--guest", TestGuests.VirtioBenchKernel, "--vmm", Apphost);
        Assert.True(o.Status == 0, o.Stderr + o.Stdout);
        Assert.Single(Regex.Matches(o.Stdout, @"round 1 qemu seqread +[0-9]+ IOPS"));
        Match last = Regex.Match(o.Stdout, @"
blk: vmm ([0-9]+) IOPS, qemu ([0-9]+) IOPS, ratio ([0-9.]+)
$");
        Assert.True(last.Success, o.Stdout);
        Assert.All(Numbers(last), v => Assert.True(v > 0, last.Value));
    }

    [Fact]
    public void NetBenchReportsBothDirectionsAndEndsWithTheSummaryLine()
    {
        KvmRequirement.Ensure();
        string[] qemu = QemuOnPath ? ["--qemu"] : []; // the namespace, TAP and sender are the same either way
        Outcome o = Vmm("", ["bench", "net", .. qemu, "--rounds", "1", "--frames", "2000", "--guest", TestGuests.VirtioBenchKernel, "--vmm", Apphost]);
        Assert.True(o.Status == 0, o.Stderr + o.Stdout);
        foreach (string test in new[] { "tx", "rx" })
        {
            Match row = Regex.Match(o.Stdout, $@"
  {test} +([0-9]+)");
            Assert.True(row.Success, o.Stdout);
            Assert.True(Numbers(row)[0] > 0, row.Value);
        }
        Match last = QemuOnPath
            ? Regex.Match(o.Stdout, @"
net: vmm ([0-9]+) pps, qemu ([0-9]+) pps, ratio ([0-9.]+)
$")
            : Regex.Match(o.Stdout, @"
net: vmm ([0-9]+) pps
$");
        Assert.True(last.Success, o.Stdout);
        Assert.All(Numbers(last), v => Assert.True(v > 0, last.Value));
    }

    [Fact]
    public void ExitBenchWithDevicesAttachedSaysSoAndEndsWithTheRatio()
    {
        KvmRequirement.Ensure();
        Outcome o = Vmm("", "bench", "exits", "--devices", "--exits", "500", "--rounds", "1");
        Assert.True(o.Status == 0, o.Stderr + o.Stdout);
        Assert.Contains("virtio-blk and virtio-rng on ioeventfd/irqfd", o.Stdout, StringComparison.Ordinal);
        Match last = Regex.Match(o.Stdout, @"
exit round trip: dispatcher ([0-9]+) ns, raw ([0-9]+) ns, ratio ([0-9.]+)
$");
        Assert.True(last.Success, o.Stdout);
        Assert.All(Numbers(last), v => Assert.True(v > 0, last.Value));
    }

    [Fact]
    public void FallbackBenchReportsTotalBaselineAndNetAndAllocatesNothingPerInstruction()
    {
        KvmRequirement.Ensure();
        Outcome o = Vmm("", "bench", "fallback", "--instructions", "300", "--rounds", "1");
        Assert.True(o.Status == 0, o.Stderr + o.Stdout);
        foreach (string name in new[] { "int3", "cmpxchg16b" })
        {
            Match line = Regex.Match(o.Stdout, $@"  {name} +total +([0-9.]+) us +baseline +([0-9.]+) us \([^)]*\) +net +(-?[0-9.]+) us .* allocated ([0-9]+) B");
            Assert.True(line.Success, o.Stdout);
            // The exit path allocates nothing: the fallback's handler and the dispatcher, per emulated instruction.
            Assert.Equal("0", line.Groups[4].Value);
        }
        Assert.Matches(@"\nfallback: int3 -?[0-9.]+ us, cmpxchg16b -?[0-9.]+ us per emulated instruction \(net of the baseline loop\)\n$", o.Stdout);
    }

    [Theory]
    [InlineData("blk --requests 10", "--requests '10': give a whole number from 256 to")]
    [InlineData("net --frames 0", "--frames '0': give a whole number from 256 to")]
    [InlineData("startup --runs 0", "--runs '0': give a whole number from 1 to 10000")]
    [InlineData("exits --exits 0", "--exits '0': give a whole number from 1 to")]
    [InlineData("exits --rounds -5", "--rounds '-5': give a whole number from 1 to")]
    [InlineData("recall --recalls 0", "--recalls '0': give a whole number from 1 to")]
    [InlineData("fallback --instructions 0", "--instructions '0': give a whole number from 1 to")]
    public void BadBenchInputGetsOneClearLineAndStartsNothing(string arguments, string expected)
    {
        Outcome o = Vmm("", ["bench", .. arguments.Split(' ')]);
        Assert.NotEqual(0, o.Status);
        Assert.Contains(expected, Assert.Single(o.StderrLines), StringComparison.Ordinal);
        Assert.Equal("", o.Stdout);
    }
    [Fact]
    public void RunWithVsockCreatesItsSocketAndRemovesItAtExit()
    {
        KvmRequirement.Ensure();
        string dir = Directory.CreateTempSubdirectory("vmmsharp-vsock-cli").FullName;
        try
        {
            string uds = Path.Combine(dir, "vm.vsock");
            Outcome o = Vmm("", "run", "--kernel", TestGuests.MarkerKernel, "--vsock", $"cid=3,uds={uds}");
            Assert.True(o.Status == 1, o.Stderr);
            Assert.Equal("VMM-MARKER", o.Stdout.Trim());
            Assert.Equal("", o.Stderr);
            Assert.False(File.Exists(uds), "vmm left its vsock socket behind");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void AVsockSocketPathInUseIsOneLineNamingIt()
    {
        KvmRequirement.Ensure();
        string dir = Directory.CreateTempSubdirectory("vmmsharp-vsock-cli").FullName;
        try
        {
            string uds = Path.Combine(dir, "busy.vsock");
            using var other = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
            other.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(uds));
            other.Listen(1);
            Outcome o = Vmm("", "run", "--kernel", TestGuests.MarkerKernel, "--vsock", $"cid=3,uds={uds}");
            Assert.Equal(1, o.Status);
            string line = Assert.Single(o.StderrLines);
            Assert.Contains($"'{uds}' is in use", line, StringComparison.Ordinal);
            Assert.True(File.Exists(uds), "vmm removed a socket that was not its own");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("cid=2,uds=/tmp/x.vsock", "cid 2 is reserved")]
    [InlineData("uds=/tmp/x.vsock", "the cid is missing")]
    [InlineData("cid=3,port=9", "cannot use 'port=9'")]
    public void ABadVsockArgumentIsOneLineNamingIt(string value, string expected)
    {
        Outcome o = Vmm("", "run", "--kernel", "/nonexistent", "--vsock", value);
        Assert.Equal(1, o.Status);
        Assert.Contains(expected, Assert.Single(o.StderrLines), StringComparison.Ordinal);
    }

    [Fact]
    public void InfoListsVsockAmongTheVirtioDevices()
    {
        KvmRequirement.Ensure();
        Outcome o = Vmm("", "info");
        Assert.Equal(0, o.Status);
        Assert.Matches(@"virtio devices: .*vsock \(--vsock", o.Stdout);
    }
}

using System.Diagnostics;
using VmmSharp.Tests.Guests;
using VmmSharp.Tests.Machine;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Cli;

/// <summary>The <c>vmm</c> command as a user runs it: a separate process, its exit status, stdout and stderr.</summary>
public class VmmCommandTests
{
    private sealed record Outcome(int Status, string Stdout, string Stderr);

    private static Outcome Vmm(string stdin, params string[] args)
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
        using Process process = Process.Start(start)!;
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
    public void AMarkerGuestBootsThroughPvh()
    {
        KvmRequirement.Ensure();
        Outcome o = Vmm("", "run", "--kernel", TestGuests.MarkerKernel, "--quiet");
        Assert.Equal(1, o.Status);
        Assert.Equal("VMM-MARKER", o.Stdout.Trim());
        Assert.Equal("", o.Stderr);
    }

    [Theory]
    [InlineData("--kernel", "/nonexistent/kernel", "kernel image '/nonexistent/kernel' not found")]
    [InlineData("--mem", "12X", "memory size '12X' is not a positive number")]
    [InlineData("--cpus", "0", "0")]
    public void BadInputGetsOneClearLineAndAFailureStatus(string option, string value, string expected)
    {
        KvmRequirement.Ensure();
        string[] args = option == "--kernel" ? ["run", option, value] : ["run", "--kernel", TestGuests.MarkerKernel, option, value];
        Outcome o = Vmm("", args);
        Assert.NotEqual(0, o.Status);
        Assert.Contains(expected, o.Stderr + o.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", o.Stderr, StringComparison.Ordinal); // no stack trace
    }
}

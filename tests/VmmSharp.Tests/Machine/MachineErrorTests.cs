using VmmSharp.Boot;
using VmmSharp.Dispatch;
using VmmSharp.Machine;
using VmmSharp.Tests.Boot;
using VmmSharp.Tests.Guests;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Machine;

public class MachineErrorTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private static T Refused<T>(MachineOptions options)
        where T : Exception
    {
        KvmRequirement.Ensure();
        // Construction must refuse; it never runs the guest, so it cannot hang. Bound it all the same.
        var build = Task.Run(() =>
        {
            using var machine = new PcMachine(options);
        });
        Assert.True(((IAsyncResult)build).AsyncWaitHandle.WaitOne(TimeSpan.FromSeconds(30)), "PcMachine construction did not finish in 30 s");
        Assert.True(build.IsFaulted, "PcMachine accepted the options");
        return Assert.IsType<T>(build.Exception!.InnerException, exactMatch: false);
    }

    private static T RefusedImage<T>(byte[] image, string name, MachineOptions? template = null)
        where T : Exception
    {
        string path = GuestImages.Write(image, name);
        try
        {
            T e = Refused<T>((template ?? new MachineOptions(path)) with { KernelPath = path });
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
            return e;
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void MissingKernelFileIsNamed()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vmmsharp-no-such-kernel-{Guid.NewGuid():N}");
        var e = Refused<MachineConfigurationException>(new MachineOptions(path));
        Assert.Equal($"kernel image '{path}' not found", e.Message);
        Assert.Equal(nameof(MachineOptions.KernelPath), e.Option);
        Assert.IsAssignableFrom<VmmException>(e);
    }

    [Fact]
    public void AnImageFileLargerThanTheGuestsRamIsRefusedBeforeItIsRead()
    {
        byte[] image = TestImages.BzImage(payloadSize: 3 << 20, initSize: 3 << 20);
        var e = RefusedImage<MachineConfigurationException>(image, "huge-file", new MachineOptions("x") { MemorySize = 2UL << 20 });
        Assert.Equal(nameof(MachineOptions.KernelPath), e.Option);
        Assert.Contains("more than the guest's 2 MiB", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/dev/zero", "is a character device, not a regular file")]
    [InlineData("/tmp", "is a directory")]
    public void AKernelThatIsNotARegularFileIsRefusedWithoutReadingIt(string path, string expected)
    {
        var e = Refused<MachineConfigurationException>(new MachineOptions(path));
        Assert.Equal(nameof(MachineOptions.KernelPath), e.Option);
        Assert.Contains($"kernel image '{path}' {expected}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnInitrdThatIsADeviceIsRefused()
    {
        var e = Refused<MachineConfigurationException>(new MachineOptions(TestGuests.PvhKernel) { InitrdPath = "/dev/zero" });
        Assert.Equal(nameof(MachineOptions.InitrdPath), e.Option);
        Assert.Contains("initrd '/dev/zero' is a character device", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(-1.0)]
    [InlineData(0.0)]
    [InlineData(3_000_000.0)]
    public void ADeadlineOutOfRangeIsRefusedBeforeAnythingRuns(double seconds)
    {
        var e = Refused<MachineConfigurationException>(new MachineOptions(TestGuests.PvhKernel) { Deadline = TimeSpan.FromSeconds(seconds) });
        Assert.Equal(nameof(MachineOptions.Deadline), e.Option);
        Assert.DoesNotContain("Parameter", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingInitrdFileIsNamed()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vmmsharp-no-such-initrd-{Guid.NewGuid():N}");
        var e = Refused<MachineConfigurationException>(new MachineOptions(TestGuests.PvhKernel) { InitrdPath = path });
        Assert.Equal($"initrd '{path}' not found", e.Message);
        Assert.Equal(nameof(MachineOptions.InitrdPath), e.Option);
    }

    [Fact]
    public void EmptyKernelIsRefused()
    {
        var e = RefusedImage<InvalidKernelImageException>([], "empty");
        Assert.Contains("empty", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TruncatedElfIsRefused()
    {
        byte[] elf = File.ReadAllBytes(TestGuests.PvhKernel);
        RefusedImage<InvalidKernelImageException>(elf[..200], "truncated");
    }

    [Fact]
    public void RandomBytesAreRefused()
    {
        var e = RefusedImage<InvalidKernelImageException>(TestImages.Pattern(8192, 42), "random");
        Assert.Contains("not a recognised kernel image", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KernelLargerThanRamIsRefused()
    {
        // A 1 MiB file that needs 3 MiB to run, in a 2 MiB guest.
        byte[] image = TestImages.BzImage(payloadSize: 1 << 20, initSize: 3 << 20);
        var e = RefusedImage<InvalidKernelImageException>(image, "huge", new MachineOptions("x") { MemorySize = 2UL << 20 });
        Assert.Contains("guest RAM", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1UL << 20, "0x100000")] // below the minimum
    [InlineData((64UL << 20) + 100, "0x4000064")] // not page-sized
    [InlineData(1UL << 56, "65536 GiB")] // beyond the host's guest-physical address width
    public void UnusableMemorySizeIsNamed(ulong size, string shown)
    {
        var e = Refused<MachineConfigurationException>(new MachineOptions(TestGuests.PvhKernel) { MemorySize = size });
        Assert.Equal(nameof(MachineOptions.MemorySize), e.Option);
        Assert.Contains(size >= 1UL << 40 ? $"0x{size:x}" : shown, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(100000)]
    public void UnusableCpuCountIsNamed(int cpus)
    {
        var e = Refused<MachineConfigurationException>(new MachineOptions(TestGuests.PvhKernel) { CpuCount = cpus });
        Assert.Equal(nameof(MachineOptions.CpuCount), e.Option);
        Assert.Contains($"CPU count {cpus}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TripleFaultFailsTheRunAndSaysWhere()
    {
        KvmRequirement.Ensure();
        string path = GuestImages.Write(GuestImages.TripleFault(), "triple");
        try
        {
            MachineRun run = MachineRun.Start(new MachineOptions(path), Deadline);
            Assert.True(run.Result.Outcome == MachineOutcome.Failed, run.Describe());
            Assert.Equal(MachineResult.FailureStatus, run.Result.ExitStatus);
            Assert.StartsWith("guest triple-faulted at RIP 0x", run.Result.Reason, StringComparison.Ordinal);
            Assert.Equal(1, run.Result.ExitCounts[VcpuEvent.Shutdown]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void UnhandledPortsAndMmioReadAllOnes()
    {
        KvmRequirement.Ensure();
        string path = GuestImages.Write(GuestImages.OpenBus(), "openbus");
        try
        {
            MachineRun run = MachineRun.Start(new MachineOptions(path), Deadline);
            Assert.True(run.Result.Outcome == MachineOutcome.DebugExit && run.Result.ExitStatus == 1, run.Describe());
            Assert.Equal(2, run.Result.ExitCounts[VcpuEvent.Mmio]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void DeadlineEndsARunThatNeverFinishes()
    {
        KvmRequirement.Ensure();
        string path = GuestImages.Write(GuestImages.BzImageRunning(a =>
        {
            Iced.Intel.Label loop = a.CreateLabel();
            a.Label(ref loop);
            a.@out(0x80, Iced.Intel.AssemblerRegisters.al);
            a.jmp(loop);
        }), "spin");
        try
        {
            MachineRun run = MachineRun.Start(new MachineOptions(path), TimeSpan.FromMilliseconds(500));
            Assert.True(run.Result.Outcome == MachineOutcome.DeadlineExceeded, run.Describe());
            Assert.Equal(MachineResult.DeadlineStatus, run.Result.ExitStatus);
            Assert.Contains("vCPU 0 at RIP 0x", run.Result.Reason, StringComparison.Ordinal);
            Assert.True(run.Result.Elapsed < TimeSpan.FromSeconds(15), run.Describe());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void I8042ResetEndsTheRunWithTheResetStatus()
    {
        KvmRequirement.Ensure();
        string path = GuestImages.Write(GuestImages.BzImageRunning(a =>
        {
            a.mov(Iced.Intel.AssemblerRegisters.al, 0xfe);
            a.@out(0x64, Iced.Intel.AssemblerRegisters.al);
            a.hlt();
        }), "reset");
        try
        {
            MachineRun run = MachineRun.Start(new MachineOptions(path) { ResetExitStatus = 7 }, Deadline);
            Assert.True(run.Result.Outcome == MachineOutcome.Reset, run.Describe());
            Assert.Equal(7, run.Result.ExitStatus);
            Assert.Equal("guest requested reset", run.Result.Reason);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ACommandLineTooLongForTheKernelNamesBothLengthsAndNotAnInternalParameter()
    {
        KvmRequirement.Ensure();
        string tooLong = new('a', 70000);
        var e = Assert.Throws<MachineConfigurationException>(() => new PcMachine(new MachineOptions(TestGuests.PvhKernel) { CommandLine = tooLong }));
        Assert.Equal(nameof(MachineOptions.CommandLine), e.Option);
        Assert.StartsWith("kernel command line of 70000 characters: ", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("(Parameter", e.Message, StringComparison.Ordinal);
    }
}

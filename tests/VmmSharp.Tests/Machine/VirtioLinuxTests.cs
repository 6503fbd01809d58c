using System.Buffers.Binary;
using System.Diagnostics;
using VmmSharp.Devices.Virtio.Console;
using VmmSharp.Devices.Virtio.Rng;
using VmmSharp.Machine;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Machine;

/// <summary>
/// Linux's own virtio drivers (the small test kernel of scripts/linux-tiny.sh, drivers built in) against our devices:
/// virtio-rng feeding hw_random, root on virtio-blk, the console on hvc0; devices found through the command line
/// and, with the ACPI build, through the DSDT. Each run has a deadline; the kernel never reaches user space here.
/// </summary>
public class VirtioLinuxTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(240);

    [Fact]
    public void Linux_takes_entropy_from_virtio_rng_found_on_the_command_line()
    {
        KvmRequirement.Ensure();
        long provided = 0;
        MachineRun run = Boot(new MachineOptions(LinuxTinyKernel.Vmlinux) { CommandLine = LinuxTinyKernel.CommandLine(), Rng = true },
            ReachedRootMount,
            m => provided = ((VirtioRng)m.VirtioDevices[0].Device).BytesProvided);

        run.AssertLineStartsWith("virtio-mmio: Registering device virtio-mmio.0 at 0xd0000000-0xd0000fff, IRQ 5.");
        // hw_random reads from a new rng at once (add_early_randomness), then its fill thread keeps reading.
        Assert.True(provided > 0, $"virtio-rng gave the guest no bytes\n{run.Describe()}");
    }

    [Fact]
    public void Linux_with_acpi_finds_virtio_rng_in_the_dsdt()
    {
        KvmRequirement.Ensure();
        long provided = 0;
        MachineRun run = Boot(new MachineOptions(LinuxTinyKernel.AcpiVmlinux)
        {
            CommandLine = LinuxTinyKernel.CommandLine(),
            Rng = true,
            VirtioOnCommandLine = false,
        },
            ReachedRootMount,
            m => provided = ((VirtioRng)m.VirtioDevices[0].Device).BytesProvided);

        Assert.DoesNotContain("virtio_mmio.device", run.Output, StringComparison.Ordinal);
        Assert.True(provided > 0, $"virtio-rng found through ACPI gave the guest no bytes\n{run.Describe()}");
    }

    [Fact]
    public void Linux_mounts_its_ext4_root_from_virtio_blk_and_writes_the_superblock()
    {
        KvmRequirement.Ensure();
        string image = Ext4Image();
        try
        {
            (ushort count, uint time) before = MountStamp(image);
            MachineRun run = Boot(new MachineOptions(LinuxTinyKernel.Vmlinux)
            {
                CommandLine = LinuxTinyKernel.CommandLine("root=/dev/vda rw rootfstype=ext4"),
                Disks = [new DiskOptions(image) { Serial = "vmmsharp-root" }],
            },
                text => text.Contains("EXT4-fs (vda): mounted filesystem", StringComparison.Ordinal));

            run.AssertLineStartsWith("virtio_blk virtio0: [vda] 16384 512-byte logical blocks");
            (ushort count, uint time) after = MountStamp(image);
            Assert.Equal(before.count + 1, after.count);
            Assert.True(after.time > before.time, $"s_mtime {after.time} not after {before.time}");
        }
        finally
        {
            File.Delete(image);
        }
    }

    [Fact]
    public void Linux_logs_to_hvc0_on_virtio_console()
    {
        KvmRequirement.Ensure();
        long transmitted = 0;
        MachineRun run = Boot(new MachineOptions(LinuxTinyKernel.Vmlinux)
        {
            CommandLine = LinuxTinyKernel.CommandLine().Replace("console=ttyS0", "console=hvc0", StringComparison.Ordinal),
            ConsoleDevice = ConsoleDevice.Virtio,
        },
            ReachedRootMount,
            m => transmitted = m.VirtioConsole!.BytesTransmitted);

        // The log reaches the host only through the virtio-console port: COM1 is not the console. The kernel's small
        // log buffer (tinyconfig) has lost the banner by the time hvc0 replays it, so look for the line that ended the run.
        run.AssertLineStartsWith("Kernel panic - not syncing: VFS: Unable to mount root fs");
        // Everything seen came through the port; the replayed log is what the small buffer kept (under 1 KiB here).
        Assert.True(transmitted >= run.Lines.Sum(l => l.Length), $"virtio-console carried {transmitted} bytes\n{run.Describe()}");
    }

    /// <summary>No initramfs and no root disk: the kernel gets as far as mounting its root, long after the drivers probed.</summary>
    private static bool ReachedRootMount(string text)
        => text.Contains("VFS: Unable to mount root", StringComparison.Ordinal) || text.Contains("Kernel panic", StringComparison.Ordinal);

    private static MachineRun Boot(MachineOptions options, Func<string, bool> stopWhen, Action<PcMachine>? afterRun = null)
    {
        MachineRun run = MachineRun.Start(options with { MemorySize = 64UL << 20 }, Deadline, stopWhen, afterRun);
        if (run.Result.Outcome == MachineOutcome.DeadlineExceeded)
        {
            // A whole emulated boot (PVM) on a busy host may not get there in time; the boot test's own rule.
            Assert.Skip($"not reached within {Deadline.TotalSeconds} s on this host (PVM, busy): last line \"{run.Lines.LastOrDefault(l => l.Length > 0)}\"");
        }
        if (run.Result.Outcome == MachineOutcome.Failed && run.Result.Reason.Contains("emulation failure", StringComparison.Ordinal))
        {
            // PVM: CPL0 code runs in KVM's emulator, which lacks instructions Linux uses; the emulation fallback finishes them.
            Assert.Skip($"not run: this host's KVM cannot emulate an instruction the kernel uses and this build has no emulation fallback ({run.Result.Reason})");
        }
        Assert.True(run.Result.Outcome == MachineOutcome.Stopped, $"the kernel did not get there\n{run.Describe()}");
        return run;
    }

    /// <summary>An 8 MiB ext4 image made with mkfs.ext4 -d from a folder with one file.</summary>
    internal static string Ext4Image()
    {
        string dir = Directory.CreateTempSubdirectory("vmmsharp-rootfs").FullName;
        string image = Path.Combine(Path.GetTempPath(), $"vmmsharp-root-{Guid.NewGuid():N}.ext4");
        try
        {
            File.WriteAllText(Path.Combine(dir, "hello.txt"), "written by the host\n");
            using (FileStream f = File.Create(image))
            {
                f.SetLength(8 << 20);
            }
            var psi = new ProcessStartInfo("mkfs.ext4", ["-q", "-F", "-d", dir, image]) { RedirectStandardError = true, RedirectStandardOutput = true };
            using Process? p = Process.Start(psi);
            if (p is null || !p.WaitForExit(60_000) || p.ExitCode != 0)
            {
                Assert.Skip($"not run: mkfs.ext4 could not make the root image (install e2fsprogs): {p?.StandardError.ReadToEnd()}");
            }
            return image;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The ext4 superblock's s_mnt_count and s_mtime, as the file on the host holds them.</summary>
    private static (ushort Count, uint Time) MountStamp(string image)
    {
        byte[] sb = new byte[1024];
        using FileStream f = File.OpenRead(image);
        f.Position = 1024;
        f.ReadExactly(sb);
        Assert.Equal(0xEF53, BinaryPrimitives.ReadUInt16LittleEndian(sb.AsSpan(0x38)));
        return (BinaryPrimitives.ReadUInt16LittleEndian(sb.AsSpan(0x34)), BinaryPrimitives.ReadUInt32LittleEndian(sb.AsSpan(0x2C)));
    }
}
